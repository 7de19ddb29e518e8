"""Random secrets and their at-rest digests.

Session cookies, codes, tokens, links and client secrets are 256-bit random values: a SHA-256
digest is enough to store them (no password hash needed), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value), stored_digest)
