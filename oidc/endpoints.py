"""The token, revocation, introspection and userinfo endpoints: preload, run authlib, write.

Each request: (1) load what the grant may ask for, in one read; (2) run authlib synchronously on
the event loop (or in a worker thread when it will sign an RSA ID token); (3) write what the
hooks collected in one unit of work, whose conditional updates decide races.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, OAuth2Error
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection

from idp import audit, eids, groups, login_tokens, secrets, tenants
from idp.clients import TOKEN_EXCHANGE, ClientRegistry, login_token_key
from idp.errors import NotFoundError
from idp.storage.database import Database, Tx
from levels_of_assurance.ladder import acr_for
from levels_of_assurance.policy import level_of
from oidc import store
from oidc.claims import claims_for, wants_groups
from oidc.context import GrantContext, current
from oidc.models import CodeRecord, OAuthClient, Subject, TokenRecord
from oidc.server import OAuthResponse, Provider, assertion_jti, client_id_of


@dataclass(slots=True, frozen=True)
class _Loaded:
    code: CodeRecord | None
    token: TokenRecord | None
    eid: eids.EID | None
    assertion_seen: bool
    groups: tuple[str, ...] = ()


def _assertion_reused() -> OAuthResponse:
    # a request racing this one authenticated with the same assertion first (RFC 7523 §3 item 7)
    return _error(InvalidClientError(description="the client assertion (jti) was used before"))


def _error(error: OAuth2Error) -> OAuthResponse:
    status, body, headers = error()
    return OAuthResponse(status, dict(body), list(headers))


class Endpoints:
    """Async entry points used by the web layer; see the module docstring."""

    def __init__(self, *, provider: Provider, db: Database, clients: ClientRegistry) -> None:
        self.provider = provider
        self.server = provider.server
        self.db = db
        self.clients = clients

    async def _context(self, req: OAuth2Request, *, code: str | None, token: str | None) -> GrantContext:
        ctx = GrantContext()
        cid = client_id_of(req)
        if cid:
            client = await self.clients.get(cid)
            if client is not None:
                ctx.client = OAuthClient(client)
                ctx.tenant_id = client.tenant_id
        jti = assertion_jti(req)
        if code is None and token is None and jti is None:
            return ctx
        client_id = cid

        def load(conn: Connection) -> _Loaded:
            c, person = store.load_code_and_eid(conn, secrets.digest(code)) if code else (None, None)
            t = None
            names: tuple[str, ...] = ()
            if c is not None:  # the ID token releases claims: the whole eID, and its groups if asked
                if person is not None and wants_groups(c.scope):
                    names = tuple(groups.names_of(conn, person.id))
            elif token:  # refresh, revocation, introspection: the eID's status and name suffice
                t, person = store.load_token_and_eid(conn, secrets.token_key(token))
            seen = bool(jti and client_id and store.assertion_seen(conn, client_id, jti))
            return _Loaded(c, t, person, seen, names)

        loaded = await self.db.read(load)
        ctx.code, ctx.token, ctx.assertion_seen = loaded.code, loaded.token, loaded.assertion_seen
        if loaded.eid is not None:
            sid = (loaded.code.sid if loaded.code else None) or (loaded.token.sid if loaded.token else None)
            ctx.subject = Subject(loaded.eid, sid, loaded.groups)
        return ctx

    # -- token endpoint (RFC 6749 §3.2) --------------------------------------------------------

    async def token(self, req: OAuth2Request, *, client_ip: str | None) -> OAuthResponse:
        form = req.form
        grant_type = form.get("grant_type")
        code = form.get("code") if grant_type == "authorization_code" else None
        refresh = form.get("refresh_token") if grant_type == "refresh_token" else None
        ctx = await self._context(req, code=code, token=refresh)

        replay = await self._replayed_credential(ctx, grant_type, client_ip)
        if replay is not None:
            return replay
        if grant_type == TOKEN_EXCHANGE:
            await self._prepare_exchange(
                ctx, form.get("subject_token"), form.get("subject_token_type"), client_ip
            )

        reset = current.set(ctx)
        try:
            signs_rsa = (
                grant_type == "authorization_code"
                and ctx.client is not None
                and ctx.client.id_token_signed_response_alg == "RS256"
            )
            if signs_rsa:
                response: OAuthResponse = await asyncio.to_thread(self.server.create_token_response, req)
            else:
                response = self.server.create_token_response(req)
        finally:
            current.reset(reset)

        if response.status != 200:
            await self._audit_failure("token.failed", ctx, response, client_ip, grant_type=grant_type)
            return response
        return await self._persist(ctx, grant_type, response, client_ip)

    async def _prepare_exchange(
        self, ctx: GrantContext, token: str | None, token_type: str | None, client_ip: str | None
    ) -> None:
        """RFC 8693: verify the subject token (a login token of this client), consume its jti and
        find its person, before authlib runs; the grant reports ``ctx.exchange_error``."""
        client = ctx.client
        if client is None or not token or token_type != login_tokens.SUBJECT_TOKEN_TYPE:
            return  # the grant answers invalid_client / invalid_request
        record = client.record
        settings = self.provider.settings
        try:
            key = None
            if record.login_token_secret is not None:
                try:
                    key = login_token_key(record, settings.secret_key)
                except (InvalidTag, ValueError):
                    key = None
            claims = login_tokens.verify(
                token,
                client=record,
                hs256_key=key,
                audiences=[settings.issuer, f"{settings.issuer}/token", f"{settings.issuer}/login/token"],
                now=time.time(),
            )

            def unit(tx: Tx) -> eids.EID:
                login_tokens.consume(tx, claims)
                tenant = tenants.get(tx.conn, record.tenant_id)
                if tenant.status != "active":
                    raise login_tokens.LoginTokenError(
                        login_tokens.Problem.UNKNOWN_ISSUER, "the client's tenant is suspended"
                    )
                return login_tokens.person_for(tx, tenant=tenant, claims=claims, client_ip=client_ip)

            person = await self.db.write(unit)
        except login_tokens.LoginTokenError as exc:
            ctx.exchange_error = f"subject_token: {exc}"
            return
        factor = login_tokens.factor_for(record, now=time.time())
        level = level_of([factor])
        assert level is not None
        ctx.subject = Subject(person, None)
        ctx.exchanged = {
            "client_id": record.client_id,
            "acr": acr_for(level),
            "amr": list(factor.amr),
            "auth_time": factor.at,
        }

    async def _replayed_credential(
        self, ctx: GrantContext, grant_type: str | None, client_ip: str | None
    ) -> OAuthResponse | None:
        """A used code or a rotated refresh token came back: revoke its grant, refuse the request."""
        client = ctx.client
        if client is None:
            return None
        if grant_type == "authorization_code" and ctx.code and ctx.code.client_id == client.client_id:
            if ctx.code.used_at is None:
                return None
            grant_id = ctx.code.grant_id
            event = "code"
        elif grant_type == "refresh_token" and ctx.token and ctx.token.client_id == client.client_id:
            if ctx.token.kind != "refresh" or ctx.token.rotated_at is None:
                return None
            grant_id = ctx.token.grant_id
            event = "refresh"
        else:
            return None
        base = audit.AuditEvent(
            "token.issued",
            tenant_id=ctx.tenant_id,
            eid_id=ctx.subject.eid.id if ctx.subject else None,
            details={"client_id": client.client_id},
            client_ip=client_ip,
        )
        if event == "code":
            await self.db.write(
                lambda tx: store.redeem_code(
                    tx,
                    code_digest=ctx.code.digest if ctx.code else "",
                    grant_id=grant_id,
                    rows=(),
                    event=base,
                    assertion=None,
                )
            )
            return _error(InvalidGrantError(description="the authorization code was already used"))
        await self.db.write(lambda tx: store.refresh_reused(tx, grant_id=grant_id, event=base))
        return _error(
            InvalidGrantError(description="the refresh token was already used; its grant is revoked")
        )

    async def _persist(
        self, ctx: GrantContext, grant_type: str | None, response: OAuthResponse, client_ip: str | None
    ) -> OAuthResponse:
        client = ctx.client
        assert client is not None and ctx.grant_id is not None
        subject = ctx.subject
        event = audit.AuditEvent(
            "token.issued",
            tenant_id=client.record.tenant_id,
            eid_id=subject.eid.id if subject else None,
            username=subject.eid.username if subject else None,
            client_ip=client_ip,
            details={
                "client_id": client.client_id,
                "grant_type": grant_type,
                "grant_id": ctx.grant_id,
                "acr": origin.acr
                if (origin := ctx.code or ctx.token) is not None
                else (ctx.exchanged or {}).get("acr"),
            },
        )
        rows, assertion, grant_id = list(ctx.issued), ctx.assertion_jti, ctx.grant_id
        if grant_type == "authorization_code" and ctx.code is not None:
            digest = ctx.code.digest
            outcome = await self.db.write(
                lambda tx: store.redeem_code(
                    tx, code_digest=digest, grant_id=grant_id, rows=rows, event=event, assertion=assertion
                )
            )
        elif grant_type == "refresh_token" and ctx.token is not None:
            old = ctx.token.digest
            outcome = await self.db.write(
                lambda tx: store.rotate_refresh(
                    tx, old_digest=old, grant_id=grant_id, rows=rows, event=event, assertion=assertion
                )
            )
        else:
            outcome = await self.db.write(
                lambda tx: store.issue(tx, rows=rows, event=event, assertion=assertion)
            )
        if outcome is store.Outcome.ASSERTION_REUSED:
            return _assertion_reused()
        if outcome is store.Outcome.REPLAYED:
            what = "authorization code" if grant_type == "authorization_code" else "refresh token"
            return _error(InvalidGrantError(description=f"the {what} was already used; its grant is revoked"))
        return response

    async def _audit_failure(
        self,
        event_type: str,
        ctx: GrantContext,
        response: OAuthResponse,
        client_ip: str | None,
        **details: Any,
    ) -> None:
        body = response.json
        event = audit.AuditEvent(
            event_type,
            success=False,
            tenant_id=ctx.tenant_id,
            client_ip=client_ip,
            details={
                "client_id": ctx.client.client_id if ctx.client else None,
                "error": body.get("error"),
                **details,
            },
        )
        await self.db.write(lambda tx: audit.record(tx, event))

    # -- revocation (RFC 7009) and introspection (RFC 7662) ------------------------------------

    async def revoke(self, req: OAuth2Request, *, client_ip: str | None) -> OAuthResponse:
        ctx = await self._context(req, code=None, token=req.form.get("token") or None)
        reset = current.set(ctx)
        try:
            response: OAuthResponse = self.server.create_endpoint_response("revocation", req)
        finally:
            current.reset(reset)
        token, client = ctx.revoked, ctx.client
        if response.status == 200 and token is not None and client is not None:
            event = audit.AuditEvent(
                "token.revoked",
                tenant_id=client.record.tenant_id,
                eid_id=token.eid_id,
                client_ip=client_ip,
                details={"client_id": client.client_id, "kind": token.kind, "grant_id": token.grant_id},
            )
            whole, assertion = token.kind == "refresh", ctx.assertion_jti
            outcome = await self.db.write(
                lambda tx: store.revoke(tx, token=token, whole_grant=whole, event=event, assertion=assertion)
            )
            if outcome is store.Outcome.ASSERTION_REUSED:
                return _assertion_reused()
        elif response.status == 200 and ctx.assertion_jti is not None:
            if not await self._record_assertion(ctx):
                return _assertion_reused()
        return response

    async def introspect(self, req: OAuth2Request) -> OAuthResponse:
        ctx = await self._context(req, code=None, token=req.form.get("token") or None)
        if ctx.token is not None and ctx.token.eid_id and (ctx.subject is None or not ctx.subject.eid.active):
            ctx.token = None  # a person's token is only as active as the person's eID (as at userinfo)
        reset = current.set(ctx)
        try:
            response: OAuthResponse = self.server.create_endpoint_response("introspection", req)
        finally:
            current.reset(reset)
        if ctx.assertion_jti is not None and response.status == 200 and not await self._record_assertion(ctx):
            return _assertion_reused()
        return response

    async def _record_assertion(self, ctx: GrantContext) -> bool:
        """Remember the jti of the assertion that authenticated this request; False if it was used."""
        assertion = ctx.assertion_jti
        outcome = await self.db.write(
            lambda tx: store.issue(
                tx,
                rows=(),
                assertion=assertion,
                event=audit.AuditEvent(
                    "client.assertion_used",
                    tenant_id=ctx.tenant_id,
                    details={"client_id": assertion[0] if assertion else None},
                ),
            )
        )
        return outcome is store.Outcome.OK

    # -- userinfo (OIDC Core §5.3) -------------------------------------------------------------

    async def userinfo(self, access_token: str | None) -> OAuthResponse:
        def bearer_error(error: str, description: str, status: int = 401) -> OAuthResponse:
            challenge = f'Bearer error="{error}", error_description="{description}"'
            return OAuthResponse(
                status, {"error": error, "error_description": description}, [("WWW-Authenticate", challenge)]
            )

        if not access_token:
            return OAuthResponse(
                401,
                {"error": "invalid_token", "error_description": "no access token"},
                [("WWW-Authenticate", 'Bearer realm="userinfo"')],
            )

        def load(conn: Connection) -> tuple[TokenRecord | None, eids.EID | None, list[str]]:
            record = store.load_token(conn, secrets.token_key(access_token))
            person = None
            if record is not None and record.eid_id:
                try:
                    person = eids.get(conn, record.eid_id)
                except NotFoundError:
                    person = None
            names = (
                groups.names_of(conn, person.id) if person and record and wants_groups(record.scope) else []
            )
            return record, person, names

        record, person, group_names = await self.db.read(load)
        if record is None or record.kind != "access" or record.is_revoked() or record.is_expired():
            return bearer_error("invalid_token", "the access token is unknown, expired or revoked")
        if person is None:
            return bearer_error("invalid_token", "this access token was not issued for a person")
        if not person.active:
            return bearer_error("invalid_token", "the eID is not active")
        if "openid" not in record.scope.split():
            return bearer_error("insufficient_scope", "the access token lacks the openid scope", 403)
        claims = claims_for(person, record.scope, groups=group_names)
        return OAuthResponse(200, claims, [("Cache-Control", "no-store")])
