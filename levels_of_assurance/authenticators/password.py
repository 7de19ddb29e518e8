"""Password: a memorized secret (NIST SP 800-63B §5.1.1), one factor of the advanced level.

A password alone does not reach the advanced level: it proves knowledge only, and it can be
phished. The policy combines it with a one-time code (a possession factor) before granting the
advanced level; ``PROVES.level`` names the level the combination reaches, not the password alone.

:class:`PasswordPolicy` checks a new password as §5.1.1.2 asks: at least 8 characters, at least
64 allowed, every printing character (spaces and Unicode included) accepted, NFKC-normalised
before counting, no composition rules, and refusal of common, repetitive or sequential passwords
and of ones containing the user's own identifiers. :class:`PasswordHasher` stores passwords with
argon2id (OWASP Password Storage Cheat Sheet parameters) and refuses unknown accounts in the
same time as wrong passwords.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, bindparam, select, update

from idp import audit
from idp.errors import IdPError, LoginError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared
from levels_of_assurance.authenticators import Proves
from levels_of_assurance.ladder import AMR, Level

PROVES = Proves(
    method="pwd", amr=(AMR.PWD,), factor="knowledge", phishing_resistant=False, level=Level.ADVANCED
)


class PasswordProblem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    COMMON = "common"
    REPETITIVE = "repetitive"
    CONTAINS_IDENTIFIER = "contains_identifier"
    WRONG_PASSWORD = "wrong_password"


class WeakPasswordError(LoginError):
    """A new password that the policy refuses; ``code`` is a :class:`PasswordProblem`."""


def normalize(password: str) -> str:
    """NFKC, as §5.1.1.2 recommends before hashing, so every spelling of a password is one."""
    return unicodedata.normalize("NFKC", password)


# Keyboard rows (QWERTY and the Slovenian/Croatian/Serbian QWERTZ); a password that is a run
# along one of them, forwards or backwards, is sequential.
_KEYBOARD_ROWS = (
    "`1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertzuiopšđž",
    "asdfghjklčćž",
    "yxcvbnm,.-",
)
_MAX_REPEATED_UNIT = 4
_MIN_IDENTIFIER = 4
_IDENTIFIER_SPLIT = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The blocklist shipped with the package (see the header of ``common_passwords.txt``)."""
    text = (
        importlib.resources.files("levels_of_assurance.authenticators")
        .joinpath("common_passwords.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _is_repetitive(folded: str) -> bool:
    for size in range(1, min(_MAX_REPEATED_UNIT, len(folded) // 2) + 1):
        if len(folded) % size == 0 and folded == folded[:size] * (len(folded) // size):
            return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(folded)}
    if steps in ({1}, {-1}):
        return True
    return any(folded in row or folded in row[::-1] for row in _KEYBOARD_ROWS)


def _identifier_parts(context: Sequence[str]) -> set[str]:
    parts: set[str] = set()
    for item in context:
        value = normalize(item).casefold().strip()
        if "@" in value:
            value = value.rsplit("@", 1)[0]
        for part in (value, *_IDENTIFIER_SPLIT.split(value)):
            if len(part) >= _MIN_IDENTIFIER:
                parts.add(part)
    return parts


@dataclass(slots=True, frozen=True)
class PasswordPolicy:
    """Rules for choosing a password, NIST SP 800-63B §5.1.1.2 (no composition rules, no expiry)."""

    min_length: int = 8
    max_length: int = 64

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ValueError(f"min_length must be at least 8 (SP 800-63B §5.1.1.2), got {self.min_length}")
        if self.max_length < 64:
            raise ValueError(f"max_length must be at least 64 (SP 800-63B §5.1.1.2), got {self.max_length}")
        if self.max_length < self.min_length:
            raise ValueError(f"max_length {self.max_length} is below min_length {self.min_length}")

    def check(self, password: str, *, context: Sequence[str] = ()) -> None:
        """Accept ``password`` or raise :class:`WeakPasswordError` naming the first rule it breaks.

        ``context`` holds the user's own identifiers (username, email address, given and family
        name); a password containing any of them (case-insensitive, 4 characters or more) is
        refused. Length counts Unicode code points after NFKC (§5.1.1.2).
        """
        normal = normalize(password)
        if len(normal) < self.min_length:
            raise WeakPasswordError(
                PasswordProblem.TOO_SHORT,
                f"password must have at least {self.min_length} characters, it has {len(normal)}",
            )
        if len(normal) > self.max_length:
            raise WeakPasswordError(
                PasswordProblem.TOO_LONG,
                f"password may have at most {self.max_length} characters, it has {len(normal)}",
            )
        folded = normal.casefold()
        if _is_repetitive(folded):
            raise WeakPasswordError(
                PasswordProblem.REPETITIVE, "password is a repeated or sequential run of characters"
            )
        if folded in common_passwords():
            raise WeakPasswordError(PasswordProblem.COMMON, "password is on the list of common passwords")
        if any(part in folded for part in _identifier_parts(context)):
            raise WeakPasswordError(
                PasswordProblem.CONTAINS_IDENTIFIER, "password contains your name, username or email address"
            )


class PasswordHasher:
    """argon2id hashing of NFKC-normalised passwords (SP 800-63B §5.1.1.2; OWASP parameters).

    Hashing is CPU-heavy: the web layer calls these methods from a thread pool.
    """

    __slots__ = ("_dummy", "_hasher")

    def __init__(self, *, memory_cost: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        if memory_cost < 8192:
            raise ValueError(f"memory_cost must be at least 8192 KiB, got {memory_cost}")
        if time_cost < 1:
            raise ValueError(f"time_cost must be at least 1, got {time_cost}")
        if parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, got {parallelism}")
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        """The PHC string to store for ``password``."""
        return self._hasher.hash(normalize(password))

    def verify(self, stored: str, password: str) -> None:
        """Accept ``password`` against ``stored`` or raise ``LoginError("wrong_password")``.

        The comparison is argon2's own, in constant time.
        """
        try:
            self._hasher.verify(stored, normalize(password))
        except VerifyMismatchError:
            raise LoginError(PasswordProblem.WRONG_PASSWORD, "wrong password") from None
        except (InvalidHashError, VerificationError) as e:
            raise IdPError(f"the stored password hash is not a usable argon2 hash: {e}") from None

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters (or another argon2 type) than these."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError as e:
            raise IdPError(f"the stored password hash is not a usable argon2 hash: {e}") from None

    def verify_dummy(self, password: str) -> NoReturn:
        """Spend the time of one verification and raise ``LoginError("wrong_password")``.

        For an account that does not exist, so that refusing it takes as long as a wrong password.
        """
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        self.verify(self._dummy, password)
        raise AssertionError("a random dummy hash matched a password")


_DEFAULT = PasswordHasher()
DUMMY_HASH = _DEFAULT.hash(secrets.token_urlsafe(32))
_DEFAULT._dummy = DUMMY_HASH


def verify_dummy(password: str) -> NoReturn:
    """:meth:`PasswordHasher.verify_dummy` with the default parameters (against ``DUMMY_HASH``)."""
    _DEFAULT.verify_dummy(password)


# -- storage: one argon2id hash per eID --------------------------------------------------------


_STORED = Prepared(
    select(tables.password_credentials.c.hash).where(tables.password_credentials.c.eid_id == bindparam("e"))
)


def stored_hash(conn: Connection, *, eid_id: str) -> str | None:
    stored: str | None = _STORED.scalar(conn, {"e": eid_id})
    return stored


# the hash of the eID an idp.eids.with_attributes statement reads: the password step reads both
HASH_OF_EID = (
    select(tables.password_credentials.c.hash)
    .where(tables.password_credentials.c.eid_id == tables.eids.c.id)
    .scalar_subquery()
)


def set_hash(
    tx: Tx, *, eid_id: str, tenant_id: str, new_hash: str, reason: str, client_ip: str | None = None
) -> None:
    """Store a (new) password hash for ``eid_id`` and audit why (set, changed, reset, rehashed)."""
    c = tables.password_credentials.c
    done = tx.conn.execute(
        update(tables.password_credentials).where(c.eid_id == eid_id).values(hash=new_hash, updated_at=tx.now)
    )
    if done.rowcount == 0:
        tx.conn.execute(
            tables.password_credentials.insert().values(
                eid_id=eid_id, hash=new_hash, created_at=tx.now, updated_at=tx.now
            )
        )
    audit.record(
        tx,
        audit.AuditEvent(
            f"password.{reason}", tenant_id=tenant_id, eid_id=eid_id, client_ip=client_ip, details={}
        ),
    )
