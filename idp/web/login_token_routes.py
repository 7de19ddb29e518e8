"""``/login/token``: a portal's SSO login token, presented by the person's browser, becomes an SSO
session (:mod:`idp.login_tokens`), and the authorization request continues.

``POST /login/token`` (form) or ``GET /login/token?login_token=…`` with either ``request_id`` (a
login already in progress in this browser: the factor is added and :func:`proceed` decides) or
an authorization request's parameters (``client_id``, ``redirect_uri``, …: the session is made,
then ``/authorize`` runs with them). With neither, the person lands on the home page signed in.
There is no CSRF token: the signed, single-use login token is the proof, as in any IdP-initiated
sign-on. Every refusal is an error page saying why, and an audit event; never a 500.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.exceptions import InvalidTag
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from idp import audit, clients, login_tokens, logins, sessions, tenants
from idp.errors import ConflictError
from idp.login_tokens import LoginTokenError, Problem
from idp.web import browser
from idp.web.browser import client_ip, render, state
from idp.web.login_state import current, no_request, proceed
from levels_of_assurance.ladder import acr_for
from levels_of_assurance.policy import Factor, amr_of, level_of

log = logging.getLogger("idp.login")
PATH = "/login/token"


def audiences(issuer: str) -> list[str]:
    return [issuer, issuer + PATH, issuer + "/token"]


async def checked_claims(
    request: Request, token: str
) -> tuple[login_tokens.LoginTokenClaims, clients.Client]:
    """The verified claims and the portal that signed them (single use is checked later)."""
    st = state(request)
    client = await st.clients.get(login_tokens.issuer_of(token))
    key = None
    if client is not None and client.login_token_secret is not None:
        try:
            key = clients.login_token_key(client, st.settings.secret_key)
        except (InvalidTag, ValueError):  # sealed under another instance secret: unusable
            log.error("the HS256 login-token secret of client %s cannot be opened", client.client_id)
    claims = login_tokens.verify(
        token, client=client, hs256_key=key, audiences=audiences(st.settings.issuer), now=time.time()
    )
    assert client is not None
    return claims, client


def _params(pairs: list[tuple[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


async def login_token(request: Request) -> Response:
    st = state(request)
    if request.method == "POST":
        form = await request.form(max_fields=64, max_part_size=16 * 1024)
        params = _params(list(form.multi_items()))
    else:
        params = _params(list(request.query_params.multi_items()))
    token = params.pop("login_token", "")
    request_id = params.pop("request_id", None)
    ip = client_ip(request)
    portal: clients.Client | None = None
    try:
        claims, portal = await checked_claims(request, token)
        login: logins.Login | None = None
        target = "/"
        if request_id is not None:
            login = await current(request, request_id)
            if login is None:
                return no_request(request)
            if login.tenant.id != portal.tenant_id:
                raise LoginTokenError(Problem.OTHER_TENANT, "the sign-in in progress is for another tenant")
        elif params.get("client_id"):
            relying = await st.clients.get(params["client_id"])
            if relying is None or relying.tenant_id != portal.tenant_id:
                raise LoginTokenError(
                    Problem.OTHER_TENANT, "client_id is not an application of the portal's tenant"
                )
            target = "/authorize?" + urlencode(params)
        outcome = await st.db.write(lambda tx: _sign_in(tx, request, claims, portal, login, ip))
    except LoginTokenError as exc:
        await _refused(request, exc, portal, ip)
        return render(
            request,
            "error.html",
            status=400,
            title_key="invalid_request",
            detail=f"login_token {exc.code}: {exc}",
        )
    except ConflictError:
        return no_request(request)
    st.metrics.login(method="login_token", outcome="success")
    if isinstance(outcome, logins.Login):
        return await proceed(request, outcome)
    response = RedirectResponse(target, status_code=303)
    browser.set_cookie(response, sessions.COOKIE_NAME, outcome.cookie_value)
    return response


def _sign_in(
    tx: Any,
    request: Request,
    claims: login_tokens.LoginTokenClaims,
    portal: clients.Client,
    login: logins.Login | None,
    ip: str | None,
) -> logins.Login | sessions.Issued:
    login_tokens.consume(tx, claims)
    tenant = tenants.get(tx.conn, portal.tenant_id)
    if tenant.status != "active":
        raise LoginTokenError(Problem.UNKNOWN_ISSUER, "the portal's tenant is suspended")
    person = login_tokens.person_for(tx, tenant=tenant, claims=claims, client_ip=ip)
    factor = login_tokens.factor_for(portal, now=tx.now)
    audit.record(
        tx,
        audit.AuditEvent(
            "login.factor_proven",
            tenant_id=tenant.id,
            eid_id=person.id,
            username=person.username,
            client_ip=ip,
            transaction_id=login.request_id if login else None,
            details={
                "login_method": "login_token",
                "client_id": portal.client_id,
                "acr": portal.login_token_acr,
            },
            process_state="authenticating",
        ),
    )
    if login is not None:
        return logins.add_factor(tx, login, eid_id=person.id, factor=factor)
    previous = sessions.load(tx.conn, request.cookies.get(sessions.COOKIE_NAME), now=tx.now)
    factors: list[Factor] = [factor]
    if previous is not None and previous.eid_id == person.id and previous.tenant_id == tenant.id:
        factors = [f for f in previous.factors if f.method != factor.method] + [factor]
    level = level_of(factors)
    assert level is not None
    return sessions.authenticate(
        tx,
        previous=previous,
        tenant_id=tenant.id,
        eid_id=person.id,
        username=person.username,
        acr=acr_for(level),
        amr=amr_of(factors),
        ttl=float(state(request).settings.session_ttl),
        client_ip=ip,
        method="login_token",
        factors=factors,
    )


async def _refused(
    request: Request, exc: LoginTokenError, portal: clients.Client | None, ip: str | None
) -> None:
    st = state(request)
    st.metrics.login(method="login_token", outcome=f"failed_{exc.code}")
    event = audit.AuditEvent(
        "login_token.refused",
        success=False,
        tenant_id=portal.tenant_id if portal else None,
        client_ip=ip,
        details={"reason": str(exc.code), "client_id": portal.client_id if portal else None},
    )
    await st.db.write(lambda tx: audit.record(tx, event))


routes = [Route(PATH, login_token, methods=["GET", "POST"])]
