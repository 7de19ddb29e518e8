"""Random secrets, their at-rest digests, and sealing of secrets that must be read back.

Session cookies, codes, tokens, links and client secrets are 256-bit random values: a SHA-256
digest is enough to store them (no password hash needed), compared in constant time.

Secrets that must be used again (signing keys, TOTP shared secrets) are *sealed*: AES-256-GCM
(NIST SP 800-38D) under a key derived from the instance secret with HKDF-SHA256 (RFC 5869), one
derived key per ``purpose``, with the row they belong to bound as associated data so a sealed value
copied to another row does not open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SEAL_VERSION = b"v1"
_NONCE_BYTES = 12


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value), stored_digest)


def _sealing_key(secret: str | bytes, purpose: bytes) -> bytes:
    material = secret.encode() if isinstance(secret, str) else secret
    if not material:
        raise ValueError("sealing needs the instance secret; got an empty one")
    return HKDF(algorithm=SHA256(), length=32, salt=b"eid-idp", info=purpose).derive(material)


def seal(secret: str | bytes, plaintext: bytes, *, purpose: bytes, associated_data: bytes) -> bytes:
    """``v1 || nonce || AES-256-GCM(plaintext)`` under the key derived for ``purpose``."""
    nonce = os.urandom(_NONCE_BYTES)
    body = AESGCM(_sealing_key(secret, purpose)).encrypt(nonce, plaintext, associated_data)
    return _SEAL_VERSION + nonce + body


def unseal(secret: str | bytes, sealed: bytes, *, purpose: bytes, associated_data: bytes) -> bytes:
    """The plaintext of :func:`seal`; ``ValueError`` for an unknown format,
    ``cryptography.exceptions.InvalidTag`` for another secret, row or a changed byte."""
    if not sealed.startswith(_SEAL_VERSION):
        raise ValueError("unknown sealing format (expected v1)")
    start = len(_SEAL_VERSION)
    nonce, body = sealed[start : start + _NONCE_BYTES], sealed[start + _NONCE_BYTES :]
    return AESGCM(_sealing_key(secret, purpose)).decrypt(nonce, body, associated_data)
