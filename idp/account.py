"""A person's own account: what the eID has enrolled, its recent security events, and the changes
the person makes to it (issue 3, item 7: account lifecycle).

The sign-in factors themselves live in their authenticator modules; this module gathers them for
the account page and ``idp user show`` (never a secret: only whether each is there), and holds the
few changes no authenticator module owns: a confirmed new mobile number, and ending every session
and token of an eID after its password was reset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, or_, select, true, update

from idp import audit, eids, lockout
from idp.errors import ConflictError, NotFoundError
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.authenticators import passkey_store, password, recovery_codes
from otp import authenticator_app

RECENT_EVENTS = 10


@dataclass(slots=True, frozen=True)
class Enrolled:
    """The eID's sign-in methods: whether each is there, never the secret behind it."""

    password: bool
    app: bool
    phone: str | None  # the verified mobile number, E.164
    recovery_codes_left: int
    passkeys: tuple[passkey_store.Passkey, ...]
    locked: bool

    @property
    def second_factors(self) -> list[str]:
        """The one-time code methods a password can be combined with (for advanced, and reset)."""
        return [
            m
            for m, ok in (("totp", self.app), ("sms", self.phone), ("recovery", self.recovery_codes_left))
            if ok
        ]

    @property
    def can_reach_advanced(self) -> bool:
        return bool(self.passkeys) or (self.password and bool(self.second_factors))

    def without_passkey(self, credential_id: str) -> Enrolled:
        """What would be left once that passkey is removed (whether it may be: :func:`remove_passkey`)."""
        return replace(self, passkeys=tuple(p for p in self.passkeys if p.credential_id != credential_id))


def enrolled(conn: Connection, person: eids.EID) -> Enrolled:
    phone = person.attributes.get(eids.AttributeName.PHONE_NUMBER)
    return Enrolled(
        password=password.stored_hash(conn, eid_id=person.id) is not None,
        app=authenticator_app.has_app(conn, person.id),
        phone=phone.value if phone is not None and phone.verified_at is not None else None,
        recovery_codes_left=recovery_codes.remaining(conn, eid_id=person.id),
        passkeys=tuple(passkey_store.list_passkeys(conn, eid_id=person.id)),
        locked=lockout.is_locked(conn, eid_id=person.id),
    )


class LastAdvancedMethodError(ConflictError):
    """A change would leave the eID no way to sign in at the advanced level."""

    code = "last_advanced_method"


def remove_passkey(tx: Tx, *, person: eids.EID, credential_id: str) -> None:
    """Remove one of ``person``'s passkeys, unless it is their last way to the advanced level
    (no other passkey, and no password with a code method): :class:`LastAdvancedMethodError`,
    and nothing is removed. Checked after the removal, in its transaction, so two removals at
    once cannot both pass."""
    passkey_store.remove_passkey(tx, eid_id=person.id, credential_id=credential_id)
    if not enrolled(tx.conn, person).can_reach_advanced:
        raise LastAdvancedMethodError("this passkey is the eID's only way to sign in at the advanced level")


@dataclass(slots=True, frozen=True)
class SecurityEvent:
    event_type: str
    occurred_at: str  # ISO 8601, UTC, as the audit trail keeps it
    success: bool
    client_ip: str | None
    details: dict[str, Any]


# What the person's own account page lists: sign-ins, changes to how they sign in, to their
# details and to their eID's status. Not the applications' token grants (one per refresh: they
# would bury the rest) nor the steps of a video identification (its decision is ``eid.proofed``).
SECURITY_EVENTS = frozenset(
    {
        "session.authenticated",
        "session.ended",
        "login.failed",
        "login.factor_proven",
        "eid.created",
        "invitation.completed",
        "eid.updated",
        "eid.phone_changed",
        "eid.attribute_verified",
        "eid.attributes_verified",
        "eid.proofed",
        "eid.proofing_revoked",
        "eid.signed_out_everywhere",
        "eid.locked",
        "eid.unlocked",
        "eid.status_changed",
        "eid.blocked_by_owner",
        "password_reset.failed",
        "security_notice.delivery_failed",  # the person's address may not reach them
    }
)
SECURITY_EVENT_FAMILIES = ("password.", "otp.", "recovery_codes.", "passkey.", "email_link.")
# steps inside another event that would take places in the short list: a code issued (its
# "sent" follows), an app's set-up begun (its "set up" follows), a hash redone with new parameters
NOT_SHOWN = ("otp.sms.issued", "otp.totp.enrolment_started", "password.rehashed")
# status changes that an event of their own already tells: the set-up from an invitation finished
# (invitation.completed), the person blocked the eID (eid.blocked_by_owner)
_TOLD_ELSEWHERE = frozenset({"onboarding_completed", "blocked_by_owner"})


def _told_elsewhere(event: SecurityEvent) -> bool:
    return event.event_type == "eid.status_changed" and event.details.get("reason") in _TOLD_ELSEWHERE


def recent_events(conn: Connection, *, eid_id: str, limit: int = RECENT_EVENTS) -> list[SecurityEvent]:
    """The eID's newest security events (:data:`SECURITY_EVENTS`), newest first (DESIGN.md,
    audit trail)."""
    a = tables.audit_events.c
    rows = conn.execute(
        select(a.event_type, a.occurred_at, a.success, a.client_ip, a.details)
        .where(
            (a.eid_id == eid_id)
            & or_(
                a.event_type.in_(sorted(SECURITY_EVENTS)),
                *(a.event_type.startswith(family, autoescape=True) for family in SECURITY_EVENT_FAMILIES),
            )
            & a.event_type.not_in(NOT_SHOWN)
        )
        .order_by(a.seq.desc())
        .limit(limit + len(_TOLD_ELSEWHERE))  # each happens once in an eID's life at most
    )
    events = (
        SecurityEvent(r.event_type, r.occurred_at, bool(r.success), r.client_ip, dict(r.details or {}))
        for r in rows
    )
    return [event for event in events if not _told_elsewhere(event)][:limit]


def change_phone(
    tx: Tx, *, eid_id: str, phone: str, evidence_ref: str, client_ip: str | None = None
) -> str | None:
    """Store ``phone`` (E.164, just confirmed by an SMS code sent to it) as the eID's verified
    mobile number; returns the verified number it replaces (None when there was none, or only one
    never verified: nothing says that number is the person's).

    The code was spent in a transaction before this one; meanwhile the eID may have been erased
    (:class:`NotFoundError`) or suspended or blocked (:class:`ConflictError`): then nothing is
    stored. The eID's row is locked, so two changes at once store one number after the other.
    """
    e = tables.eids.c
    owner = tx.conn.execute(
        select(e.tenant_id, e.username, e.status).where(e.id == eid_id).with_for_update()
    ).first()
    if owner is None:
        raise NotFoundError(f"no eID {eid_id}")
    if owner.status != eids.EIDStatus.ACTIVE:
        raise ConflictError(f"the eID is {owner.status}: its mobile number stays as it was")
    tenant_id, username = str(owner.tenant_id), str(owner.username)
    at = tables.eid_attributes.c
    where = (at.eid_id == eid_id) & (at.name == eids.AttributeName.PHONE_NUMBER.value)
    present = tx.conn.execute(select(at.value, at.verified_at).where(where)).first()
    previous = present.value if present is not None else None
    values = {"value": phone, "verified_method": "sms", "verified_at": tx.now, "evidence_ref": evidence_ref}
    if previous is None:
        tx.conn.execute(
            tables.eid_attributes.insert().values(
                eid_id=eid_id, name=eids.AttributeName.PHONE_NUMBER.value, updated_at=tx.now, **values
            )
        )
    else:
        tx.conn.execute(update(tables.eid_attributes).where(where).values(updated_at=tx.now, **values))
    tx.conn.execute(update(tables.eids).where(tables.eids.c.id == eid_id).values(updated_at=tx.now))
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.phone_changed",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            client_ip=client_ip,
            details={
                "verified_method": "sms",
                "had_phone": previous is not None,
                "evidence_ref": evidence_ref,
            },
        ),
    )
    return str(previous) if present is not None and present.verified_at is not None else None


def end_everywhere(
    tx: Tx, *, eid_id: str, reason: str, client_ip: str | None = None, keep_sid: str | None = None
) -> int:
    """End every SSO session of the eID and revoke its tokens, but for the session ``keep_sid``
    and the tokens issued under it (the person's own, after a change they made); returns how many
    sessions ended."""
    tenant_id, username = eids.owner(tx.conn, eid_id)
    s, t = tables.sso_sessions.c, tables.tokens.c
    other_sessions = s.sid != keep_sid if keep_sid else true()
    other_tokens = (t.sid.is_(None) | (t.sid != keep_sid)) if keep_sid else true()
    ended = tx.conn.execute(
        update(tables.sso_sessions)
        .where((s.eid_id == eid_id) & s.ended_at.is_(None) & other_sessions)
        .values(ended_at=tx.now)
    ).rowcount
    revoked = tx.conn.execute(
        update(tables.tokens)
        .where((t.eid_id == eid_id) & t.revoked_at.is_(None) & other_tokens)
        .values(revoked_at=tx.now)
    ).rowcount
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.signed_out_everywhere",
            tenant_id=tenant_id,
            eid_id=eid_id,
            username=username,
            client_ip=client_ip,
            details={"reason": reason, "sessions": int(ended), "tokens": int(revoked)}
            | ({"kept_current": True} if keep_sid else {}),
        ),
    )
    return int(ended)


def block(tx: Tx, *, eid_id: str, client_ip: str | None = None) -> None:
    """The person blocks their own eID (suspected misuse): no sign-in, every session and token
    ended (:func:`idp.eids.set_status`). Only an administrator re-enables it (``idp user enable``)."""
    person = eids.get(tx.conn, eid_id)
    if not person.active:
        raise ConflictError("this eID is not active")
    eids.set_status(
        tx, eid_id=eid_id, status=eids.EIDStatus.BLOCKED, reason="blocked_by_owner", actor="owner"
    )
    audit.record(
        tx,
        audit.AuditEvent(
            "eid.blocked_by_owner",
            tenant_id=person.tenant_id,
            eid_id=eid_id,
            username=person.username,
            client_ip=client_ip,
            details={"reason": "suspected_misuse"},
        ),
    )
