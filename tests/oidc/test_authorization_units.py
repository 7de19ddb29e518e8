"""Pure units: the level ladder (``levels_of_assurance.ladder``) and the authorization endpoint's
decisions (``oidc.authorization``), as tables."""

from __future__ import annotations

import json
from typing import Any

import pytest
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error

from idp.clients import AuthMethod, Client, ClientType
from idp.sessions import Session
from levels_of_assurance.ladder import (
    EIDAS,
    URN,
    Level,
    RequestedLevel,
    acr_for,
    lowest_acceptable,
    parse_acr,
)
from oidc.authorization import (
    LoginReason,
    UnmetAuthenticationRequirementsError,
    issued_acr,
    login_reason,
    requested_level,
)

BASIC, ADVANCED, QUALIFIED = URN[Level.BASIC], URN[Level.ADVANCED], URN[Level.QUALIFIED]
LOW, SUBSTANTIAL, HIGH = EIDAS[Level.BASIC], EIDAS[Level.ADVANCED], EIDAS[Level.QUALIFIED]
NOW = 1_800_000_000.0
REDIRECT = "https://rp.example/cb"


def _client(**kwargs: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": "rp",
        "tenant_id": "tenant-a",
        "name": "RP",
        "client_type": ClientType.CONFIDENTIAL,
        "token_endpoint_auth_method": AuthMethod.SECRET_BASIC,
        "redirect_uris": (REDIRECT,),
    }
    values.update(kwargs)
    return Client(**values)


def _session(*, tenant_id: str = "tenant-a", auth_time: float = NOW - 600, acr: str = BASIC) -> Session:
    return Session("sid-1", tenant_id, "eid-1", auth_time, acr, ("email",), NOW + 3600)


def _essential(*values: str, essential: bool = True) -> str:
    return json.dumps({"id_token": {"acr": {"essential": essential, "values": list(values)}}})


# -- the ladder ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (BASIC, Level.BASIC),
        (ADVANCED, Level.ADVANCED),
        (QUALIFIED, Level.QUALIFIED),
        ("http://eidas.europa.eu/LoA/low", Level.BASIC),
        ("http://eidas.europa.eu/LoA/substantial", Level.ADVANCED),
        ("http://eidas.europa.eu/LoA/high", Level.QUALIFIED),
    ],
)
def test_parse_acr(value: str, level: Level) -> None:
    assert parse_acr(value) is level


@pytest.mark.parametrize(
    "value",
    [
        "",
        "basic",
        "urn:eid:loa:BASIC",
        "https://eidas.europa.eu/LoA/low",
        "http://eidas.europa.eu/LoA/low ",
        "urn:eid:loa:basic\x00",
    ],
)
def test_parse_acr_refuses_what_is_not_on_the_ladder(value: str) -> None:
    with pytest.raises(ValueError, match="unknown acr value") as raised:
        parse_acr(value)
    assert BASIC in str(raised.value)  # says what would have been understood


def test_the_levels_are_ordered() -> None:
    assert Level.BASIC < Level.ADVANCED < Level.QUALIFIED
    assert set(URN) == set(EIDAS) == set(Level)


@pytest.mark.parametrize(
    ("level", "spelling_of", "expected"),
    [
        (Level.BASIC, None, BASIC),
        (Level.ADVANCED, None, ADVANCED),
        (Level.QUALIFIED, BASIC, QUALIFIED),
        (Level.BASIC, LOW, LOW),
        (Level.ADVANCED, LOW, SUBSTANTIAL),
        (Level.QUALIFIED, SUBSTANTIAL, HIGH),
        (Level.BASIC, "urn:other", BASIC),
    ],
)
def test_acr_for_answers_in_the_spelling_asked_with(
    level: Level, spelling_of: str | None, expected: str
) -> None:
    assert acr_for(level, spelling_of=spelling_of) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["urn:other"], None),
        ([BASIC], RequestedLevel(Level.BASIC, BASIC)),
        ([LOW], RequestedLevel(Level.BASIC, LOW)),
        ([QUALIFIED, ADVANCED], RequestedLevel(Level.ADVANCED, ADVANCED)),
        ([HIGH, "urn:other", SUBSTANTIAL], RequestedLevel(Level.ADVANCED, SUBSTANTIAL)),
        ([ADVANCED, LOW], RequestedLevel(Level.BASIC, LOW)),
        ([LOW, BASIC], RequestedLevel(Level.BASIC, LOW)),  # the first of equals
    ],
)
def test_lowest_acceptable(values: list[str], expected: RequestedLevel | None) -> None:
    assert lowest_acceptable(values) == expected


# -- requested_level -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "client", "available", "level", "acr", "essential"),
    [
        ({}, {}, Level.BASIC, Level.BASIC, BASIC, False),
        ({"acr_values": LOW}, {}, Level.BASIC, Level.BASIC, LOW, False),
        ({"acr_values": f"{ADVANCED} {BASIC}"}, {}, Level.BASIC, Level.BASIC, BASIC, False),
        ({"acr_values": f"urn:other {LOW}"}, {}, Level.BASIC, Level.BASIC, LOW, False),
        ({"acr_values": ADVANCED}, {}, Level.QUALIFIED, Level.ADVANCED, ADVANCED, False),
        ({"claims": _essential(LOW)}, {}, Level.BASIC, Level.BASIC, LOW, True),
        ({"claims": _essential(SUBSTANTIAL)}, {}, Level.ADVANCED, Level.ADVANCED, SUBSTANTIAL, True),
        ({"claims": _essential(LOW, essential=False)}, {}, Level.BASIC, Level.BASIC, LOW, False),
        (
            {"claims": json.dumps({"id_token": {"acr": {"value": LOW}}})},
            {},
            Level.BASIC,
            Level.BASIC,
            LOW,
            False,
        ),
        # the claims parameter wins over acr_values
        ({"claims": _essential(LOW), "acr_values": ADVANCED}, {}, Level.BASIC, Level.BASIC, LOW, True),
        # a claims parameter without acr leaves acr_values in charge
        (
            {"claims": json.dumps({"userinfo": {"email": None}}), "acr_values": LOW},
            {},
            Level.BASIC,
            Level.BASIC,
            LOW,
            False,
        ),
        ({"claims": json.dumps({"id_token": {"acr": None}})}, {}, Level.BASIC, Level.BASIC, BASIC, False),
        ({}, {"default_acr": LOW}, Level.BASIC, Level.BASIC, LOW, False),
        ({"acr_values": BASIC}, {"default_acr": LOW}, Level.BASIC, Level.BASIC, BASIC, False),
        ({}, {"minimum_acr": BASIC}, Level.BASIC, Level.BASIC, BASIC, False),
        # the minimum lifts the level and keeps the spelling the client asked with
        ({"acr_values": LOW}, {"minimum_acr": ADVANCED}, Level.ADVANCED, Level.ADVANCED, SUBSTANTIAL, False),
        (
            {"acr_values": QUALIFIED},
            {"minimum_acr": ADVANCED},
            Level.QUALIFIED,
            Level.QUALIFIED,
            QUALIFIED,
            False,
        ),
    ],
)
def test_requested_level(
    data: dict[str, str],
    client: dict[str, Any],
    available: Level,
    level: Level,
    acr: str,
    essential: bool,
) -> None:
    got = requested_level(data, _client(**client), available=available)
    assert got.requested == RequestedLevel(level, acr)
    assert got.essential is essential


@pytest.mark.parametrize(
    ("data", "client", "words"),
    [
        ({"acr_values": ADVANCED}, {}, [ADVANCED, "not offered", f"highest available is {BASIC}"]),
        ({"acr_values": SUBSTANTIAL}, {}, [SUBSTANTIAL, f"highest available is {LOW}"]),
        ({"claims": _essential(QUALIFIED)}, {}, [QUALIFIED, "not offered"]),
        ({}, {"minimum_acr": ADVANCED}, [ADVANCED, "not offered"]),
        ({}, {"default_acr": HIGH}, [HIGH, f"highest available is {LOW}"]),
        ({"acr_values": "urn:gold urn:silver"}, {}, ["urn:gold urn:silver", "is known", BASIC, "eIDAS"]),
        ({"claims": _essential("urn:gold")}, {}, ["urn:gold", "is known"]),
    ],
)
def test_requested_level_unmet(data: dict[str, str], client: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(UnmetAuthenticationRequirementsError) as raised:
        requested_level(data, _client(**client), available=Level.BASIC, redirect_uri=REDIRECT, state="st")
    error = raised.value
    assert error.error == "unmet_authentication_requirements"
    for word in words:
        assert word in error.description
    assert error.redirect_uri == REDIRECT
    assert error.state == "st"


@pytest.mark.parametrize(
    "acr_values",
    ['"quoted" \\back', "ž\x00", "x" * 1000],
)
def test_unknown_values_are_echoed_only_as_an_error_description_may_carry_them(acr_values: str) -> None:
    with pytest.raises(UnmetAuthenticationRequirementsError) as raised:
        requested_level({"acr_values": acr_values}, _client(), available=Level.BASIC)
    description = raised.value.description
    assert not invalid_error_characters(description)  # RFC 6749 §5.2
    assert len(description) < 500


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[" * 5000, "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"acr"', "must be a JSON object"),
        ("null", "must be a JSON object"),
    ],
)
def test_a_malformed_claims_parameter(claims: str, words: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        requested_level({"claims": claims}, _client(), available=Level.BASIC)
    assert words in raised.value.description
    assert not invalid_error_characters(raised.value.description)


@pytest.mark.parametrize(
    "claims",
    [
        json.dumps({"id_token": []}),
        json.dumps({"id_token": {"acr": "urn:eid:loa:basic"}}),
        json.dumps({"id_token": {"acr": {"values": [1, 2]}}}),
        json.dumps({"id_token": {"acr": {"values": []}}}),
        json.dumps({"id_token": {"acr": {"value": 7}}}),
    ],
)
def test_an_acr_request_of_the_wrong_shape_is_ignored(claims: str) -> None:
    got = requested_level({"claims": claims}, _client(), available=Level.BASIC)
    assert got.requested == RequestedLevel(Level.BASIC, BASIC)
    assert got.essential is False


# -- login_reason ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "prompt", "max_age", "level", "fresh_since", "expected"),
    [
        (None, None, None, Level.BASIC, None, LoginReason.NO_SESSION),
        (_session(tenant_id="tenant-b"), None, None, Level.BASIC, None, LoginReason.OTHER_TENANT),
        (_session(), None, None, Level.BASIC, None, None),
        (_session(), "none", None, Level.BASIC, None, None),
        (_session(), "login", None, Level.BASIC, None, LoginReason.PROMPT_LOGIN),
        (_session(), "consent login", None, Level.BASIC, None, LoginReason.PROMPT_LOGIN),
        # after the login this request asked for, the same request goes through
        (_session(auth_time=NOW - 5), "login", None, Level.BASIC, NOW - 10, None),
        (_session(auth_time=NOW - 5), "login", None, Level.BASIC, NOW - 1, LoginReason.PROMPT_LOGIN),
        (_session(), None, "0", Level.BASIC, None, LoginReason.MAX_AGE),
        (_session(auth_time=NOW - 600), None, "599", Level.BASIC, None, LoginReason.MAX_AGE),
        (_session(auth_time=NOW - 600), None, "600", Level.BASIC, None, None),
        (_session(auth_time=NOW - 600), None, "3600", Level.BASIC, None, None),
        (_session(auth_time=NOW - 5), None, "0", Level.BASIC, NOW - 10, None),
        (_session(), None, "", Level.BASIC, None, None),
        (_session(), None, None, Level.ADVANCED, None, LoginReason.STEP_UP),
        (_session(acr=LOW), None, None, Level.BASIC, None, None),
        (_session(acr=ADVANCED), None, None, Level.ADVANCED, None, None),
        (_session(acr=SUBSTANTIAL), None, None, Level.QUALIFIED, None, LoginReason.STEP_UP),
    ],
)
def test_login_reason(
    session: Session | None,
    prompt: str | None,
    max_age: str | None,
    level: Level,
    fresh_since: float | None,
    expected: LoginReason | None,
) -> None:
    got = login_reason(
        session,
        client=_client(),
        level=RequestedLevel(level, URN[level]),
        prompt=prompt,
        max_age=max_age,
        now=NOW,
        fresh_since=fresh_since,
    )
    assert got == expected


@pytest.mark.parametrize("max_age", ["-1", "abc", "1.5", "1e3", " 5", "\uff15", "9" * 5000, "0x10"])
@pytest.mark.parametrize("session", [None, _session()], ids=["no-session", "session"])
def test_a_malformed_max_age_is_invalid_request_with_or_without_a_session(
    max_age: str, session: Session | None
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        login_reason(
            session,
            client=_client(),
            level=RequestedLevel(Level.BASIC, BASIC),
            prompt=None,
            max_age=max_age,
            now=NOW,
            fresh_since=None,
        )
    assert "max_age" in raised.value.description
    assert isinstance(raised.value, OAuth2Error)


@pytest.mark.parametrize(
    ("session_acr", "asked", "expected"),
    [
        (BASIC, BASIC, BASIC),
        (BASIC, LOW, LOW),
        (LOW, BASIC, BASIC),
        (ADVANCED, LOW, SUBSTANTIAL),  # what the session achieved, in the client's spelling
        (QUALIFIED, ADVANCED, QUALIFIED),
        (HIGH, HIGH, HIGH),
    ],
)
def test_issued_acr(session_acr: str, asked: str, expected: str) -> None:
    level = parse_acr(asked)
    assert issued_acr(_session(acr=session_acr), RequestedLevel(level, asked)) == expected
