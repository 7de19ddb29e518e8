"""The ``idp`` command: serve, migrate and administer. Every command takes ``--json``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from idp import audit, cli_demo, cli_users, clients, eids, tenants
from idp.cli_common import _out, _read, _write, option_of
from idp.errors import IdPError
from idp.settings import Settings, ensure_secret_key, load_settings
from idp.storage.database import Tx
from idp.value_rules import ValueRuleError

T = TypeVar("T")


# -- commands -------------------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from idp.storage import migrate

    migrate.upgrade(settings.database_url)
    rev = migrate.current(settings.database_url)
    _out(args, {"revision": rev}, f"database at revision {rev}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from idp.storage import migrate
    from idp.web.app import create_app
    from idp.web.serving import http_protocol

    migrate.require_current(settings.database_url)
    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings)
    if not args.json:
        print(f"serving {settings.issuer} on http://{host}:{port}", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=args.access_log,
        proxy_headers=settings.trust_proxy_headers,
        server_header=False,
        loop="auto",
        http=http_protocol(),
    )


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    branding = json.loads(args.branding) if args.branding else None
    tenant = _write(
        settings, lambda tx: tenants.create(tx, slug=args.slug, name=args.name, branding=branding)
    )
    _out(args, asdict(tenant), f"tenant {tenant.slug} created: {tenant.id}")


def cmd_tenant_list(args: argparse.Namespace, settings: Settings) -> None:
    items = _read(settings, tenants.list_all)
    _out(
        args,
        [asdict(t) for t in items],
        "\n".join(f"{t.slug}\t{t.id}\t{t.name}" for t in items) or "no tenants",
    )


def cmd_client_create(args: argparse.Namespace, settings: Settings) -> None:
    jwks = json.loads(args.jwks) if args.jwks else None

    def unit(tx: Tx) -> clients.NewClient:
        tenant = tenants.get(tx.conn, args.tenant)
        return clients.create(
            tx,
            tenant_id=tenant.id,
            name=args.name,
            client_type=clients.ClientType(args.type),
            redirect_uris=args.redirect_uri or (),
            post_logout_redirect_uris=args.post_logout_redirect_uri or (),
            grant_types=args.grant or ("authorization_code", "refresh_token"),
            scopes=args.scope or clients.SCOPES,
            auth_method=clients.AuthMethod(args.auth_method) if args.auth_method else None,
            jwks=jwks,
            id_token_alg=args.id_token_alg,
            default_acr=args.default_acr,
            minimum_acr=args.minimum_acr,
            client_id=args.client_id,
            login_token_acr=args.login_token_acr,
            seal_key=settings.secret_key,
        )

    new = _write(settings, unit)
    c = new.client
    data = {**asdict(c), "client_secret": new.client_secret}
    data.pop("secret_digest", None)
    data.pop("login_token_secret", None)
    human = f"client {c.name!r} created\n  client_id:     {c.client_id}"
    if new.client_secret:
        human += f"\n  client_secret: {new.client_secret}   (shown once; only its digest is stored)"
    _out(args, data, human)


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> None:
    attrs = {
        k: v
        for k, v in {
            "email": args.email,
            "given_name": args.given_name,
            "family_name": args.family_name,
            "phone_number": args.phone,
            "country": args.country,
        }.items()
        if v
    }

    def unit(tx: Tx) -> eids.EID:
        tenant = tenants.get(tx.conn, args.tenant)
        return eids.create(tx, tenant_id=tenant.id, attributes=attrs, username=args.username)

    person = _write(settings, unit)
    data = {
        "id": person.id,
        "tenant_id": person.tenant_id,
        "username": person.username,
        "status": person.status,
        "attributes": {k: asdict(v) for k, v in person.attributes.items()},
    }
    _out(args, data, f"eID {person.username} created: {person.id}")


def cmd_scim_token_create(args: argparse.Namespace, settings: Settings) -> None:
    from idp.scim import tokens

    def unit(tx: Tx) -> tokens.NewToken:
        tenant = tenants.get(tx.conn, args.tenant)
        return tokens.create(tx, tenant_id=tenant.id, name=args.name or "SCIM client")

    new = _write(settings, unit)
    data = {**asdict(new.token), "token": new.secret}
    human = (
        f"SCIM token {new.token.id} for tenant {args.tenant}\n"
        f"  base URL: {settings.issuer.rstrip('/')}/scim/v2\n"
        f"  token:    {new.secret}   (shown once; only its digest is stored)"
    )
    _out(args, data, human)


def cmd_scim_token_list(args: argparse.Namespace, settings: Settings) -> None:
    from idp.scim import tokens

    def fn(conn: Any) -> list[tokens.ScimToken]:
        tenant_id = tenants.get(conn, args.tenant).id if args.tenant else None
        return tokens.list_for(conn, tenant_id=tenant_id)

    items = _read(settings, fn)
    _out(
        args,
        [asdict(t) for t in items],
        "\n".join(
            f"{t.id}\t{t.tenant_id}\t{'revoked' if t.revoked_at else 'active'}\t{t.name}" for t in items
        )
        or "no SCIM tokens",
    )


def cmd_scim_token_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from idp.scim import tokens

    token = _write(settings, lambda tx: tokens.revoke(tx, token_id=args.id))
    _out(args, asdict(token), f"SCIM token {token.id} revoked")


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> None:
    from oidc import keys

    keep = float(args.keep_for if args.keep_for is not None else settings.id_token_ttl + 300)
    result = _write(settings, lambda tx: keys.rotate(tx, secret=settings.secret_key, keep_for=keep))
    if settings.redis_url:
        _announce(settings, "keys")
    _out(
        args,
        {**result, "old_keys_published_for_seconds": keep},
        f"new keys {', '.join(result['active'])}; retired {', '.join(result['retired']) or 'none'} "
        f"(still in the JWKS for {int(keep)} s)",
    )


def _announce(settings: Settings, topic: str) -> None:
    from redis.asyncio import Redis

    from idp.web.state import invalidation_channel

    async def run() -> None:
        client = Redis.from_url(settings.redis_url or "")
        try:
            await client.publish(invalidation_channel(settings.database_url), topic)
        finally:
            await client.aclose()

    asyncio.run(run())


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> None:
    report = _read(settings, audit.verify)
    _out(
        args,
        {"ok": True, **asdict(report)},
        f"audit trail intact: {report.events} events, head {report.head_hash}",
    )


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> None:
    events = _read(settings, lambda conn: audit.export_transaction(conn, args.transaction))
    print(json.dumps(events, indent=None if args.json else 2, default=str, ensure_ascii=False))


# -- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idp", description="eID identity provider")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    # accepted after the command too; SUPPRESS, or a subcommand's default would undo `idp --json …`
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", parents=[common], help="serve the IdP (uvicorn)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--log-level", default="info")
    p.add_argument("--access-log", action="store_true")
    p.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )
    sub.add_parser("demo", parents=[common], help="create the demo tenant, client and eID").set_defaults(
        func=cli_demo.cmd_demo
    )

    tenant = sub.add_parser("tenant", parents=[common], help="tenants").add_subparsers(
        dest="action", required=True
    )
    p = tenant.add_parser("create", parents=[common])
    p.add_argument("--slug", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--branding", help='JSON, e.g. {"primary_color": "#0b5fff"}')
    p.set_defaults(func=cmd_tenant_create)
    tenant.add_parser("list", parents=[common]).set_defaults(func=cmd_tenant_list)

    client = sub.add_parser("client", parents=[common], help="relying-party clients").add_subparsers(
        dest="action", required=True
    )
    p = client.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True, help="tenant slug or id")
    p.add_argument("--name", required=True)
    p.add_argument("--type", choices=[t.value for t in clients.ClientType], default="confidential")
    p.add_argument("--client-id")
    p.add_argument("--redirect-uri", action="append")
    p.add_argument("--post-logout-redirect-uri", action="append")
    p.add_argument("--grant", action="append", choices=clients.GRANT_TYPES)
    p.add_argument("--scope", action="append")
    p.add_argument("--auth-method", choices=[m.value for m in clients.AuthMethod])
    p.add_argument("--jwks", help="the client's public JWKS as JSON (for private_key_jwt)")
    p.add_argument("--id-token-alg", choices=["RS256", "ES256"], default="RS256")
    p.add_argument("--default-acr")
    p.add_argument("--minimum-acr")
    p.add_argument(
        "--login-token-acr",
        help="let this portal mint SSO login tokens, trusted for this level (basic or advanced URN)",
    )
    p.set_defaults(func=cmd_client_create)

    user = sub.add_parser("user", parents=[common], help="eIDs").add_subparsers(dest="action", required=True)
    p = user.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--username")
    p.add_argument("--given-name")
    p.add_argument("--family-name")
    p.add_argument("--phone", help="E.164, e.g. +38640123456")
    p.add_argument("--country", help="ISO 3166-1 alpha-2")
    p.set_defaults(func=cmd_user_create)
    cli_users.add_commands(user, common)

    scim = sub.add_parser("scim-token", parents=[common], help="SCIM bearer tokens").add_subparsers(
        dest="action", required=True
    )
    p = scim.add_parser("create", parents=[common])
    p.add_argument("--tenant", required=True, help="tenant slug or id")
    p.add_argument("--name", help="what the token is for, e.g. 'Entra ID'")
    p.set_defaults(func=cmd_scim_token_create)
    p = scim.add_parser("list", parents=[common])
    p.add_argument("--tenant", help="only this tenant's tokens")
    p.set_defaults(func=cmd_scim_token_list)
    p = scim.add_parser("revoke", parents=[common])
    p.add_argument("id", help="the token's id (from create or list)")
    p.set_defaults(func=cmd_scim_token_revoke)

    keys = sub.add_parser("keys", parents=[common], help="signing keys").add_subparsers(
        dest="action", required=True
    )
    p = keys.add_parser("rotate", parents=[common])
    p.add_argument("--keep-for", type=int, help="seconds the old public keys stay in the JWKS")
    p.set_defaults(func=cmd_keys_rotate)

    aud = sub.add_parser("audit", parents=[common], help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    aud.add_parser("verify", parents=[common]).set_defaults(func=cmd_audit_verify)
    p = aud.add_parser("export", parents=[common])
    p.add_argument("--transaction", required=True)
    p.set_defaults(func=cmd_audit_export)

    from videoid.commands import add_commands as add_videoid_commands

    add_videoid_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # the reader went away (``idp … | head``): what the command did stands; say nothing more,
        # and leave nothing for the interpreter to flush into the closed pipe at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command that SIGPIPE ended


def _run(args: argparse.Namespace) -> int:
    try:
        # commands on files alone (idp videoid …) need no settings, database or secret
        settings = ensure_secret_key(load_settings()) if getattr(args, "needs_settings", True) else None
        args.func(args, settings)
    except IdPError as exc:
        return _fail(args, exc.code, str(exc))
    except ValueRuleError as exc:
        option, message = option_of(exc)
        return _fail(args, "invalid_argument", message, option=option)
    except ValueError as exc:
        return _fail(args, "invalid_argument", str(exc))
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        return _fail(
            args,
            "database_error",
            f"the database at IDP_DATABASE_URL is unreachable or not migrated (run 'idp migrate'): {reason}",
        )
    sys.stdout.flush()  # a closed pipe shows here, inside main, not at the interpreter's exit
    return 0


def _fail(args: argparse.Namespace, code: str, message: str, *, option: str | None = None) -> int:
    if getattr(args, "json", False):
        named = {"option": option} if option else {}
        print(json.dumps({"ok": False, "error": code, "message": message, **named}))
    else:
        print(f"idp: {message}", file=sys.stderr)
    return 2 if code != "audit_chain_broken" else 3


if __name__ == "__main__":
    sys.exit(main())
