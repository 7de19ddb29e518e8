"""Invitations: a sender's offer of an eID, prefilled, that the invited person completes.

A sender (a relying app's operator, through ``idp user invite`` or the admin API) names the
person — email, given and family name, mobile number — and the level the eID must reach. The
person receives a single-use link by email; opening it proves the address. The first browser
that opens it owns the onboarding (nobody else can continue it), which then confirms the mobile
number by SMS, the prefilled data, a second factor and, for the advanced level, a password.

An invitee who already has an eID does not get a second one. If that eID has no code method,
passkey or identity proofing and the invitation asks for more than the email link, the
onboarding enrols what the level needs on it instead (:mod:`idp.invitation_enrolment`): the link proves
the address and the SMS step the sender's number, as they would for a new eID, and a password
the eID has must be entered, not set anew. Any other existing eID is sent to sign in; an
invitation never replaces a way to sign in that is there.

Only the link's SHA-256 digest is stored. ``progress`` records the steps done, so a person who
closes the tab continues where they left off in the same browser until the invitation expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NoReturn
from urllib.parse import urlsplit

from sqlalchemy import Connection, select, update

from idp import audit, eids, secrets, value_rules
from idp.clients import Client
from idp.errors import ConflictError, LoginError, NotFoundError
from idp.language_tags import language_tag
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.ladder import Level, acr_for, parse_acr
from otp.phone import parse_phone


class InvitationProblem(StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    OTHER_BROWSER = "other_browser"
    EID_ERASED = "eid_erased"  # the eID its steps were setting up was erased meanwhile


class InvitationError(LoginError):
    """The invitation link cannot be used; ``code`` is an :class:`InvitationProblem`."""


class AlreadyCompletedError(ConflictError):
    """The invitation was completed (in another tab) while a step was under way; the step's
    transaction writes nothing. Not a :class:`LoginError`: no code or password was wrong."""


@dataclass(slots=True, frozen=True)
class Invitation:
    id: str
    tenant_id: str
    client_id: str | None
    return_url: str | None
    email: str
    given_name: str | None
    family_name: str | None
    phone_number: str | None
    country: str | None
    acr: str
    language: str | None
    created_at: float
    expires_at: float
    opened_at: float | None = None
    eid_id: str | None = None
    completed_at: float | None = None
    progress: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> Level:
        return parse_acr(self.acr)

    @property
    def needs_password(self) -> bool:
        """Advanced and above rest on a password with a one-time code (DESIGN.md's ladder)."""
        return self.level >= Level.ADVANCED

    @property
    def enrols_existing(self) -> bool:
        """Whether this onboarding adds sign-in methods to an eID that was there before it."""
        return bool(self.progress.get("existing_eid"))

    @property
    def proves_password(self) -> bool:
        """Whether the password step checks the existing eID's password rather than setting one."""
        return self.progress.get("existing_eid") == "prove_password"


def from_row(row: Any) -> Invitation:
    return Invitation(
        id=row["id"],
        tenant_id=row["tenant_id"],
        client_id=row["client_id"],
        return_url=row["return_url"],
        email=row["email"],
        given_name=row["given_name"],
        family_name=row["family_name"],
        phone_number=row["phone_number"],
        country=row["country"],
        acr=row["acr"],
        language=row["language"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        opened_at=row.get("opened_at"),
        eid_id=row.get("eid_id"),
        completed_at=row.get("completed_at"),
        progress=dict(row["progress"] or {}),
    )


def check_return_url(url: str, client: Client) -> str:
    """Where to send the person afterwards: an https (or local http) URL on an origin the client
    registered a redirect URI on, so an invitation cannot become an open redirector."""
    # urlsplit drops tabs and line breaks, so the URL it checks would not be the one stored
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError(f"return_url must not contain spaces or control characters, got {url[:200]!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.username or parts.password:
        raise ValueError(f"return_url must be an absolute http(s) URL, got {url!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("return_url must use https")
    origins = {(urlsplit(u).scheme, urlsplit(u).netloc) for u in client.redirect_uris}
    if (parts.scheme, parts.netloc) not in origins:
        raise ValueError(
            f"return_url must be on an origin where client {client.client_id!r} has a redirect URI "
            f"({', '.join(sorted(f'{s}://{n}' for s, n in origins)) or 'none registered'})"
        )
    return url


def create(
    tx: Tx,
    *,
    tenant_id: str,
    email: str,
    acr: str,
    ttl: float,
    given_name: str | None = None,
    family_name: str | None = None,
    phone_number: str | None = None,
    country: str | None = None,
    client: Client | None = None,
    return_url: str | None = None,
    language: str | None = None,
    offered: Sequence[str] | None = None,
    created_by: str | None = None,
) -> tuple[Invitation, str]:
    """Create an invitation and return it with the secret for its link (shown only here).

    ``language`` (its mail's and pages') is stored as the BCP 47 tag of one of the ``offered``
    languages when they are given: ``sr_Latn`` and ``sr`` are stored as ``sr-Latn``, and a
    language not offered is refused (:class:`ValueError`), as is a malformed tag."""
    if language is not None:
        language = _language(language, offered)
    level = parse_acr(acr)
    address = eids.normalize_email(email)
    if level >= Level.ADVANCED and not phone_number:
        raise ValueError("an invitation for the advanced level needs the person's mobile number")
    phone = parse_phone(phone_number) if phone_number else None
    # the same rule as the eID's attributes these become (idp.value_rules)
    given_name, family_name = (
        None if value is None else value_rules.single_line(value, field=name, max_length=200)
        for name, value in (("given_name", given_name), ("family_name", family_name))
    )
    if country is not None and not eids.COUNTRY.match(country):
        raise ValueError(f"country must be an ISO 3166-1 alpha-2 code such as SI, got {country!r}")
    if client is not None and client.tenant_id != tenant_id:
        raise ValueError("the client belongs to another tenant")
    if return_url is not None:
        if client is None:
            raise ValueError("a return_url needs the client it returns to")
        check_return_url(return_url, client)
    if ttl <= 0:
        raise ValueError("an invitation must be valid for some time")
    token = secrets.new_secret()
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "digest": secrets.digest(token),
        "tenant_id": tenant_id,
        "client_id": client.client_id if client else None,
        "return_url": return_url,
        "email": address,
        "given_name": given_name.strip() if given_name else None,
        "family_name": family_name.strip() if family_name else None,
        "phone_number": phone,
        "country": country,
        "acr": acr_for(level, spelling_of=acr),
        "language": language,
        "created_by": created_by,
        "created_at": tx.now,
        "expires_at": tx.now + ttl,
        "progress": {},
    }
    tx.conn.execute(tables.invitations.insert().values(**row))
    audit.record(
        tx,
        audit.AuditEvent(
            "invitation.created",
            tenant_id=tenant_id,
            transaction_id=row["id"],
            details={
                "acr": row["acr"],
                "client_id": row["client_id"],
                "created_by": created_by,
                "address_digest": secrets.digest(address)[:16],
            },
            process_state="invited",
        ),
    )
    return from_row(row), token


def _problem(row: Any, now: float) -> InvitationProblem | None:
    if row["revoked_at"] is not None:
        return InvitationProblem.REVOKED
    if row["completed_at"] is not None:
        return InvitationProblem.USED
    if row["expires_at"] <= now:
        return InvitationProblem.EXPIRED
    if row["eid_id"] is None and "details_confirmed_at" in (row["progress"] or {}):
        return InvitationProblem.EID_ERASED  # the foreign key set it NULL: no step could go on
    return None


_MESSAGES = {
    InvitationProblem.UNKNOWN: "this invitation link is not known",
    InvitationProblem.EXPIRED: "this invitation has expired",
    InvitationProblem.USED: "this invitation was already used",
    InvitationProblem.REVOKED: "this invitation was withdrawn",
    InvitationProblem.OTHER_BROWSER: "this invitation is being completed in another browser",
    InvitationProblem.EID_ERASED: "the eID this invitation was setting up was erased",
}


def _raise(problem: InvitationProblem) -> NoReturn:
    raise InvitationError(problem, _MESSAGES[problem])


def _live(conn: Connection, where: Any, now: float) -> dict[str, Any]:
    """The invitation row matching ``where`` if it can still be used; InvitationError otherwise."""
    found = conn.execute(select(tables.invitations).where(where)).mappings().first()
    if found is None:
        _raise(InvitationProblem.UNKNOWN)
    problem = _problem(found, now)
    if problem:
        _raise(problem)
    return dict(found)


def peek(conn: Connection, *, token: str, now: float, browser: str | None = None) -> Invitation:
    """The invitation behind a link, without opening it (for the page a mail scanner may fetch).
    One already opened in a browser other than ``browser`` raises ``other_browser``: its steps
    go on only there, so the page offers no start that would fail."""
    row = _live(conn, tables.invitations.c.digest == secrets.digest(token), now)
    if row["browser_digest"] is not None and (
        browser is None or not secrets.matches(browser, row["browser_digest"])
    ):
        _raise(InvitationProblem.OTHER_BROWSER)
    return from_row(row)


def open_link(tx: Tx, *, token: str, browser: str, client_ip: str | None) -> Invitation:
    """Open the link in ``browser``: the first browser to open it owns the onboarding."""
    i = tables.invitations.c
    row = _live(tx.conn, i.digest == secrets.digest(token), tx.now)
    if row["browser_digest"] is None:
        done = tx.conn.execute(
            update(tables.invitations)
            .where((i.id == row["id"]) & i.browser_digest.is_(None))
            .values(browser_digest=secrets.digest(browser), opened_at=tx.now)
        )
        if done.rowcount != 1:  # another browser opened it at the same moment
            _raise(InvitationProblem.OTHER_BROWSER)
        audit.record(
            tx,
            audit.AuditEvent(
                "invitation.opened",
                tenant_id=row["tenant_id"],
                client_ip=client_ip,
                transaction_id=row["id"],
                details={},
                process_state="onboarding",
            ),
        )
        row["opened_at"] = tx.now
    elif not secrets.matches(browser, row["browser_digest"]):
        _raise(InvitationProblem.OTHER_BROWSER)
    return from_row(row)


def load(conn: Connection, *, invitation_id: str, browser: str | None, now: float) -> Invitation:
    """An opened, live invitation, only for the browser that opened it."""
    if len(invitation_id) > 64 or not invitation_id.isprintable():  # PostgreSQL text holds no NUL
        _raise(InvitationProblem.UNKNOWN)
    row = _live(conn, tables.invitations.c.id == invitation_id, now)
    if row["browser_digest"] is None:
        _raise(InvitationProblem.UNKNOWN)
    if browser is None or not secrets.matches(browser, row["browser_digest"]):
        _raise(InvitationProblem.OTHER_BROWSER)
    return from_row(row)


def _language(value: str, offered: Sequence[str] | None) -> str:
    tag = language_tag(value)
    if offered is None or tag in offered:
        return tag
    # a bare language finds the one offered tag it is a prefix of ("sr" -> "sr-Latn")
    matches = [o for o in offered if o.lower().startswith(f"{tag.lower()}-")]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"language {value!r} is not offered here; the languages are {', '.join(offered)}")


def find(
    conn: Connection, *, invitation_id: str | None = None, token: str | None = None
) -> Invitation | None:
    """The invitation of an id or a link, whatever its state (used, expired, withdrawn), for the
    pages that say why it cannot be used: in its language and its tenant's branding. None when
    neither names one."""
    i = tables.invitations.c
    if invitation_id is not None and len(invitation_id) <= 64 and invitation_id.isprintable():
        where = i.id == invitation_id
    elif token is not None:
        where = i.digest == secrets.digest(token)
    else:
        return None
    row = conn.execute(select(tables.invitations).where(where)).mappings().first()
    return None if row is None else from_row(row)


def load_finished(
    conn: Connection, *, invitation_id: str, browser: str | None, now: float, within: float
) -> Invitation | None:
    """The invitation completed at most ``within`` seconds ago in ``browser``, else None: the
    finish button pressed twice, whose first answer the browser dropped for the second's, or the
    steps' page come back to after finishing."""
    if browser is None or len(invitation_id) > 64 or not invitation_id.isprintable():
        return None
    row = (
        conn.execute(select(tables.invitations).where(tables.invitations.c.id == invitation_id))
        .mappings()
        .first()
    )
    if row is None or row["completed_at"] is None or now - row["completed_at"] > within:
        return None
    if row["browser_digest"] is None or not secrets.matches(browser, row["browser_digest"]):
        return None
    return from_row(row)


def record_progress(tx: Tx, invitation: Invitation, **steps: Any) -> Invitation:
    """Remember completed onboarding steps (and the eID once it exists)."""
    progress = {**invitation.progress, **{k: v for k, v in steps.items() if k != "eid_id"}}
    values: dict[str, Any] = {"progress": progress}
    if "eid_id" in steps:
        values["eid_id"] = steps["eid_id"]
    i = tables.invitations.c
    done = tx.conn.execute(
        update(tables.invitations).where((i.id == invitation.id) & i.completed_at.is_(None)).values(**values)
    )
    if done.rowcount != 1:
        raise AlreadyCompletedError("this invitation was already completed")
    return replace(invitation, progress=progress, eid_id=values.get("eid_id", invitation.eid_id))


def complete(tx: Tx, invitation: Invitation) -> None:
    i = tables.invitations.c
    done = tx.conn.execute(
        update(tables.invitations)
        .where((i.id == invitation.id) & i.completed_at.is_(None))
        .values(completed_at=tx.now)
    )
    if done.rowcount != 1:
        raise AlreadyCompletedError("this invitation was already completed")
    audit.record(
        tx,
        audit.AuditEvent(
            "invitation.completed",
            tenant_id=invitation.tenant_id,
            eid_id=invitation.eid_id,
            transaction_id=invitation.id,
            details={"acr": invitation.acr}
            | ({"existing_eid": invitation.progress["existing_eid"]} if invitation.enrols_existing else {}),
            process_state="completed",
        ),
    )


def revoke(tx: Tx, *, invitation_id: str, tenant_id: str, actor: str | None) -> None:
    i = tables.invitations.c
    done = tx.conn.execute(
        update(tables.invitations)
        .where(
            (i.id == invitation_id)
            & (i.tenant_id == tenant_id)
            & i.completed_at.is_(None)
            & i.revoked_at.is_(None)
        )
        .values(revoked_at=tx.now)
    )
    if done.rowcount != 1:
        raise NotFoundError(f"no open invitation {invitation_id!r} in this tenant")
    audit.record(
        tx,
        audit.AuditEvent(
            "invitation.revoked", tenant_id=tenant_id, transaction_id=invitation_id, details={"actor": actor}
        ),
    )
