"""Claims released per scope (OIDC Core §5.4) with their verification state (§5.1)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.util import scope_to_list

from idp.eids import EID

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "birthdate", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}


def claims_for(eid: EID, scope: str) -> dict[str, Any]:
    """Standard claims of ``eid`` that ``scope`` releases; ``sub`` always."""
    scopes = set(scope_to_list(scope) or ())
    out: dict[str, Any] = {"sub": eid.id}
    if "profile" in scopes:
        given, family = eid.value("given_name"), eid.value("family_name")
        if given:
            out["given_name"] = given
        if family:
            out["family_name"] = family
        if given or family:
            out["name"] = " ".join(x for x in (given, family) if x)
        if eid.value("birthdate"):
            out["birthdate"] = eid.value("birthdate")
        out["preferred_username"] = eid.username
        out["updated_at"] = int(eid.updated_at)
    if "email" in scopes and (email := eid.attributes.get("email")):
        out["email"] = email.value
        out["email_verified"] = email.verified_at is not None
    if "phone" in scopes and (phone := eid.attributes.get("phone_number")):
        out["phone_number"] = phone.value
        out["phone_number_verified"] = phone.verified_at is not None
    if "address" in scopes and eid.value("country"):
        out["address"] = {"country": eid.value("country")}
    return out
