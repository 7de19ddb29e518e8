"""The invitation email, in the invitee's language and the tenant's branding."""

from __future__ import annotations

import math
from typing import Any

from idp import invitations, tenants
from idp.delivery.mail import Mailer, compose
from idp.settings import Settings
from idp.web.i18n import SUBJECT_INVITATION, SUBJECT_INVITATION_EXISTING, Pages


def invitation_link(settings: Settings, token: str) -> str:
    return f"{settings.issuer}/invite?token={token}"


async def send_invitation(
    *,
    settings: Settings,
    pages: Pages,
    mailer: Mailer,
    invitation: invitations.Invitation,
    token: str,
    tenant: tenants.Tenant,
    existing: bool = False,
) -> None:
    """Mail the link to the invitee (raises ``DeliveryError`` when it cannot be handed over).
    ``existing``: the address has an eID already, so the mail asks the person to continue with it
    rather than to create one (the link's page then says what, if anything, is to be set up)."""
    # the stored language may be a tag ("sr-Latn"), a Babel id ("sr_Latn") or a bare range ("sr")
    language = pages.negotiate(cookie=invitation.language, accept_language=invitation.language)
    name = tenant.shown_name
    context: dict[str, Any] = {
        "link": invitation_link(settings, token),
        "given_name": invitation.given_name,
        "tenant_name": name,
        "days": max(1, math.ceil((invitation.expires_at - invitation.created_at) / 86400)),
        "existing": existing,
        "branding": tenant.shown_branding(),
        "languages": list(pages.languages),
        "csrf_token": "",
        "current_path": "",
    }
    message = compose(
        sender=settings.email_from,
        to=invitation.email,
        subject=pages.gettext(
            language, SUBJECT_INVITATION_EXISTING if existing else SUBJECT_INVITATION, name=name
        ),
        text=pages.render("emails/invitation.txt", language=language, **context),
        html=pages.render("emails/invitation.html", language=language, **context),
        headers={"Auto-Submitted": "auto-generated"},
    )
    await mailer.send(message)
