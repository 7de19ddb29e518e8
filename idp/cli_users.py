"""``idp user …`` commands beyond create: invite, password, show, suspend, enable, unlock."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from idp import account, eids, invitations, lockout, tenants
from idp.cli_common import _out, _read, _with_db, _write
from idp.clients import get as get_client
from idp.errors import NotFoundError
from idp.settings import Settings
from idp.storage.database import Database, Tx
from levels_of_assurance.authenticators.password import PasswordHasher, PasswordPolicy, set_hash
from levels_of_assurance.ladder import URN, Level


def _person(tx: Tx, tenant_ref: str, email: str) -> eids.EID:
    tenant = tenants.get(tx.conn, tenant_ref)
    person = eids.find_by_email(tx.conn, tenant_id=tenant.id, email=eids.normalize_email(email))
    if person is None:
        raise NotFoundError(f"no eID for {email!r} in tenant {tenant.slug!r}")
    return person


def cmd_user_invite(args: argparse.Namespace, settings: Settings) -> None:
    from idp.delivery.mail import build_mailer
    from idp.web.i18n import Pages
    from idp.web.invitation_mail import invitation_link, send_invitation

    async def run(db: Database) -> tuple[invitations.Invitation, str, bool]:
        def unit(tx: Tx) -> tuple[invitations.Invitation, str, tenants.Tenant, bool]:
            tenant = tenants.get(tx.conn, args.tenant)
            client = None
            if args.client:
                client = get_client(tx.conn, args.client)
                if client is None:
                    raise NotFoundError(f"no client {args.client!r}")
            inv, token = invitations.create(
                tx,
                tenant_id=tenant.id,
                email=args.email,
                acr=args.level,
                ttl=float(args.valid_days * 86400 if args.valid_days else settings.invitation_ttl),
                given_name=args.given_name,
                family_name=args.family_name,
                phone_number=args.phone,
                country=args.country,
                client=client,
                return_url=args.return_url,
                language=args.language,
                offered=settings.languages,
                created_by="cli",
            )
            existing = eids.find_by_email(tx.conn, tenant_id=tenant.id, email=inv.email) is not None
            return inv, token, tenant, existing

        inv, token, tenant, existing = await db.write(unit)
        sent = False
        if not args.no_mail:
            pages = Pages(languages=settings.languages)
            mailer = build_mailer(settings.email_backend, base_dir=None)
            await send_invitation(
                settings=settings,
                pages=pages,
                mailer=mailer,
                invitation=inv,
                token=token,
                tenant=tenant,
                existing=existing,
            )
            sent = True
        return inv, token, sent

    inv, token, sent = _with_db(settings, run)
    link = invitation_link(settings, token)
    data = {
        "id": inv.id,
        "email": inv.email,
        "acr": inv.acr,
        "expires_at": inv.expires_at,
        "link": link,
        "mailed": sent,
    }
    _out(args, data, f"invitation {inv.id} for {inv.email} ({inv.acr}){' mailed' if sent else ''}\n{link}")


def cmd_user_set_password(args: argparse.Namespace, settings: Settings) -> None:
    secret = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()

    def unit(tx: Tx) -> eids.EID:
        person = _person(tx, args.tenant, args.email)
        context = [
            v
            for v in (
                person.username,
                person.value("email"),
                person.value("given_name"),
                person.value("family_name"),
            )
            if v
        ]
        PasswordPolicy().check(secret, context=context)
        hasher = PasswordHasher(
            memory_cost=settings.password_memory_kib,
            time_cost=settings.password_time_cost,
            parallelism=settings.password_parallelism,
        )
        set_hash(
            tx,
            eid_id=person.id,
            tenant_id=person.tenant_id,
            new_hash=hasher.hash(secret),
            reason="set_by_admin",
        )
        return person

    person = _write(settings, unit)
    _out(args, {"id": person.id, "password": "set"}, f"password set for {person.username}")


def cmd_user_show(args: argparse.Namespace, settings: Settings) -> None:
    """Status, lock and enrolled factors of an eID: whether each is there, never a secret."""

    def load(conn: Any) -> tuple[eids.EID, account.Enrolled]:
        tenant = tenants.get(conn, args.tenant)
        person = eids.find_by_email(conn, tenant_id=tenant.id, email=eids.normalize_email(args.email))
        if person is None:
            raise NotFoundError(f"no eID for {args.email!r} in tenant {tenant.slug!r}")
        return person, account.enrolled(conn, person)

    person, enrolled = _read(settings, load)
    data = {
        "id": person.id,
        "tenant_id": person.tenant_id,
        "username": person.username,
        "status": person.status,
        "locked": enrolled.locked,
        "attributes": {
            name: {"value": a.value, "verified_method": a.verified_method, "verified_at": a.verified_at}
            for name, a in sorted(person.attributes.items())
        },
        "factors": {
            "password": enrolled.password,
            "authenticator_app": enrolled.app,
            "sms_phone": enrolled.phone,
            "recovery_codes_left": enrolled.recovery_codes_left,
            "passkeys": [
                {
                    "name": k.name,
                    "created_at": k.created_at,
                    "last_used_at": k.last_used_at,
                    "synced": k.backup_eligible,
                }
                for k in enrolled.passkeys
            ],
        },
        "can_reach_advanced": enrolled.can_reach_advanced,
    }
    lines = [
        f"eID {person.username} ({person.id})",
        f"  status: {person.status}{' · LOCKED (idp user unlock)' if enrolled.locked else ''}",
        f"  password: {'set' if enrolled.password else 'not set'}",
        f"  authenticator app: {'yes' if enrolled.app else 'no'}",
        f"  SMS to: {enrolled.phone or '-'}",
        f"  recovery codes left: {enrolled.recovery_codes_left}",
        f"  passkeys: {', '.join(k.name for k in enrolled.passkeys) or '-'}",
    ]
    _out(args, data, "\n".join(lines))


def _status(args: argparse.Namespace, settings: Settings, status: eids.EIDStatus, verb: str) -> None:
    def unit(tx: Tx) -> eids.EID:
        person = _person(tx, args.tenant, args.email)
        eids.set_status(tx, eid_id=person.id, status=status, reason=args.reason or verb, actor="cli")
        return person

    person = _write(settings, unit)
    if status == eids.EIDStatus.ACTIVE and person.status != eids.EIDStatus.ACTIVE:
        _notify(settings, person, "enabled")
    _out(args, {"id": person.id, "status": str(status)}, f"eID {person.username} {verb}")


def _notify(settings: Settings, person: eids.EID, notice: str) -> None:
    """Tell the person what an administrator did (a :class:`idp.web.security_notice.Notice`), as
    the admin API does; awaited here: the command ends when the mail was handed over, or its
    failure audited."""
    from idp.delivery.mail import build_mailer
    from idp.web import security_notice
    from idp.web.i18n import Pages

    pages = Pages(languages=settings.languages)
    mailer = build_mailer(settings.email_backend, base_dir=None)
    _with_db(
        settings,
        lambda db: security_notice.deliver(
            db=db,
            pages=pages,
            settings=settings,
            mailer=mailer,
            person=person,
            notice=security_notice.Notice(notice),
        ),
    )


def cmd_user_suspend(args: argparse.Namespace, settings: Settings) -> None:
    _status(args, settings, eids.EIDStatus.SUSPENDED, "suspended")


def cmd_user_enable(args: argparse.Namespace, settings: Settings) -> None:
    _status(args, settings, eids.EIDStatus.ACTIVE, "enabled")


def cmd_user_unlock(args: argparse.Namespace, settings: Settings) -> None:
    def unit(tx: Tx) -> tuple[eids.EID, bool]:
        person = _person(tx, args.tenant, args.email)
        return person, lockout.unlock(tx, eid_id=person.id, tenant_id=person.tenant_id, actor="cli")

    person, lifted = _write(settings, unit)
    if lifted:
        _notify(settings, person, "unlocked")
    _out(
        args,
        {"id": person.id, "unlocked": lifted},
        f"eID {person.username} {'unlocked' if lifted else 'was not locked'}",
    )


def add_commands(user: Any, common: argparse.ArgumentParser) -> None:
    """Register the commands on the ``idp user`` sub-parser."""
    p = user.add_parser("invite", parents=[common], help="invite a person to create an eID")
    p.add_argument("--tenant", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--given-name")
    p.add_argument("--family-name")
    p.add_argument("--phone", help="mobile number, E.164 (+38640123456); required for advanced")
    p.add_argument("--country", help="ISO 3166-1 alpha-2")
    p.add_argument(
        "--level", default=URN[Level.ADVANCED], help="acr value the eID must reach (URN or eIDAS URI)"
    )
    p.add_argument("--client", help="the client the person returns to")
    p.add_argument("--return-url", help="where to send the person afterwards (an origin of the client)")
    p.add_argument("--language", help="language of the mail and pages, e.g. sl")
    p.add_argument("--valid-days", type=int, help="default IDP_INVITATION_TTL")
    p.add_argument("--no-mail", action="store_true", help="print the link instead of mailing it")
    p.set_defaults(func=cmd_user_invite)

    for name, func, help_text in (
        ("set-password", cmd_user_set_password, "set a password, read from stdin"),
        ("show", cmd_user_show, "status, lock and enrolled factors (no secrets)"),
        ("suspend", cmd_user_suspend, "suspend an eID: it cannot sign in"),
        ("enable", cmd_user_enable, "re-enable a suspended or blocked eID"),
        ("unlock", cmd_user_unlock, "lift the lock after too many failed attempts"),
    ):
        p = user.add_parser(name, parents=[common], help=help_text)
        p.add_argument("--tenant", required=True)
        p.add_argument("--email", required=True)
        if name in ("suspend", "enable"):
            p.add_argument("--reason")
        p.set_defaults(func=func)
