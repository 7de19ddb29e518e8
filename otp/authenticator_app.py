"""Authenticator apps (TOTP, RFC 6238): enrolment by QR code, confirmation, verification, removal.

An eID has at most one confirmed app. Enrolment is two steps: :func:`begin_enrolment` makes a
secret and shows it (QR code with the ``otpauth://`` URI, and the key for typing in by hand);
:func:`confirm_enrolment` takes the first code from the app, which proves the app holds the
secret, and replaces any earlier app. A pending enrolment lives ``ttl`` seconds.

The shared secret must be read back to check codes, so it is sealed (AES-256-GCM under a key
derived from the instance secret, :func:`idp.secrets.seal`) with the eID and the enrolment bound
as associated data. The last accepted time step is stored with a conditional update, so a code
(RFC 6238 §5.2: "MUST NOT accept the second attempt of the same OTP") is accepted once even when
two requests race with it.

Successful state changes are audited here, in the caller's transaction. Refusals raise
:class:`~otp.totp.OTPError` and leave the transaction to be rolled back; the caller records the
failure event (as the web layer does for every refused login).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import segno
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, bindparam, delete, select, update

from idp import audit, eids, secrets
from idp.errors import IdPError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared
from otp import totp
from otp.totp import OTPError

ENROLMENT_TTL = 600.0
_PURPOSE = b"totp-secrets/v1"
_T = tables.totp_credentials.c


@dataclass(slots=True, frozen=True)
class Enrolment:
    """What the enrolment page shows; ``secret`` is never shown again after confirmation."""

    enrolment_id: str
    secret: str
    manual_key: str
    provisioning_uri: str
    qr_svg: str


def _event(
    conn: Connection, eid_id: str, event_type: str, *, owner: tuple[str, str] | None = None, **details: Any
) -> audit.AuditEvent:
    """The audit event of a change to the eID's app; ``owner`` (tenant id, username) when the
    caller has read it already, in the same transaction."""
    tenant_id, username = owner or eids.owner(conn, eid_id)
    return audit.AuditEvent(
        event_type,
        tenant_id=tenant_id,
        eid_id=eid_id,
        username=username,
        details={"method": "totp", **details},
    )


def _bound(eid_id: str, enrolment_id: str) -> bytes:
    return f"{eid_id}:{enrolment_id}".encode()


def _unseal(sealing_key: bytes | str, row: Any) -> str:
    """The secret of a ``totp_credentials`` row (a mapping of its columns)."""
    try:
        plain = secrets.unseal(
            sealing_key,
            bytes(row["secret_sealed"]),
            purpose=_PURPOSE,
            associated_data=_bound(row["eid_id"], row["id"]),
        )
    except (InvalidTag, ValueError):
        raise IdPError(
            "the authenticator app's secret cannot be unsealed: the instance secret (IDP_SECRET_KEY) "
            "differs from the one it was sealed with, or the row was altered"
        ) from None
    return plain.decode("ascii")


def qr_svg(uri: str) -> str:
    """An inline SVG QR code (ISO/IEC 18004, error correction level M) of ``uri``."""
    return str(segno.make(uri, error="m", micro=False).svg_inline(scale=4, border=4, title="QR code"))


def shown_again(*, enrolment_id: str, provisioning_uri: str, manual_key: str) -> dict[str, str]:
    """A pending enrolment shown again after a wrong first code, from what the page posted back
    (the app already holds that key). Only an ``otpauth://`` URI is kept: the page puts it in a
    link and a QR code."""
    uri = provisioning_uri[:512] if provisioning_uri.startswith("otpauth://") else ""
    return {
        "enrolment_id": enrolment_id,
        "provisioning_uri": uri,
        "manual_key": manual_key[:128],
        "qr_svg": qr_svg(uri) if uri else "",
    }


def begin_enrolment(
    tx: Tx,
    *,
    eid_id: str,
    account_name: str,
    issuer_name: str,
    sealing_key: bytes | str,
    now: float,
) -> Enrolment:
    """Start enrolling an app: a fresh secret, sealed and stored unconfirmed (earlier pending
    enrolments of the eID are dropped). ``account_name`` and ``issuer_name`` label the entry in
    the app (Google Authenticator Key Uri Format), where ``:`` separates them: a colon in either
    becomes a space."""
    tenant_id, username = eids.owner(tx.conn, eid_id)
    secret = totp.new_secret()
    uri = totp.provisioning_uri(
        secret=secret, account_name=account_name.replace(":", " "), issuer_name=issuer_name.replace(":", " ")
    )
    enrolment_id = str(uuid.uuid4())
    tx.conn.execute(delete(tables.totp_credentials).where((_T.eid_id == eid_id) & _T.confirmed_at.is_(None)))
    tx.conn.execute(
        tables.totp_credentials.insert().values(
            id=enrolment_id,
            eid_id=eid_id,
            secret_sealed=secrets.seal(
                sealing_key,
                secret.encode("ascii"),
                purpose=_PURPOSE,
                associated_data=_bound(eid_id, enrolment_id),
            ),
            created_at=now,
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "otp.totp.enrolment_started",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            details={"method": "totp", "enrolment_id": enrolment_id},
        ),
    )
    return Enrolment(enrolment_id, secret, totp.manual_entry_key(secret=secret), uri, qr_svg(uri))


def confirm_enrolment(
    tx: Tx,
    *,
    eid_id: str,
    enrolment_id: str,
    code: str,
    sealing_key: bytes | str,
    now: float,
    ttl: float = ENROLMENT_TTL,
) -> None:
    """Confirm the enrolment with a code from the app; the app replaces any earlier one.

    Raises :class:`OTPError`: ``expired`` (no such pending enrolment, or older than ``ttl``),
    ``malformed`` or ``invalid`` (the code, which the caller should count against its limits).
    """
    row = tx.conn.execute(
        select(tables.totp_credentials).where(
            (_T.id == enrolment_id) & (_T.eid_id == eid_id) & _T.confirmed_at.is_(None)
        )
    ).first()
    if row is None:
        raise OTPError("expired", "no authenticator app enrolment is in progress; start again")
    if row.created_at + ttl <= now:
        raise OTPError(
            "expired", f"the enrolment was not confirmed within {int(ttl // 60)} minutes; start again"
        )
    step = totp.verify(secret=_unseal(sealing_key, row._mapping), code=code, now=now, last_used_step=None)
    replaced = tx.conn.execute(
        delete(tables.totp_credentials).where((_T.eid_id == eid_id) & _T.confirmed_at.is_not(None))
    ).rowcount
    confirmed = tx.conn.execute(
        update(tables.totp_credentials)
        .where((_T.id == enrolment_id) & _T.confirmed_at.is_(None))
        .values(confirmed_at=now, last_used_step=step, last_used_at=now)
    )
    if confirmed.rowcount != 1:  # a racing confirmation won
        raise OTPError("replayed", "this enrolment was already confirmed")
    audit.record(
        tx, _event(tx.conn, eid_id, "otp.totp.enrolled", enrolment_id=enrolment_id, replaced=bool(replaced))
    )


def verify(tx: Tx, *, eid_id: str, code: str, sealing_key: bytes | str, now: float) -> None:
    """Accept a code from the eID's app once (RFC 6238 §5.2, ±1 step), or raise :class:`OTPError`:
    ``not_enrolled``, ``malformed``, ``invalid`` or ``replayed`` (a step at or before the last
    accepted one, also when a racing request took it first)."""
    row = _CONFIRMED.first(tx.conn, {"e": eid_id})
    if row is None:
        raise OTPError("not_enrolled", "this eID has no authenticator app")
    step = totp.verify(
        secret=_unseal(sealing_key, row), code=code, now=now, last_used_step=row["last_used_step"]
    )
    taken = _TAKE_STEP.run(tx.conn, {"credential": row["id"], "step": step, "now": now})
    if taken != 1:
        raise OTPError("replayed", f"the code of time step {step} was already used")
    owner = (row["tenant_id"], row["username"])
    audit.record(tx, _event(tx.conn, eid_id, "otp.totp.verified", owner=owner, step=step))


# a login's code step runs these: built once, run on the driver (idp.storage.prepared); the app
# comes with its eID's tenant and username for the audit event, one round trip rather than two
_CONFIRMED = Prepared(
    select(tables.totp_credentials, tables.eids.c.tenant_id, tables.eids.c.username)
    .join(tables.eids, tables.eids.c.id == _T.eid_id)
    .where((_T.eid_id == bindparam("e")) & _T.confirmed_at.is_not(None))
)
_TAKE_STEP = Prepared(
    update(tables.totp_credentials)
    .where(
        (_T.id == bindparam("credential"))
        & (_T.last_used_step.is_(None) | (_T.last_used_step < bindparam("step")))
    )
    .values(last_used_step=bindparam("step"), last_used_at=bindparam("now"))
)
_HAS_APP = Prepared(
    select(_T.id).where((_T.eid_id == bindparam("e")) & _T.confirmed_at.is_not(None)).limit(1)
)
# the id of the confirmed app of the eID an idp.eids.with_attributes statement reads, NULL without
# one: the code step reads it with the person (idp.web.code_routes)
APP_OF_EID = (
    select(_T.id)
    .where((_T.eid_id == tables.eids.c.id) & _T.confirmed_at.is_not(None))
    .limit(1)
    .scalar_subquery()
)


def has_app(conn: Connection, eid_id: str) -> bool:
    """Whether the eID has a confirmed authenticator app."""
    return _HAS_APP.first(conn, {"e": eid_id}) is not None


def remove(tx: Tx, *, eid_id: str) -> None:
    """Remove the eID's app and any pending enrolment (nothing to do is not an error)."""
    confirmed = tx.conn.execute(
        delete(tables.totp_credentials).where((_T.eid_id == eid_id) & _T.confirmed_at.is_not(None))
    ).rowcount
    tx.conn.execute(delete(tables.totp_credentials).where(_T.eid_id == eid_id))
    if confirmed:
        audit.record(tx, _event(tx.conn, eid_id, "otp.totp.removed"))
