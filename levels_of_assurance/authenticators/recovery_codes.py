"""Recovery codes: single-use look-up secrets for when the phone or authenticator is lost.

NIST SP 800-63B §5.1.2 (look-up secrets): each code is random with at least 20 bits of entropy
(these have 50: ten characters from Crockford's base32 alphabet, which leaves out I, L, O and U
so nothing reads as another character), is used once, and is stored as a digest. The codes are
random, so SHA-256 is enough (DESIGN.md); the eID's id salts it, so one table of precomputed
digests does not serve every account. Issuing a new set replaces the old one. The person sees
the codes once, at issue.

What a person types is normalised (case, spaces, dashes; and O→0, I/L→1 as Crockford decodes
them) before it is compared.
"""

from __future__ import annotations

import hashlib
import secrets
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
_DECODE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_R = tables.recovery_codes.c


class RecoveryCodeProblem(StrEnum):
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    USED = "used"


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


def issue(tx: Tx, *, eid_id: str, now: float, count: int = DEFAULT_COUNT) -> list[str]:
    """A fresh set of ``count`` codes (``XXXXX-XXXXX``) replacing any earlier set; show them once."""
    if not 1 <= count <= 100:
        raise ValueError(f"count must be between 1 and 100, got {count}")
    tenant_id, username = eids.owner(tx.conn, eid_id)
    codes: list[str] = []
    while len(codes) < count:  # a repeat within a set has odds of about 2^-44; skip it anyway
        code = _new_code()
        if code not in codes:
            codes.append(code)
    replaced = tx.conn.execute(delete(tables.recovery_codes).where(_R.eid_id == eid_id)).rowcount
    tx.conn.execute(
        tables.recovery_codes.insert(),
        [
            {"eid_id": eid_id, "digest": _digest(eid_id, normalize(c)), "created_at": now, "used_at": None}
            for c in codes
        ],
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "recovery_codes.issued",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": PROVES.method, "count": count, "replaced": int(replaced)},
        ),
    )
    return codes


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
        .where((_R.eid_id == eid_id) & (_R.digest == digest) & _R.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        known = tx.conn.execute(
            select(_R.used_at).where((_R.eid_id == eid_id) & (_R.digest == digest))
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
    .where((_R.eid_id == bindparam("e")) & _R.used_at.is_(None))
)
# how many codes of the eID an idp.eids.with_attributes statement reads are unused: the code step
# reads it with the person (idp.web.code_routes)
REMAINING_OF_EID = (
    select(func.count())
    .select_from(tables.recovery_codes)
    .where((_R.eid_id == tables.eids.c.id) & _R.used_at.is_(None))
    .scalar_subquery()
)
