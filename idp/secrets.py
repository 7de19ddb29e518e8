"""Random secrets, their at-rest digests, and sealing of secrets that must be read back.

Session cookies, codes, tokens, links and client secrets are 256-bit random values: a SHA-256
digest is enough to store them (no password hash needed), compared in constant time.

Access and refresh tokens are stored under a *key* (:func:`token_key`) rather than a plain
digest: a token begins with the time it was issued (:func:`new_token`), and its key keeps that
order, so that each new token's index entry goes to the newest page of the index instead of a
random one (a random page costs a whole page written to SQLite's WAL and copied back at the next
checkpoint).

Secrets that must be used again (signing keys, TOTP shared secrets) are *sealed*: AES-256-GCM
(NIST SP 800-38D) under a key derived from the instance secret with HKDF-SHA256 (RFC 5869), one
derived key per ``purpose``, with the row they belong to bound as associated data so a sealed value
copied to another row does not open.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp import ids

_SEAL_VERSION = b"v1"
_NONCE_BYTES = 12


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


_TIMED = re.compile(r"[0-9a-f]{32}\.")


def new_token() -> str:
    """An opaque access or refresh token: a version 7 UUID's 32 hex digits (its issue time in
    milliseconds, then 74 random bits), a dot, and 256 random bits in base64url."""
    return f"{ids.uuid7_hex()}.{secrets.token_urlsafe(32)}"


def token_key(token: str) -> str:
    """What a token is stored and found under (64 hex digits): for a token of :func:`new_token`
    its time-ordered first part and the first 128 bits of its SHA-256; for any other (a token
    issued before these, or a forged one) its whole SHA-256."""
    if _TIMED.match(token):
        return token[:32] + digest(token)[:32]
    return digest(token)


def matches(value: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(value), stored_digest)


def token_matches(token: str, stored_key: str) -> bool:
    return hmac.compare_digest(token_key(token), stored_key)


def _sealing_key(secret: str | bytes, purpose: bytes) -> bytes:
    material = secret.encode() if isinstance(secret, str) else secret
    if not material:
        raise ValueError("sealing needs the instance secret; got an empty one")
    return HKDF(algorithm=SHA256(), length=32, salt=b"eid-idp", info=purpose).derive(material)


@functools.lru_cache(maxsize=64)
def _cipher(secret: str | bytes, purpose: bytes) -> AESGCM:
    """The cipher of ``purpose``'s derived key: HKDF and the key schedule once per process, not on
    every TOTP check or sealed value (a pure function of the instance secret and the purpose)."""
    return AESGCM(_sealing_key(secret, purpose))


def seal(secret: str | bytes, plaintext: bytes, *, purpose: bytes, associated_data: bytes) -> bytes:
    """``v1 || nonce || AES-256-GCM(plaintext)`` under the key derived for ``purpose``."""
    nonce = os.urandom(_NONCE_BYTES)
    body = _cipher(secret, purpose).encrypt(nonce, plaintext, associated_data)
    return _SEAL_VERSION + nonce + body


def unseal(secret: str | bytes, sealed: bytes, *, purpose: bytes, associated_data: bytes) -> bytes:
    """The plaintext of :func:`seal`; ``ValueError`` for an unknown format,
    ``cryptography.exceptions.InvalidTag`` for another secret, row or a changed byte."""
    if not sealed.startswith(_SEAL_VERSION):
        raise ValueError("unknown sealing format (expected v1)")
    start = len(_SEAL_VERSION)
    nonce, body = sealed[start : start + _NONCE_BYTES], sealed[start + _NONCE_BYTES :]
    return _cipher(secret, purpose).decrypt(nonce, body, associated_data)
