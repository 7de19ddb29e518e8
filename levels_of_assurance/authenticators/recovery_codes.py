"""Recovery codes: single-use look-up secrets for when the phone or authenticator is lost.

NIST SP 800-63B §5.1.2 (look-up secrets): each code is random with at least 20 bits of entropy
(these have 50: ten characters from Crockford's base32 alphabet, which leaves out I, L, O and U
so nothing reads as another character), is used once, and is stored as a digest. The codes are
random, so SHA-256 is enough (DESIGN.md); the eID's id salts it, so one table of precomputed
digests does not serve every account. The person sees the codes once, at issue.

A set a person asks for is first *proposed* (:func:`propose`): stored pending, shown, and put in
use, in place of the earlier set, only when the person confirms they saved it (:func:`confirm`).
Until then the earlier codes still work and the new ones do not, so a page that never reached
the person, or was closed unread, cannot leave them with codes they never saw. :func:`issue`
puts a set in use at once (the administrator's and the tests' way).

What a person types is normalised (case, spaces, dashes; and O→0, I/L→1 as Crockford decodes
them) before it is compared.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, bindparam, delete, func, select, update

from idp import audit, eids
from idp.errors import LoginError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared
from levels_of_assurance.authenticators import Proves
from levels_of_assurance.ladder import AMR, Level

PROVES = Proves(
    method="recovery_code",
    amr=(AMR.OTP,),
    factor="possession",
    phishing_resistant=False,
    level=Level.ADVANCED,
)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: 5 bits a character
LENGTH = 10  # 50 bits
GROUP = 5
DEFAULT_COUNT = 10
# a proposed set never confirmed is purged after this (idp.retention): long enough to write the
# codes down, and the person can always make new ones
PROPOSAL_TTL = 24 * 3600.0
_DECODE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_R = tables.recovery_codes.c


class RecoveryCodeProblem(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    USED = "used"


class RecoveryCodeSetError(LoginError):
    """A set could not be confirmed: ``stale`` (a newer set was proposed or put in use since)."""

    def __init__(self, message: str) -> None:
        super().__init__("stale", message)


@dataclass(slots=True, frozen=True)
class Proposal:
    """A proposed set: its id (for :func:`confirm`) and its codes, to show once;
    ``replaced_unsaved``: it voids a set proposed before and not confirmed (a page reloaded, or
    shown in another window), whose codes the person may have begun to write down."""

    set_id: str
    codes: list[str]
    made_at: float
    replaced_unsaved: bool = False


class RecoveryCodeError(LoginError):
    """A recovery code was refused; ``code`` is a :class:`RecoveryCodeProblem`."""

    def __init__(self, code: RecoveryCodeProblem, message: str) -> None:
        super().__init__(code, message)


def normalize(code: str) -> str:
    """Upper case without spaces or dashes, with Crockford's look-alikes mapped to their digits."""
    return "".join(code.split()).replace("-", "").upper().translate(_DECODE)


def _digest(eid_id: str, normalized: str) -> str:
    return hashlib.sha256(f"{eid_id}:{normalized}".encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:GROUP]}-{raw[GROUP:]}"


def _new_codes(count: int) -> list[str]:
    if not 1 <= count <= 100:
        raise ValueError(f"count must be between 1 and 100, got {count}")
    codes: list[str] = []
    while len(codes) < count:  # a repeat within a set has odds of about 2^-44; skip it anyway
        code = _new_code()
        if code not in codes:
            codes.append(code)
    return codes


def _store(tx: Tx, eid_id: str, codes: list[str], now: float, set_id: str, *, pending: bool) -> None:
    tx.conn.execute(
        tables.recovery_codes.insert(),
        [
            {
                "eid_id": eid_id,
                "digest": _digest(eid_id, normalize(c)),
                "created_at": now,
                "used_at": None,
                "set_id": set_id,
                "pending": pending,
            }
            for c in codes
        ],
    )


def _delete_in_use(tx: Tx, eid_id: str) -> int:
    """Delete the set in use; how many codes it had, used or not."""
    deleted = tx.conn.execute(delete(tables.recovery_codes).where((_R.eid_id == eid_id) & ~_R.pending))
    return int(deleted.rowcount)


def _delete_pending(tx: Tx, eid_id: str) -> int:
    return int(
        tx.conn.execute(delete(tables.recovery_codes).where((_R.eid_id == eid_id) & _R.pending)).rowcount
    )


def _issued(tx: Tx, eid_id: str, owner: tuple[str, str], count: int, replaced: int) -> None:
    tenant_id, username = owner
    audit.record(
        tx,
        audit.AuditEvent(
            "recovery_codes.issued",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": PROVES.method, "count": count, "replaced": replaced},
        ),
    )


def issue(tx: Tx, *, eid_id: str, now: float, count: int = DEFAULT_COUNT) -> list[str]:
    """A fresh set of ``count`` codes (``XXXXX-XXXXX``) in use at once, in place of any earlier
    set; show them once. A person's own request goes through :func:`propose` instead."""
    codes = _new_codes(count)
    owner = eids.owner(tx.conn, eid_id)  # NotFoundError before anything is written
    _delete_pending(tx, eid_id)
    replaced = _delete_in_use(tx, eid_id)
    _store(tx, eid_id, codes, now, _new_set_id(), pending=False)
    _issued(tx, eid_id, owner, count, replaced)
    return codes


def propose(tx: Tx, *, eid_id: str, now: float, count: int = DEFAULT_COUNT) -> Proposal:
    """A fresh set of ``count`` codes to show once, pending until :func:`confirm`; it replaces
    any earlier pending set, and leaves the set in use as it is."""
    codes = _new_codes(count)
    set_id = _new_set_id()
    tenant_id, username = eids.owner(tx.conn, eid_id)
    replaced = _delete_pending(tx, eid_id) > 0
    _store(tx, eid_id, codes, now, set_id, pending=True)
    audit.record(
        tx,
        audit.AuditEvent(
            "recovery_codes.shown",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": PROVES.method, "count": count},
        ),
    )
    return Proposal(set_id=set_id, codes=codes, made_at=now, replaced_unsaved=replaced)


@dataclass(slots=True, frozen=True)
class Confirmed:
    """A confirmed set: how many codes it has, and whether this confirmation put it in use."""

    count: int
    put_in_use: bool


def confirm(tx: Tx, *, eid_id: str, set_id: str) -> Confirmed:
    """Put the proposed set ``set_id`` in use in place of the earlier set (the person has saved
    it). A set already in use is confirmed again without change (a form sent twice):
    ``put_in_use`` is then False.

    Raises :class:`RecoveryCodeSetError` if ``set_id`` is neither the eID's pending set nor the
    one in use: a newer set was proposed since (in another window), or put in use.
    """
    if set_id:
        in_set = (_R.eid_id == eid_id) & (_R.set_id == set_id)
        pending = tx.conn.execute(select(func.count()).where(in_set & _R.pending)).scalar_one()
        if pending:
            replaced = _delete_in_use(tx, eid_id)
            tx.conn.execute(update(tables.recovery_codes).where(in_set).values(pending=False))
            _issued(tx, eid_id, eids.owner(tx.conn, eid_id), int(pending), replaced)
            return Confirmed(int(pending), put_in_use=True)
        in_use = tx.conn.execute(select(func.count()).where(in_set & ~_R.pending)).scalar_one()
        if in_use:
            return Confirmed(int(in_use), put_in_use=False)
    raise RecoveryCodeSetError("these recovery codes were replaced by newer ones")


def _new_set_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters


def use(tx: Tx, *, eid_id: str, code: str, now: float) -> int:
    """Spend one code; returns how many unused codes remain.

    Raises :class:`RecoveryCodeError`: ``malformed`` (not ten characters of the alphabet after
    normalising), ``unknown`` (not one of the eID's current codes) or ``used``.
    """
    normalized = normalize(code)
    if len(normalized) != LENGTH or any(ch not in ALPHABET for ch in normalized):
        raise RecoveryCodeError(
            RecoveryCodeProblem.MALFORMED,
            f"a recovery code has {LENGTH} letters and digits, like ABCDE-12345",
        )
    digest = _digest(eid_id, normalized)
    spent = tx.conn.execute(
        update(tables.recovery_codes)
        .where((_R.eid_id == eid_id) & (_R.digest == digest) & _R.used_at.is_(None) & ~_R.pending)
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        known = tx.conn.execute(
            select(_R.used_at).where((_R.eid_id == eid_id) & (_R.digest == digest) & ~_R.pending)
        ).first()
        if known is None:
            raise RecoveryCodeError(RecoveryCodeProblem.UNKNOWN, "this is not one of your recovery codes")
        raise RecoveryCodeError(RecoveryCodeProblem.USED, "this recovery code was already used")
    left = remaining(tx.conn, eid_id=eid_id)
    tenant_id, username = eids.owner(tx.conn, eid_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "recovery_codes.used",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": PROVES.method, "remaining": left},
        ),
    )
    return left


def remaining(conn: Connection, *, eid_id: str) -> int:
    """How many of the eID's recovery codes are still unused."""
    return int(_REMAINING.scalar(conn, {"e": eid_id}))


_REMAINING = Prepared(
    select(func.count())
    .select_from(tables.recovery_codes)
    .where((_R.eid_id == bindparam("e")) & _R.used_at.is_(None) & ~_R.pending)
)
# how many codes of the eID an idp.eids.with_attributes statement reads are unused: the code step
# reads it with the person (idp.web.code_routes)
REMAINING_OF_EID = (
    select(func.count())
    .select_from(tables.recovery_codes)
    .where((_R.eid_id == tables.eids.c.id) & _R.used_at.is_(None) & ~_R.pending)
    .scalar_subquery()
)
