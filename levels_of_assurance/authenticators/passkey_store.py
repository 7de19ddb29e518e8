"""Storage for passkeys: credentials and single-use ceremony challenges (WebAuthn Level 3).

The ceremonies themselves are in :mod:`levels_of_assurance.authenticators.passkey`; this module
keeps what they store and the errors they raise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, delete, select, update
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

from idp import audit, eids, secrets
from idp.errors import LoginError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared

CHALLENGE_TTL = 300.0
CHALLENGE_BYTES = 32
METHOD = "passkey"
_P = tables.passkey_credentials.c
_CH = tables.passkey_challenges.c


class PasskeyProblem(StrEnum):
    UNKNOWN_CHALLENGE = "unknown_challenge"
    EXPIRED_CHALLENGE = "expired_challenge"
    USED_CHALLENGE = "used_challenge"
    INVALID_RESPONSE = "invalid_response"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    NO_PASSKEY = "no_passkey"
    ALREADY_REGISTERED = "already_registered"
    USER_NOT_VERIFIED = "user_not_verified"
    CLONED_AUTHENTICATOR = "cloned_authenticator"
    INVALID_NAME = "invalid_name"


class PasskeyError(LoginError):
    """A WebAuthn ceremony failed; ``code`` is a :class:`PasskeyProblem`."""

    def __init__(self, code: PasskeyProblem, message: str) -> None:
        super().__init__(code, message)


@dataclass(slots=True, frozen=True)
class Passkey:
    credential_id: str  # base64url
    eid_id: str
    name: str
    aaguid: str
    transports: tuple[str, ...]
    backup_eligible: bool
    backup_state: bool
    user_verified: bool
    sign_count: int
    created_at: float
    last_used_at: float | None


def to_passkey(row: Any) -> Passkey:
    return Passkey(
        credential_id=row.credential_id,
        eid_id=row.eid_id,
        name=row.name,
        aaguid=row.aaguid,
        transports=tuple(row.transports or ()),
        backup_eligible=bool(row.backup_eligible),
        backup_state=bool(row.backup_state),
        user_verified=bool(row.user_verified),
        sign_count=int(row.sign_count),
        created_at=float(row.created_at),
        last_used_at=None if row.last_used_at is None else float(row.last_used_at),
    )


def descriptors(conn: Connection, eid_id: str) -> list[PublicKeyCredentialDescriptor]:
    rows = conn.execute(
        select(_P.credential_id, _P.transports).where(_P.eid_id == eid_id).order_by(_P.created_at)
    )
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(r.credential_id),
            transports=[AuthenticatorTransport(t) for t in (r.transports or ()) if t in known] or None,
        )
        for r in rows
    ]


def new_challenge(tx: Tx, *, ceremony: str, eid_id: str | None, rp_id: str, now: float) -> tuple[str, bytes]:
    challenge_id = secrets.new_secret()
    challenge = os.urandom(CHALLENGE_BYTES)  # §13.4.3: at least 16 random bytes
    _NEW_CHALLENGE.run(
        tx.conn,
        {
            "id_digest": secrets.digest(challenge_id),
            "challenge": challenge,
            "ceremony": ceremony,
            "eid_id": eid_id,
            "rp_id": rp_id,
            "created_at": now,
            "expires_at": now + CHALLENGE_TTL,
        },
    )
    return challenge_id, challenge


# every sign-in page offers a passkey: built once, run on the driver (idp.storage.prepared)
_NEW_CHALLENGE = Prepared(tables.passkey_challenges.insert())


def take_challenge(tx: Tx, *, challenge_id: str, ceremony: str, rp_id: str, now: float) -> Any:
    digest = secrets.digest(challenge_id)
    row = tx.conn.execute(select(tables.passkey_challenges).where(_CH.id_digest == digest)).first()
    if row is None or row.ceremony != ceremony or row.rp_id != rp_id:
        raise PasskeyError(PasskeyProblem.UNKNOWN_CHALLENGE, f"no {ceremony} ceremony with this challenge id")
    if row.used_at is not None:
        raise PasskeyError(
            PasskeyProblem.USED_CHALLENGE, "this passkey challenge was already used; start again"
        )
    if row.expires_at <= now:
        raise PasskeyError(
            PasskeyProblem.EXPIRED_CHALLENGE,
            f"the passkey prompt expired after {int(CHALLENGE_TTL // 60)} minutes",
        )
    taken = tx.conn.execute(
        update(tables.passkey_challenges)
        .where((_CH.id_digest == digest) & _CH.used_at.is_(None))
        .values(used_at=now)
    )
    if taken.rowcount != 1:
        raise PasskeyError(
            PasskeyProblem.USED_CHALLENGE, "this passkey challenge was already used; start again"
        )
    return row


def spend_challenge(tx: Tx, *, challenge_id: str, ceremony: str, now: float) -> None:
    """Mark a challenge used after a refused attempt (§13.4.3: each challenge is used once).

    :func:`take_challenge` marks it in the ceremony's transaction, which a refusal rolls back;
    the caller then spends it here, in the transaction that records the failure. Unknown, used
    or other ceremonies' challenges are left as they are.
    """
    tx.conn.execute(
        update(tables.passkey_challenges)
        .where(
            (_CH.id_digest == secrets.digest(challenge_id))
            & (_CH.ceremony == ceremony)
            & _CH.used_at.is_(None)
        )
        .values(used_at=now)
    )


def list_passkeys(conn: Connection, *, eid_id: str) -> list[Passkey]:
    """The eID's passkeys, oldest first."""
    rows = conn.execute(select(tables.passkey_credentials).where(_P.eid_id == eid_id).order_by(_P.created_at))
    return [to_passkey(r) for r in rows]


def remove_passkey(tx: Tx, *, eid_id: str, credential_id: str) -> None:
    """Remove one of the eID's passkeys; :class:`NotFoundError` when it has no such passkey."""
    gone = tx.conn.execute(
        delete(tables.passkey_credentials).where((_P.eid_id == eid_id) & (_P.credential_id == credential_id))
    ).rowcount
    if gone != 1:
        raise NotFoundError("this eID has no such passkey")
    tenant_id, username = eids.owner(tx.conn, eid_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "passkey.removed",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": METHOD, "credential_id": credential_id[:64]},
        ),
    )
