"""Signing in to the account page, and the fresh advanced login its changes need.

The account page serves no relying app, so its logins are requests of their own: a row of
``auth_requests`` whose params say ``{"purpose": "account", "next": "/account/…"}``. The ordinary
sign-in pages serve it (email link, password, one-time code: :mod:`idp.web.login_flow`), and when
the level is reached the step that completed it (or ``/authorize/resume``) sends the person to
``next`` instead of back to an app (:func:`resume_target`). A password reset in progress is such a
row too (``purpose`` ``reset``), which the sign-in pages do not serve.

Such a row names a client (the tenant comes from it), so each tenant gets one internal client,
created on first use: inactive, without redirect URIs or grant types, so ``/authorize`` can never
use it; it exists to anchor the tenant and give the sign-in pages a name to show.

Changes to the account need an advanced login whose factors were proven within the last
``FRESH_FOR`` seconds (NIST SP 800-63B §6.1.2.1 asks for re-authentication before an
authenticator is bound or changed); a session without one is stepped up through the same pages.
Only factors the person proved here count: a portal's SSO login token (:mod:`idp.login_tokens`)
vouches for them to the tenant's apps, not for changing their password, phone or passkeys.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from idp import account, audit, eids, secrets, sessions, tenants
from idp.storage import tables
from idp.storage.database import Tx
from idp.web import browser
from idp.web.browser import client_ip, render, state
from levels_of_assurance.ladder import Level, acr_for
from levels_of_assurance.policy import Factor, decide, own

ACCOUNT = "account"
RESET = "reset"
FRESH_FOR = 600.0
REQUEST_TTL = 30 * 60.0
CLIENT_PREFIX = "idp-account-"
CLIENT_NAME = "eID account"
# where an account login may send the person back to: the account's own pages (the confirmation
# that removes a passkey names it) or the agent console (idp.web.agent_routes), nothing else
NEXT = re.compile(r"/account(/[a-z]+)?|/account/passkeys/remove\?credential_id=[A-Za-z0-9_-]{1,1400}|/agent")


def internal_client_id(tenant_id: str) -> str:
    return CLIENT_PREFIX + tenant_id


def shown_client_name(client_id: str, name: str | None) -> str | None:
    """The client name the sign-in pages and the sign-in mail show: none for the internal account
    client, whose stored name is a label for administrators, in English ("Sign in to eID account"
    on a Serbian page); without a name they say plain "Sign in" in the person's language."""
    return None if client_id.startswith(CLIENT_PREFIX) else name


def is_account_change(params: object) -> bool:
    """Whether an auth request is the fresh sign-in a change on the account page asks for (the
    sign-in pages then say why, and lead back to the account)."""
    return (
        isinstance(params, dict)
        and params.get("purpose") == ACCOUNT
        and str(params.get("next") or "/account") != "/account"
    )


def is_internal(params: object) -> bool:
    """Whether an auth request's params are an account login or a reset (not an app's request)."""
    return isinstance(params, dict) and params.get("purpose") in (ACCOUNT, RESET)


def ensure_client(tx: Tx, tenant: tenants.Tenant) -> str:
    """The tenant's internal account client, created (inactive) on first use.

    Two first uses at once (an account login and a password reset, say) both find no client;
    the primary key decides which one creates it, and the other goes on with it: the insert
    skips a conflict instead of failing (PostgreSQL would abort the whole transaction)."""
    cid = internal_client_id(tenant.id)
    c = tables.clients.c
    if tx.conn.execute(select(c.client_id).where(c.client_id == cid)).first() is not None:
        return cid
    insert = postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert
    created = tx.conn.execute(
        insert(tables.clients)
        .values(
            client_id=cid,
            tenant_id=tenant.id,
            name=CLIENT_NAME,
            client_type="public",
            secret_digest=None,
            token_endpoint_auth_method="none",
            redirect_uris=[],
            post_logout_redirect_uris=[],
            grant_types=[],
            scopes=[],
            id_token_signed_response_alg="RS256",
            active=False,
            created_at=tx.now,
            updated_at=tx.now,
        )
        .on_conflict_do_nothing()
    )
    if created.rowcount == 1:
        audit.record(
            tx,
            audit.AuditEvent(
                "client.created", tenant_id=tenant.id, details={"client_id": cid, "type": "internal_account"}
            ),
        )
    return cid


def create_request(
    tx: Tx,
    *,
    tenant: tenants.Tenant,
    purpose: str,
    level: Level,
    browser_value: str,
    next_path: str = "/account",
    eid_id: str | None = None,
    factors: list[Factor] | None = None,
    ttl: float = REQUEST_TTL,
    ip: str | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """A new account login (or reset) request bound to this browser; returns its id."""
    if not NEXT.fullmatch(next_path):
        raise ValueError(f"an account login returns to an account page, not to {next_path!r}")
    client_id = ensure_client(tx, tenant)
    request_id = secrets.new_secret(24)
    acr = acr_for(level)
    tx.conn.execute(
        tables.auth_requests.insert().values(
            id=request_id,
            client_id=client_id,
            params={**(extra or {}), "purpose": purpose, "next": next_path},
            browser_digest=secrets.digest(browser_value),
            created_at=tx.now,
            expires_at=tx.now + ttl,
            acr=acr,
            eid_id=eid_id,
            factors=[f.to_json() for f in factors or []],
        )
    )
    audit.record(
        tx,
        audit.AuditEvent(
            f"{purpose}.login_required" if purpose == ACCOUNT else f"{purpose}.started",
            tenant_id=tenant.id,
            eid_id=eid_id,
            client_ip=ip,
            transaction_id=request_id,
            details={"acr": acr, "next": next_path},
            process_state="awaiting_login",
        ),
    )
    return request_id


def is_fresh_advanced(session: sessions.Session, *, now: float) -> bool:
    """Whether the factors the person proved here reach the advanced level within the last
    ``FRESH_FOR`` s."""
    return decide(own(session.factors), requested=Level.ADVANCED, not_before=now - FRESH_FOR).satisfied


async def start(
    request: Request,
    tenant: tenants.Tenant,
    *,
    level: Level,
    next_path: str,
    session: sessions.Session | None = None,
) -> Response:
    """Send the person through the sign-in pages; they come back to ``next_path``.

    With a session (step-up) the person is known and the factors still fresh count, so only
    what is missing is asked for.
    """
    now = time.time()
    browser_value = browser.browser_id(request) or secrets.new_secret()
    eid_id = session.eid_id if session is not None else None
    carried = [f for f in own(session.factors) if f.at >= now - FRESH_FOR] if session is not None else []
    ip = client_ip(request)

    def unit(tx: Tx) -> str:
        return create_request(
            tx,
            tenant=tenant,
            purpose=ACCOUNT,
            level=level,
            browser_value=browser_value,
            next_path=next_path,
            eid_id=eid_id,
            factors=carried,
            ip=ip,
        )

    request_id = await state(request).db.write(unit)
    response = RedirectResponse(f"/login?{urlencode({'request_id': request_id})}", status_code=303)
    if browser.browser_id(request) is None:
        browser.set_cookie(
            response, browser.BROWSER_COOKIE, browser_value, max_age=browser.BROWSER_COOKIE_MAX_AGE
        )
    return response


def resume_target(params: dict[str, Any]) -> str | None:
    """Where a completed account login continues; None for anything else (reset included)."""
    if params.get("purpose") != ACCOUNT:
        return None
    target = str(params.get("next") or "/account")
    return target if NEXT.fullmatch(target) else "/account"


@dataclass(slots=True, frozen=True)
class SignedIn:
    """The person behind this browser's SSO session, with what their eID has enrolled."""

    session: sessions.Session
    person: eids.EID
    tenant: tenants.Tenant
    enrolled: account.Enrolled


async def signed_in(request: Request) -> SignedIn | None:
    """The session of this browser's ``__Host-idp_session`` cookie, if it is alive and its eID active."""
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        return None
    now = time.time()

    def load(conn: Any) -> SignedIn | None:
        session = sessions.load(conn, cookie, now=now)
        if session is None:
            return None
        person = eids.get(conn, session.eid_id)
        if not person.active:
            return None
        return SignedIn(session, person, tenants.get(conn, session.tenant_id), account.enrolled(conn, person))

    return await state(request).db.read(load)


async def fresh(request: Request, next_path: str) -> SignedIn | Response:
    """The signed-in person if their advanced login is fresh; otherwise the response that gets
    them there: the account page (no session), a step-up, or why a step-up is impossible."""
    who = await signed_in(request)
    if who is None:
        return RedirectResponse("/account", status_code=303)
    if is_fresh_advanced(who.session, now=time.time()):
        return who
    if not who.enrolled.can_reach_advanced:
        return render(
            request,
            "account_change.html",
            status=403,
            step="needs_setup",
            branding=who.tenant.shown_branding(),
        )
    return await start(request, who.tenant, level=Level.ADVANCED, next_path=next_path, session=who.session)


async def fresh_form(
    request: Request, next_path: str | Callable[[Any], str]
) -> tuple[Any, SignedIn] | Response:
    """A POST of an account change: its form if the CSRF token and a fresh advanced login are
    there; otherwise the CSRF refusal, or back to the page (``next_path``, or what it makes of
    the form) that steps up."""
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, who = got
    if not is_fresh_advanced(who.session, now=time.time()):
        return RedirectResponse(next_path(form) if callable(next_path) else next_path, status_code=303)
    return form, who


async def signed_in_form(request: Request) -> tuple[Any, SignedIn] | Response:
    """A POST from the account pages: its form if the CSRF token is there and the person is
    signed in, however long ago; otherwise the CSRF refusal, or to the account page."""
    form = await request.form(max_fields=16, max_part_size=70_000)
    if not browser.csrf_ok(request, form.get("csrf_token")):
        return render(request, "error.html", status=403, title_key="csrf")
    who = await signed_in(request)
    if who is None:
        return RedirectResponse("/account", status_code=303)
    return form, who
