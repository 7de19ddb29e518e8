"""Claims released per scope (OIDC Core §5.4) with their verification state (§5.1); the
``verified_claims`` scope adds OpenID Connect for Identity Assurance's ``verified_claims``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.oauth2.rfc6749.util import scope_to_list

from idp.eids import EID
from oidc import verified_claims

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "birthdate", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
    "groups": ("groups",),  # the displayNames of the eID's groups (roles), provisioned by SCIM
}


def wants_groups(scope: str) -> bool:
    return "groups" in (scope_to_list(scope) or ())


def claims_for(eid: EID, scope: str, *, groups: Sequence[str] = ()) -> dict[str, Any]:
    """Standard claims of ``eid`` that ``scope`` releases; ``sub`` always.

    ``groups`` are the displayNames of the eID's groups, released by the ``groups`` scope.
    """
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
    if "groups" in scopes:
        out["groups"] = list(groups)
    if verified_claims.SCOPE in scopes and (verified := verified_claims.verified_claims(eid)) is not None:
        out["verified_claims"] = verified
    return out
