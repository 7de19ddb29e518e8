"""Security notices: a mail to the eID's own address when what guards it changed.

A person whose password, mobile number, authenticator app, passkeys or recovery codes were
changed, or whose eID was blocked or locked, hears of it at the address the eID was created
for, so that a change someone else made does not go unnoticed: the mail says what changed,
when and from which IP address, and what to do if it was not them. An administrator lifting a
lock or enabling the eID again is told too (without the administrator's IP address).

A notice is sent after the change is committed, in the background: a mail server that is down
never holds up or fails the change. Whether it was handed over is audited
(``security_notice.sent``, or ``security_notice.delivery_failed`` with the error).

Its language is that of the person's browser when they made the change themselves; a lock,
which a stranger's wrong guesses may cause, and what an administrator did, are told in the
language of the eID's latest invitation, else in the service's default language.

A new mobile number is also told by SMS to the verified number it replaced, never to the new one
(:func:`send_sms`): whoever took over the mailbox could otherwise move the SMS factor unseen, and
the old phone is often the one the owner still holds. It says what changed and when, signed with
the tenant's SMS name, in the mail's language, and is audited the same way (``channel: sms``,
the number masked as in the ``otp.sms.*`` events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, select

from idp import audit, eids, tenants
from idp.delivery.mail import Mailer, compose
from idp.delivery.sms import SMSSender
from idp.errors import DeliveryError, InvalidPhoneError, NotFoundError
from idp.settings import Settings
from idp.storage import tables
from idp.storage.database import Database, Tx
from idp.web.branding import sms_name
from idp.web.i18n import N_, SMS_PHONE_CHANGED, Pages, utc_minute
from idp.web.state import AppState
from levels_of_assurance.authenticators.passkey import MAX_NAME
from otp.phone import mask_phone

log = logging.getLogger(__name__)


class Notice(StrEnum):
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    PHONE_CHANGED = "phone_changed"
    APP_SET_UP = "app_set_up"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    RECOVERY_CODES = "recovery_codes"
    BLOCKED = "blocked"
    LOCKED = "locked"
    UNLOCKED = "unlocked"  # by an administrator
    ENABLED = "enabled"  # by an administrator, after a suspension or a block


SUBJECTS = {
    Notice.PASSWORD_CHANGED: N_("The password of your eID was changed"),
    Notice.PASSWORD_RESET: N_("The password of your eID was reset"),
    Notice.PHONE_CHANGED: N_("The mobile number of your eID was changed"),
    Notice.APP_SET_UP: N_("An authenticator app was set up for your eID"),
    Notice.PASSKEY_ADDED: N_("A passkey was added to your eID"),
    Notice.PASSKEY_REMOVED: N_("A passkey was removed from your eID"),
    Notice.RECOVERY_CODES: N_("New recovery codes for your eID"),
    Notice.BLOCKED: N_("Your eID was blocked"),
    Notice.LOCKED: N_("Your eID was locked"),
    Notice.UNLOCKED: N_("Your eID was unlocked"),
    Notice.ENABLED: N_("Your eID can be used again"),
}

# what is also texted to the number a change replaced
SMS_TEXTS = {Notice.PHONE_CHANGED: SMS_PHONE_CHANGED}


def one_line(text: str | None, *, limit: int = MAX_NAME) -> str | None:
    """A name the person typed, fit to stand inside a sentence of the mail: control and formatting
    characters (a newline, a bidi override) become spaces, a run of spaces one, and a name longer
    than ``limit`` characters is cut (ending in "…"); None when nothing is left. The HTML part
    escapes it as it does every value."""
    if text is None:
        return None
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned or None


def send(
    st: AppState,
    *,
    person: eids.EID,
    notice: Notice,
    ip: str | None,
    language: str | None = None,
    phone: str | None = None,
    passkey: str | None = None,
) -> None:
    """Mail ``notice`` to ``person`` in the background. ``language``: the page language of the
    person who made the change; None for the eID's own (see the module docstring). ``phone``:
    the new number, masked, for :attr:`Notice.PHONE_CHANGED`. ``passkey``: the name of the
    passkey added or removed, as the account page lists it."""
    st.spawn(
        deliver(
            db=st.db,
            pages=st.pages,
            settings=st.settings,
            mailer=st.mailer,
            person=person,
            notice=notice,
            ip=ip,
            language=language,
            phone=phone,
            passkey=passkey,
        ),
        delivery=True,
    )


def _latest_invitation_language(conn: Connection, eid_id: str) -> str | None:
    i = tables.invitations.c
    return conn.execute(
        select(i.language).where((i.eid_id == eid_id) & i.language.is_not(None)).order_by(i.created_at.desc())
    ).scalar()


async def deliver(
    *,
    db: Database,
    pages: Pages,
    settings: Settings,
    mailer: Mailer,
    person: eids.EID,
    notice: Notice,
    ip: str | None = None,
    language: str | None = None,
    phone: str | None = None,
    passkey: str | None = None,
) -> None:
    """Compose and hand over the notice, and audit the outcome (:func:`send` runs it in the
    background; ``idp user enable`` and ``unlock`` wait for it)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        # as it is now: an eID erased meanwhile is told nothing, and nothing of it is written again
        person = await db.read(lambda conn: eids.get(conn, person.id))
        to = person.value("email") or person.username
        tenant = await db.read(lambda conn: tenants.get(conn, person.tenant_id))
        if language is None:
            stored = await db.read(lambda conn: _latest_invitation_language(conn, person.id))
            # a stored tag ("sr-Latn"), Babel id ("sr_Latn") or bare range ("sr"); else the default
            language = pages.negotiate(cookie=stored, accept_language=stored)
        organisation = tenant.shown_name
        context: dict[str, Any] = {
            "notice": str(notice),
            "organisation": organisation,
            "when": when,
            "ip": ip,
            "phone": phone,
            "passkey": one_line(passkey),
            "account_link": f"{settings.issuer}/account?{urlencode({'tenant': tenant.slug})}",
            "branding": tenant.shown_branding(),
        }
        message = compose(
            sender=settings.email_from,
            to=to,
            subject=pages.gettext(language, SUBJECTS[notice]),
            text=pages.render("emails/security_notice.txt", language=language, **context),
            html=pages.render("emails/security_notice.html", language=language, **context),
            headers={"Auto-Submitted": "auto-generated"},
        )
        await mailer.send(message)
    except NotFoundError:  # the eID or its tenant was erased meanwhile: nobody left to tell
        return
    except (DeliveryError, ValueError) as exc:
        log.warning("security notice %s for eID %s not delivered: %s", notice, person.id, exc)
        failed = _event(person, "security_notice.delivery_failed", notice, error=str(exc)[:200])
        await db.write(_audited(failed))
        return
    await db.write(_audited(_event(person, "security_notice.sent", notice)))


def send_sms(st: AppState, *, person: eids.EID, notice: Notice, to: str, language: str) -> None:
    """Text ``notice`` (one of :data:`SMS_TEXTS`) to ``to``, the verified number the change just
    committed replaced, in the background, in ``language`` (the mail's).

    Not counted against the hourly SMS limits of :class:`otp.sms.PhoneVerifier`, and never refused
    by them: someone who used up the old number's or the tenant's budget must not be able to
    silence the one warning the owner's phone gets. It cannot be sent without limit either: one
    goes per committed change of a verified number to another, and each change spent an SMS code
    sent to the new number (counted against that number, the client's IP address and the tenant)
    after a fresh advanced login; sending to the old number again needs it to be verified again,
    by a code to it that its own limit counts.

    Not sent where the deployment has no SMS sender for texts of its own (Twilio Verify alone
    sends codes only): the mail notice still goes, and an undeliverable notice listed on every
    change would only alarm the person."""
    if st.sms is None:
        return
    st.spawn(
        deliver_sms(
            db=st.db, pages=st.pages, sender=st.sms, person=person, notice=notice, to=to, language=language
        ),
        delivery=True,
    )


async def deliver_sms(
    *,
    db: Database,
    pages: Pages,
    sender: SMSSender,
    person: eids.EID,
    notice: Notice,
    to: str,
    language: str,
) -> None:
    """Compose and hand over the SMS of :func:`send_sms`, and audit the outcome."""
    when = utc_minute()
    details = {"channel": "sms", "phone": _masked(to)}
    try:
        person = await db.read(lambda conn: eids.get(conn, person.id))  # as for the mail
        tenant = await db.read(lambda conn: tenants.get(conn, person.tenant_id))
        name = sms_name(tenant.branding, tenant.name)
        await sender.send(to=to, body=pages.gettext(language, SMS_TEXTS[notice], name=name, when=when))
    except NotFoundError:
        return
    except (DeliveryError, ValueError) as exc:
        # the provider's own answer (``detail``) may quote the number: only its error code is kept
        provider_code = getattr(exc, "provider_code", None)
        error = f"{exc} (provider error {provider_code})" if provider_code else str(exc)
        log.warning("security notice %s by SMS for eID %s not delivered: %s", notice, person.id, error)
        failed = _event(person, "security_notice.delivery_failed", notice, **details, error=error[:200])
        await db.write(_audited(failed))
        return
    await db.write(_audited(_event(person, "security_notice.sent", notice, **details)))


def _masked(phone: str) -> str:
    try:
        return mask_phone(phone)
    except InvalidPhoneError:  # an E.164 value the number plan no longer knows: its end only
        return "\u2022\u2022\u2022 " + phone[-3:]


def _audited(event: audit.AuditEvent) -> Callable[[Tx], None]:
    """The unit that records ``event``, unless its eID was erased while the mail went out (the
    erasure's trail ends with it; nothing of the eID is written after it)."""

    def unit(tx: Tx) -> None:
        tx.audit_head()  # first: an erasure appends under the same lock, so it is seen if it came first
        try:
            eids.get(tx.conn, str(event.eid_id))
        except NotFoundError:
            return
        audit.record(tx, event)

    return unit


def _event(person: eids.EID, event_type: str, notice: Notice, **details: str) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_type,
        success=event_type == "security_notice.sent",
        tenant_id=person.tenant_id,
        eid_id=person.id,
        username=person.username,
        details={"notice": str(notice), **details},
    )
