"""Resources of the administration API as Pydantic models: they validate request bodies and are
the source of the OpenAPI document's schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from idp import value_rules
from idp.clients import GRANT_TYPES

# the rules every entry point shares (idp.value_rules): here they refuse before the domain is asked
OneLine = AfterValidator(value_rules.one_line)
# every string that reaches a column has the column's limit, so no engine refuses it
Name = Annotated[str, Field(min_length=1, max_length=200), OneLine]
Url = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(value_rules.url_text)]
Scope = Annotated[str, Field(pattern=r"^[!#-\[\]-~]{1,64}$")]  # RFC 6749 §3.3 scope-token
Id = Annotated[str, Field(min_length=1, max_length=64)]
Acr = Literal[
    "urn:eid:loa:basic",
    "urn:eid:loa:advanced",
    "urn:eid:loa:qualified",
    "http://eidas.europa.eu/LoA/low",
    "http://eidas.europa.eu/LoA/substantial",
    "http://eidas.europa.eu/LoA/high",
]
LoginTokenAcr = Literal[
    "urn:eid:loa:basic",
    "urn:eid:loa:advanced",
    "http://eidas.europa.eu/LoA/low",
    "http://eidas.europa.eu/LoA/substantial",
]
GrantType = Literal[GRANT_TYPES]  # type: ignore[valid-type]
UnknownUsers = Literal["refuse", "create"]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(Output):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


# -- tenants --------------------------------------------------------------------------------------


class Branding(Input):
    name: Name | None = None
    logo_url: (
        Annotated[str, Field(max_length=2000, pattern=r"^(https://|/)"), AfterValidator(value_rules.logo_url)]
        | None
    ) = None
    primary_color: Annotated[str, Field(pattern=r"^#([0-9a-fA-F]{3}){1,2}$")] | None = None
    # a paragraph the invitation mails carry, and the name the SMS sign with (one SMS is short)
    invitation_text: Annotated[str, Field(min_length=1, max_length=600)] | None = None
    sms_name: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 .&'-]+$")] | None = None


class BrandingOut(Output):
    name: str | None = None
    logo_url: str | None = None
    primary_color: str | None = None
    invitation_text: str | None = None
    sms_name: str | None = None


class TenantCreate(Input):
    slug: Annotated[str, Field(pattern=f"^{value_rules.SLUG.pattern}$"), AfterValidator(value_rules.slug)]
    name: Name
    branding: Branding | None = None
    login_token_unknown_users: UnknownUsers = "refuse"


class TenantUpdate(Input):
    name: Name | None = None
    branding: Branding | None = None
    status: Literal["active", "suspended"] | None = None
    login_token_unknown_users: UnknownUsers | None = None


class Tenant(Output):
    id: str
    slug: str
    name: str
    status: str
    branding: BrandingOut
    login_token_unknown_users: str


class TenantList(Output):
    items: list[Tenant]


# -- clients --------------------------------------------------------------------------------------


class Jwks(BaseModel):
    """A JWK Set (RFC 7517 §5) of public keys."""

    model_config = ConfigDict(extra="allow")
    keys: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=20)]


class ClientCreate(Input):
    name: Name
    client_type: Literal["confidential", "public"] = "confidential"
    redirect_uris: Annotated[list[Url], Field(max_length=20)] = []
    post_logout_redirect_uris: Annotated[list[Url], Field(max_length=20)] = []
    grant_types: Annotated[list[GrantType], Field(max_length=4)] = ["authorization_code", "refresh_token"]
    scopes: Annotated[list[Scope], Field(max_length=32)] | None = None
    token_endpoint_auth_method: (
        Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] | None
    ) = None
    jwks: Jwks | None = None
    id_token_signed_response_alg: Literal["RS256", "ES256"] = "RS256"
    default_acr: Acr | None = None
    minimum_acr: Acr | None = None
    login_token_acr: LoginTokenAcr | None = None


class ClientUpdate(Input):
    name: Name | None = None
    redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    post_logout_redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    grant_types: Annotated[list[GrantType], Field(max_length=4)] | None = None
    scopes: Annotated[list[Scope], Field(max_length=32)] | None = None
    jwks: Jwks | None = None
    default_acr: Acr | None = None
    minimum_acr: Acr | None = None
    active: StrictBool | None = None  # "no" or 0 is not false: the caller meant something else
    login_token_acr: LoginTokenAcr | None = None


class Client(Output):
    client_id: str
    tenant_id: str
    name: str
    client_type: str
    token_endpoint_auth_method: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    jwks: dict[str, Any] | None
    id_token_signed_response_alg: str
    default_acr: str | None
    minimum_acr: str | None
    active: bool
    login_token_acr: str | None


class ClientCreated(Client):
    client_secret: str | None = Field(description="shown once; only its digest is stored")


class ClientList(Output):
    items: list[Client]


# -- users (eIDs) ---------------------------------------------------------------------------------

AttrValue = Annotated[str, Field(min_length=1, max_length=500), OneLine]
Username = Annotated[str, Field(min_length=1, max_length=320), OneLine]


class Attributes(Input):
    """Attribute values (OIDC Core §5.1 names); in an update, null removes one."""

    given_name: AttrValue | None = None
    family_name: AttrValue | None = None
    email: Annotated[str, Field(min_length=3, max_length=254)] | None = None
    phone_number: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")] | None = None
    birthdate: Annotated[str, AfterValidator(value_rules.birthdate)] | None = None
    national_id: AttrValue | None = None


class UserCreate(Input):
    username: Username | None = None
    attributes: Attributes


class UserUpdate(Input):
    username: Username | None = None
    attributes: Attributes | None = None


class StatusChange(Input):
    reason: Annotated[str, Field(min_length=1, max_length=200), OneLine] | None = None


class Verification(Output):
    method: str
    at: float | None
    evidence_ref: str | None = None


class User(Output):
    id: str
    username: str
    status: str
    attributes: dict[str, str]
    verified: dict[str, Verification]
    created_at: float
    updated_at: float


class UserList(Output):
    items: list[User]
    total: int
    offset: int
    limit: int


# -- groups ---------------------------------------------------------------------------------------

GroupName = Annotated[str, Field(min_length=1, max_length=256), OneLine]
ExternalId = Annotated[str, Field(min_length=1, max_length=320), OneLine]


class GroupCreate(Input):
    display_name: GroupName
    external_id: ExternalId | None = None
    members: Annotated[list[Id], Field(max_length=1000)] = []


class GroupUpdate(Input):
    display_name: GroupName | None = None
    external_id: ExternalId | None = None
    members: Annotated[list[Id], Field(max_length=1000)] | None = None


class Group(Output):
    id: str
    display_name: str
    external_id: str | None
    members: list[str]
    created_at: float
    updated_at: float


class GroupList(Output):
    items: list[Group]


# -- invitations ----------------------------------------------------------------------------------


class InvitationCreate(Input):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    acr: Acr = "urn:eid:loa:advanced"
    given_name: Name | None = None
    family_name: Name | None = None
    phone_number: Annotated[str, Field(min_length=2, max_length=32)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    client_id: Id | None = None
    return_url: Url | None = None
    # a BCP 47 tag (sl, sr-Latn; sr_Latn is taken too), one of the service's languages
    language: (
        Annotated[str, Field(max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,4}){0,2}$")] | None
    ) = None
    # strict: true is not one day, nor 0 or "no" false
    valid_days: Annotated[StrictInt, Field(ge=1, le=90)] | None = None
    send_mail: StrictBool = True


class Invitation(Output):
    id: str
    email: str
    status: Literal["pending", "opened", "completed", "revoked", "expired"]
    acr: str
    given_name: str | None
    family_name: str | None
    phone_number: str | None
    country: str | None
    client_id: str | None
    return_url: str | None
    language: str | None
    eid_id: str | None
    created_at: float
    expires_at: float


class InvitationCreated(Invitation):
    mailed: bool
    link: str | None = Field(description="the invitation link, only when send_mail was false")


class InvitationList(Output):
    items: list[Invitation]
    total: int
    offset: int
    limit: int


# -- SCIM tokens ----------------------------------------------------------------------------------


class ScimTokenCreate(Input):
    name: Name


class ScimToken(Output):
    id: str
    name: str
    created_at: float
    revoked_at: float | None


class ScimTokenCreated(ScimToken):
    token: str = Field(description="the bearer value, shown once; only its digest is stored")


class ScimTokenList(Output):
    items: list[ScimToken]
