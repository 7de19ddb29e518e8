"""An invitation to an address that already has an eID: whether its steps may enrol what the
level needs on that eID (:func:`enrolment_on`), and that nothing appeared on it meanwhile that
they would get around (:func:`check_still_enrolling`).

The link proves the address and the SMS step the sender's number, as they would for a new eID; a
password the eID has must be entered, not set anew. An eID with a code method of its own, a
passkey, a lock or identity proofing is sent to sign in instead: an invitation never replaces a
way to sign in that is there.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Connection

from idp import account, audit, eids, invitations, proofing
from idp.errors import ConflictError
from idp.storage.database import Tx


class Enrolment(StrEnum):
    """How an invitation treats the eID its address already has."""

    NONE = "none"  # the eID is sent to sign in
    SET_PASSWORD = "set_password"  # the steps set a password and a code method on it
    PROVE_PASSWORD = "prove_password"  # the person enters the eID's password, then adds a code method


def enrolment_on(conn: Connection, invitation: invitations.Invitation, person: eids.EID) -> Enrolment:
    """Whether ``invitation`` may enrol its level's sign-in methods on ``person``, the eID its
    address already has: only if the level needs more than the email link, and the eID is
    active and has no code method, passkey, lock or identity proofing — nothing that the link and
    an SMS code to the sender's number would otherwise be enough to get around. A verified mobile
    number is a code method unless it is the invitation's own: then the SMS step proves it. A
    password the eID has is kept, and proven in the steps instead of set."""
    if not invitation.needs_password or person.status != eids.EIDStatus.ACTIVE:
        return Enrolment.NONE
    has = account.enrolled(conn, person)
    if _beyond_the_link(conn, invitation, person, has, app=has.app, codes=has.recovery_codes_left):
        return Enrolment.NONE
    return Enrolment.PROVE_PASSWORD if has.password else Enrolment.SET_PASSWORD


def _beyond_the_link(
    conn: Connection,
    invitation: invitations.Invitation,
    person: eids.EID,
    has: account.Enrolled,
    *,
    app: bool,
    codes: int,
) -> bool:
    """Whether ``person`` has what an invitation's steps must not get around: an app or recovery
    codes (``app``, ``codes``: those the invitation did not add itself), a passkey, a lock,
    identity proofing, or a verified mobile number other than the invitation's."""
    return bool(
        app
        or codes
        or has.passkeys
        or has.locked
        or (has.phone is not None and has.phone != invitation.phone_number)
        or proofing.is_proofed(conn, person.id)
    )


class EnrolmentChangedError(ConflictError):
    """The existing eID an invitation is enrolling on got, since the link was opened, what would
    have sent its person to sign in instead (another invitation completed, an administrator)."""


def check_still_enrolling(conn: Connection, invitation: invitations.Invitation) -> None:
    """For an invitation enrolling on an existing eID (``enrols_existing``): raise
    :class:`EnrolmentChangedError` when :func:`enrolment_on` would no longer allow it, not
    counting what the invitation's own steps (as its ``progress`` records them) added. Called in
    each step's unit before it changes the eID, so that a step never replaces an app, recovery
    codes, a password or a mobile number the eID got meanwhile."""
    if not invitation.enrols_existing or invitation.eid_id is None:
        return
    person = eids.get(conn, invitation.eid_id)
    has = account.enrolled(conn, person)
    done = invitation.progress
    own_app = done.get("factor") == "totp"
    own_codes = "recovery_shown_at" in done
    set_password = done.get("existing_eid") == Enrolment.SET_PASSWORD and "password_at" not in done
    if (
        person.status != eids.EIDStatus.ACTIVE
        or _beyond_the_link(
            conn,
            invitation,
            person,
            has,
            app=has.app and not own_app,
            codes=0 if own_codes else has.recovery_codes_left,
        )
        or (set_password and has.password)
    ):
        raise EnrolmentChangedError("the eID got other sign-in methods since the invitation was opened")


def enrol_on_existing(
    tx: Tx, invitation: invitations.Invitation, person: eids.EID, how: Enrolment, *, client_ip: str | None
) -> invitations.Invitation:
    """Continue ``invitation`` on ``person``'s eID as :func:`enrolment_on` found it may (``how``):
    its details stay as they are, so the step that confirms the sender's is done."""
    audit.record(
        tx,
        audit.AuditEvent(
            "invitation.existing_eid",
            tenant_id=invitation.tenant_id,
            eid_id=person.id,
            client_ip=client_ip,
            transaction_id=invitation.id,
            details={"acr": invitation.acr, "enrolment": str(how)},
            process_state="onboarding",
        ),
    )
    return invitations.record_progress(
        tx, invitation, existing_eid=str(how), details_confirmed_at=tx.now, eid_id=person.id
    )
