"""What this server supports, as RFC 7643 §7 schemas, §6 resource types and §5 configuration.

The published schemas are scim2-models' own, trimmed to the truth: ``password`` is not part of
User (eIDs sign in by email link, passkeys and the like; a password sent by a client is not
stored), a manager is referenced by ``value`` alone as Entra ID sends it, group members are
Users (no nested groups) and their ``display`` is not kept. :data:`USER_ATTRIBUTES` and
:data:`GROUP_ATTRIBUTES` are the same catalogue keyed by lowercased name, for filters and PATCH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    Required,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_MODEL = User[EnterpriseUser]
MAX_RESULTS = 200
MAX_BULK_OPERATIONS = 100
MAX_PAYLOAD = 1_048_576


@dataclass(slots=True, frozen=True)
class AttrInfo:
    """One attribute of the catalogue (RFC 7643 §7 characteristics that matter here)."""

    name: str  # as the schema spells it
    type: str
    multi_valued: bool
    case_exact: bool
    mutability: str
    subs: dict[str, AttrInfo] = field(default_factory=dict)
    # text that may span lines; every other string is one line (idp.value_rules.one_line)
    multi_line: bool = False


def _user_schema() -> Schema:
    schema = User.to_schema()
    schema.attributes = [a for a in schema.attributes or [] if a.name != "password"]
    return schema


def _enterprise_schema() -> Schema:
    schema = EnterpriseUser.to_schema()
    for attr in schema.attributes or []:
        if attr.name == "manager":
            attr.sub_attributes = [s for s in attr.sub_attributes or [] if s.name != "displayName"]
            for sub in attr.sub_attributes:
                sub.required = (
                    Required.false
                )  # RFC 7643 §8.7.1: neither is required; Entra ID sends value only
    return schema


def _group_schema() -> Schema:
    schema = Group.to_schema()
    for attr in schema.attributes or []:
        if attr.name == "members":
            attr.sub_attributes = [s for s in attr.sub_attributes or [] if s.name != "display"]
            for sub in attr.sub_attributes:
                if sub.name == "$ref":
                    sub.reference_types = ["User"]
                if sub.name == "type":
                    sub.canonical_values = ["User"]
    return schema


SCHEMAS: dict[str, Schema] = {
    CORE_USER: _user_schema(),
    ENTERPRISE: _enterprise_schema(),
    CORE_GROUP: _group_schema(),
}


# RFC 7643 §4.1.2: an address's ``formatted`` value "MAY contain newlines"
MULTI_LINE = frozenset({("addresses", "formatted")})


def _catalogue(schema: Schema, prefix: str = "") -> dict[str, AttrInfo]:
    out: dict[str, AttrInfo] = {}
    for attr in schema.attributes or []:
        assert attr.name is not None
        subs = {
            str(s.name).lower(): AttrInfo(
                str(s.name),
                str(s.type.value if s.type else "string"),
                bool(s.multi_valued),
                bool(s.case_exact and s.case_exact.value),
                str(s.mutability.value if s.mutability else "readWrite"),
                multi_line=(attr.name, s.name) in MULTI_LINE,
            )
            for s in attr.sub_attributes or []
        }
        out[prefix + attr.name.lower()] = AttrInfo(
            attr.name,
            str(attr.type.value if attr.type else "string"),
            bool(attr.multi_valued),
            bool(attr.case_exact and attr.case_exact.value),
            str(attr.mutability.value if attr.mutability else "readWrite"),
            subs,
        )
    return out


_META = AttrInfo(
    "meta",
    "complex",
    False,
    False,
    "readOnly",
    {
        "created": AttrInfo("created", "dateTime", False, False, "readOnly"),
        "lastmodified": AttrInfo("lastModified", "dateTime", False, False, "readOnly"),
        "resourcetype": AttrInfo("resourceType", "string", False, True, "readOnly"),
        "version": AttrInfo("version", "string", False, True, "readOnly"),
        "location": AttrInfo("location", "reference", False, True, "readOnly"),
    },
)
_COMMON = {
    "id": AttrInfo("id", "string", False, True, "readOnly"),
    "externalid": AttrInfo("externalId", "string", False, True, "readWrite"),
    "meta": _META,
}

USER_ATTRIBUTES: dict[str, AttrInfo] = {
    **_COMMON,
    **_catalogue(SCHEMAS[CORE_USER]),
    **_catalogue(SCHEMAS[ENTERPRISE], ENTERPRISE.lower() + ":"),
}
GROUP_ATTRIBUTES: dict[str, AttrInfo] = {**_COMMON, **_catalogue(SCHEMAS[CORE_GROUP])}


def attr_key(uri: str | None, name: str, *, resource: str) -> str:
    """The catalogue key of ``[uri:]name``: core attributes bare, extension ones URN-prefixed."""
    core = CORE_USER if resource == "User" else CORE_GROUP
    if uri is None or uri.lower() == core.lower():
        return name.lower()
    return f"{uri.lower()}:{name.lower()}"


def _with_meta(obj: Any, base_url: str, kind: str, ident: str) -> Any:
    obj.meta = Meta(resource_type=kind, location=f"{base_url}/{kind}s/{ident}")
    return obj


def schemas_payload(base_url: str) -> list[dict[str, Any]]:
    out = []
    for urn, schema in SCHEMAS.items():
        copy = schema.model_copy(deep=True)
        copy.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{urn}")
        out.append(copy.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return out


def resource_types_payload(base_url: str) -> list[dict[str, Any]]:
    user = ResourceType.model_validate(
        {
            "id": "User",
            "name": "User",
            "description": "An eID of the tenant",
            "endpoint": "/Users",
            "schema": CORE_USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
        }
    )
    group = ResourceType.model_validate(
        {
            "id": "Group",
            "name": "Group",
            "description": "A group of the tenant's eIDs, released to relying apps as a role",
            "endpoint": "/Groups",
            "schema": CORE_GROUP,
        }
    )
    return [
        _with_meta(rt, base_url, "ResourceType", str(rt.id)).model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE
        )
        for rt in (user, group)
    ]


def service_provider_config(base_url: str) -> dict[str, Any]:
    """RFC 7643 §5: exactly what :mod:`idp.web.scim_routes` implements."""
    spc = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=True, max_operations=MAX_BULK_OPERATIONS, max_payload_size=MAX_PAYLOAD),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="A per-tenant bearer token from `idp scim-token create` (RFC 6750)",
                primary=True,
            )
        ],
    )
    spc.meta = Meta(resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig")
    return spc.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
