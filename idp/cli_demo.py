"""``idp demo``: the demo tenant, client, eID and invitation that ``make run`` starts with."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from idp import clients, eids, invitations, tenants
from idp.cli_common import _out, _write
from idp.errors import IdPError
from idp.settings import Settings
from idp.storage import tables
from idp.storage.database import Tx

DEMO_REDIRECT = "http://127.0.0.1:8080/callback"
# RFC 7636 Appendix B's verifier and challenge, so the printed curl works as it is
DEMO_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
DEMO_QUERY = (
    "response_type=code&client_id=demo-app&redirect_uri=" + DEMO_REDIRECT + "&scope=openid%20profile%20email"
    "&state=xyz&nonce=n1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
)


def _write_private(path: Path, text: str) -> None:
    """A file only its owner reads (a secret shown once, a link that signs up)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> None:
    """Create the demo tenant, client and eID once; print how to use them."""

    def unit(tx: Tx) -> dict[str, Any]:
        try:
            tenant = tenants.get(tx.conn, "demo")
        except IdPError:
            tenant = tenants.create(
                tx,
                slug="demo",
                name="Demo signing service",
                branding={"name": "Demo signing service", "primary_color": "#1d4ed8"},
            )
        existing = clients.get(tx.conn, "demo-app")
        secret = None
        if existing is None:
            new = clients.create(
                tx,
                tenant_id=tenant.id,
                name="Demo app",
                client_type=clients.ClientType.CONFIDENTIAL,
                redirect_uris=[DEMO_REDIRECT],
                post_logout_redirect_uris=["http://127.0.0.1:8080/"],
                client_id="demo-app",
            )
            secret = new.client_secret
        if eids.find_by_email(tx.conn, tenant_id=tenant.id, email="signer@example.com") is None:
            eids.create(
                tx,
                tenant_id=tenant.id,
                attributes={
                    "email": "signer@example.com",
                    "given_name": "Ana",
                    "family_name": "Novak",
                    "country": "SI",
                },
            )
        # an open invitation to an advanced eID, so the onboarding can be tried at once; its link
        # is kept in var/ (only its digest is in the database) and reused while it is open
        invitation_link = None
        link_file = settings.var_dir / "demo-invitation-link"
        i = tables.invitations.c
        still_open = tx.conn.execute(
            select(i.id).where(
                (i.tenant_id == tenant.id)
                & (i.email == "invited@example.com")
                & i.completed_at.is_(None)
                & i.revoked_at.is_(None)
                & (i.expires_at > tx.now)
            )
        ).first()
        if still_open is not None and link_file.exists():
            invitation_link = link_file.read_text(encoding="utf-8").strip()
        elif eids.find_by_email(tx.conn, tenant_id=tenant.id, email="invited@example.com") is None:
            client = clients.get(tx.conn, "demo-app")
            _, token = invitations.create(
                tx,
                tenant_id=tenant.id,
                email="invited@example.com",
                acr="urn:eid:loa:advanced",
                ttl=float(settings.invitation_ttl),
                given_name="Maja",
                family_name="Horvat",
                phone_number="+38640000001",
                country="SI",
                client=client,
                return_url=DEMO_REDIRECT,
                created_by="demo",
            )
            invitation_link = f"{settings.issuer}/invite?token={token}"
            _write_private(link_file, invitation_link)
        return {
            "tenant": tenant.slug,
            "client_id": "demo-app",
            "client_secret": secret,
            "redirect_uri": DEMO_REDIRECT,
            "user": "signer@example.com",
            "invitation_link": invitation_link,
        }

    # the secret is shown once and only its digest is stored: its file must be writable before
    # the client is created, or it is lost
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    data = _write(settings, unit)
    if data["client_secret"]:
        _write_private(settings.var_dir / "demo-client-secret", data["client_secret"])
    else:
        path = settings.var_dir / "demo-client-secret"
        data["client_secret"] = (
            path.read_text(encoding="utf-8").strip() if path.exists() else "(see first start)"
        )
    iss = settings.issuer
    mail_dir = (
        settings.email_backend.removeprefix("file:") if settings.email_backend.startswith("file:") else None
    )
    human = f"""
Demo tenant '{data["tenant"]}' with relying-party client:
  client_id      {data["client_id"]}
  client_secret  {data["client_secret"]}
  redirect_uri   {data["redirect_uri"]}
  demo eID       {data["user"]}

Try it:
  1. open {iss}/authorize?{DEMO_QUERY}
  2. enter {data["user"]}; the sign-in link is written to {mail_dir or "your SMTP server"}
  3. open the link, continue; the browser lands on {DEMO_REDIRECT}?code=...
  4. curl -u demo-app:{data["client_secret"]} -d grant_type=authorization_code -d code=CODE \\
          -d redirect_uri={DEMO_REDIRECT} -d code_verifier={DEMO_VERIFIER} {iss}/token
Discovery: {iss}/.well-known/openid-configuration
"""
    if data["invitation_link"]:
        sms_dir = (
            settings.sms_backend.removeprefix("file:")
            if settings.sms_backend.startswith("file:")
            else "Twilio"
        )
        human += f"""
An eID at the advanced level, from the demo invitation:
  open {data["invitation_link"]}
  the SMS codes are written to {sms_dir}; then sign in with acr_values=urn:eid:loa:advanced
"""
    _out(args, data, human)
