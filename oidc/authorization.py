"""Decisions of the authorization endpoint that authlib leaves to us (OIDC Core §3.1.2).

Which level of assurance a request asks for (``acr_values``, an essential ``acr`` claim, the
client's default and minimum), whether the SSO session satisfies it, and otherwise why the
person has to authenticate (again). Pure functions; the web layer does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error

from idp.clients import Client
from idp.sessions import Session
from levels_of_assurance.ladder import Level, RequestedLevel, acr_for, lowest_acceptable, parse_acr


class UnmetAuthenticationRequirementsError(OAuth2Error):  # type: ignore[misc]
    """OpenID Connect Core Error Code unmet_authentication_requirements 1.0 §2."""

    error = "unmet_authentication_requirements"


class LoginRequiredError(OAuth2Error):  # type: ignore[misc]
    """OIDC Core §3.1.2.6: ``prompt=none`` but the person must authenticate."""

    error = "login_required"


class LoginReason(StrEnum):
    NO_SESSION = "no_session"
    OTHER_TENANT = "other_tenant"
    PROMPT_LOGIN = "prompt_login"
    MAX_AGE = "max_age"
    STEP_UP = "step_up"


@dataclass(slots=True, frozen=True)
class LevelRequest:
    requested: RequestedLevel
    essential: bool


def _echo(values: list[str]) -> str:
    """Request values quoted in an ``error_description``, which allows only printable ASCII
    without ``"`` and ``\\`` (RFC 6749 §5.2); authlib raises on anything else."""
    text = " ".join(values)
    text = text if len(text) <= 200 else text[:200] + "..."
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


def _essential_acr(claims_param: str | None) -> tuple[list[str], bool] | None:
    if not claims_param:
        return None
    try:
        claims = json.loads(claims_param)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise InvalidRequestError("the claims parameter is not valid JSON (OIDC Core section 5.5)") from None
    if not isinstance(claims, dict):
        raise InvalidRequestError("the claims parameter must be a JSON object (OIDC Core section 5.5)")
    spec = (claims.get("id_token") or {}).get("acr") if isinstance(claims.get("id_token"), dict) else None
    if not isinstance(spec, dict):
        return None
    values = spec.get("values") if isinstance(spec.get("values"), list) else None
    if values is None and isinstance(spec.get("value"), str):
        values = [spec["value"]]
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return [str(v) for v in values], bool(spec.get("essential"))


def requested_level(
    data: Mapping[str, str],
    client: Client,
    *,
    available: Level,
    redirect_uri: str | None = None,
    state: str | None = None,
) -> LevelRequest:
    """The level this request needs, or an error when it names none we can give."""
    essential = _essential_acr(data.get("claims"))
    values: list[str] = []
    is_essential = False
    if essential is not None:
        values, is_essential = essential
    elif data.get("acr_values"):
        # space-delimited (OIDC Core §3.1.2.1): only U+0020 separates, so "advanced\u00a0" stays unknown
        values = [v for v in data["acr_values"].split(" ") if v]
    elif client.default_acr:
        values = [client.default_acr]
    if values:
        chosen = lowest_acceptable(values)
        if chosen is None:
            raise UnmetAuthenticationRequirementsError(
                f"none of the requested acr values ({_echo(values)}) is known; this server knows "
                f"{acr_for(Level.BASIC)}, {acr_for(Level.ADVANCED)}, {acr_for(Level.QUALIFIED)} "
                "and their eIDAS equivalents",
                redirect_uri=redirect_uri,
                state=state,
            )
    else:
        chosen = RequestedLevel(Level.BASIC, acr_for(Level.BASIC))
    if client.minimum_acr:
        minimum = parse_acr(client.minimum_acr)
        if chosen.level < minimum:
            chosen = RequestedLevel(minimum, acr_for(minimum, spelling_of=chosen.acr))
    if chosen.level > available:
        raise UnmetAuthenticationRequirementsError(
            f"the requested level of assurance {chosen.acr} is not offered by this server; the highest "
            f"available is {acr_for(available, spelling_of=chosen.acr)}",
            redirect_uri=redirect_uri,
            state=state,
        )
    return LevelRequest(chosen, is_essential)


def login_reason(
    session: Session | None,
    *,
    client: Client,
    level: RequestedLevel,
    prompt: str | None,
    max_age: str | None,
    now: float,
    fresh_since: float | None,
) -> LoginReason | None:
    """Why the person must authenticate before a code can be issued, or ``None``."""
    seconds = _max_age(max_age)  # a malformed request fails before anyone is asked to log in
    if session is None:
        return LoginReason.NO_SESSION
    if session.tenant_id != client.tenant_id:
        return LoginReason.OTHER_TENANT
    fresh = fresh_since is not None and session.auth_time >= fresh_since
    if prompt and "login" in prompt.split() and not fresh:
        return LoginReason.PROMPT_LOGIN
    if seconds is not None and now - session.auth_time > seconds and not fresh:
        return LoginReason.MAX_AGE
    if parse_acr(session.acr) < level.level:
        return LoginReason.STEP_UP
    return None


def _max_age(value: str | None) -> int | None:
    """OIDC Core §3.1.2.1 ``max_age``: seconds, a non-negative integer (digits only)."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise InvalidRequestError("max_age must be a non-negative integer number of seconds")
    return int(value)


def issued_acr(session: Session, level: RequestedLevel) -> str:
    """The acr to put in the ID token: what the session achieved, spelled as the client asked."""
    return acr_for(parse_acr(session.acr), spelling_of=level.acr)
