"""Levels of assurance at the authorization endpoint: acr_values, the essential acr claim, client
defaults and minimums (OIDC Core §3.1.2.1, §5.5.1.1; OpenID Connect Core Error Code
unmet_authentication_requirements 1.0)."""

from __future__ import annotations

import json

import pytest

from tests.oidc.conftest import PartyFactory, outbox_names, redirect_query
from tests.support.server import ServedApp

BASIC, ADVANCED, QUALIFIED = "urn:eid:loa:basic", "urn:eid:loa:advanced", "urn:eid:loa:qualified"
LOW, SUBSTANTIAL = "http://eidas.europa.eu/LoA/low", "http://eidas.europa.eu/LoA/substantial"


def _essential(*values: str) -> str:
    return json.dumps({"id_token": {"acr": {"essential": True, "values": list(values)}}})


def test_without_acr_values_the_level_is_basic(party: PartyFactory) -> None:
    p = party()
    body = p.tokens()
    claims = p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])
    assert claims["acr"] == BASIC
    assert claims["amr"] == ["email"]
    assert p.introspect(body["access_token"]).json()["acr"] == BASIC


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"acr_values": LOW}, LOW),
        ({"acr_values": BASIC}, BASIC),
        ({"acr_values": f"{SUBSTANTIAL} {LOW}"}, LOW),  # the lowest acceptable one is met
        ({"claims": _essential(LOW)}, LOW),
        ({"claims": json.dumps({"id_token": {"acr": {"value": LOW}}})}, LOW),
        ({"claims": json.dumps({"userinfo": {"email": None}})}, BASIC),  # no acr asked for
    ],
    ids=["eidas-low", "urn-basic", "preference-list", "essential-eidas", "claims-value", "claims-no-acr"],
)
def test_the_id_token_carries_the_spelling_asked_for(
    party: PartyFactory, extra: dict[str, str], expected: str
) -> None:
    p = party()
    body = p.tokens(**extra)
    claims = p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])
    assert claims["acr"] == expected
    assert p.introspect(body["access_token"]).json()["acr"] == expected


def test_an_existing_session_answers_in_the_spelling_of_each_request(party: PartyFactory) -> None:
    p = party()
    p.tokens()  # an SSO session at basic
    params, verifier = p.rp.authorize_params(acr_values=LOW, prompt="none")
    query = redirect_query(p.rp.start(params))
    body = p.rp.exchange(query["code"], verifier).json()
    assert p.rp.verify_id_token(body["id_token"], nonce=params["nonce"])["acr"] == LOW


@pytest.mark.parametrize(
    "extra",
    [
        {"acr_values": ADVANCED},
        {"acr_values": SUBSTANTIAL},
        {"acr_values": QUALIFIED},
        {"claims": _essential(ADVANCED)},
        {"claims": _essential(SUBSTANTIAL, "http://eidas.europa.eu/LoA/high")},
    ],
    ids=["advanced", "substantial", "qualified", "essential-advanced", "essential-eidas"],
)
def test_a_level_above_what_is_offered_is_unmet(
    party: PartyFactory, served: ServedApp, extra: dict[str, str]
) -> None:
    p = party()
    seen = outbox_names(served)
    params, _ = p.rp.authorize_params(**extra)
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unmet_authentication_requirements"
    description = query["error_description"]
    assert "not offered" in description
    assert "highest available" in description
    asked = params.get("acr_values") or json.loads(params["claims"])["id_token"]["acr"]["values"][0]
    assert asked in description
    assert query["state"] == params["state"]
    assert query["iss"] == served.issuer
    assert outbox_names(served) == seen  # nobody was asked to log in for nothing


def test_a_session_does_not_lift_the_level(party: PartyFactory) -> None:
    p = party()
    p.tokens()
    params, _ = p.rp.authorize_params(acr_values=ADVANCED)
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unmet_authentication_requirements"


def test_only_unknown_acr_values_are_unmet(party: PartyFactory) -> None:
    p = party()
    params, _ = p.rp.authorize_params(acr_values="urn:example:gold urn:example:silver")
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unmet_authentication_requirements"
    assert "urn:example:gold" in query["error_description"]
    assert BASIC in query["error_description"]  # says what is known


@pytest.mark.parametrize("claims", ["{not json", "[1, 2]", '"acr"'])
def test_a_malformed_claims_parameter_is_invalid_request(party: PartyFactory, claims: str) -> None:
    p = party()
    params, _ = p.rp.authorize_params(claims=claims)
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "invalid_request"
    assert "claims" in query["error_description"]
    assert "JSON" in query["error_description"]
    assert query["state"] == params["state"]


def test_a_client_minimum_above_what_is_offered_fails_every_request(party: PartyFactory) -> None:
    p = party(minimum_acr=ADVANCED)
    for extra in ({}, {"acr_values": BASIC}, {"acr_values": LOW}, {"prompt": "none"}):
        params, _ = p.rp.authorize_params(**extra)
        query = redirect_query(p.rp.start(params))
        assert query["error"] == "unmet_authentication_requirements", extra
        assert "not offered" in query["error_description"]
        # the minimum is named in the spelling the client asked with
        expected = SUBSTANTIAL if extra.get("acr_values") == LOW else ADVANCED
        assert expected in query["error_description"], extra


def test_a_client_minimum_that_is_offered_is_applied(party: PartyFactory) -> None:
    p = party(minimum_acr=LOW)
    body = p.tokens()
    assert p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])["acr"] == BASIC


def test_a_client_default_acr_sets_the_spelling(party: PartyFactory) -> None:
    p = party(default_acr=LOW)
    body = p.tokens()
    assert p.rp.verify_id_token(body["id_token"], nonce=body["_nonce"])["acr"] == LOW
    # an explicit request overrides the default
    again = p.login(acr_values=BASIC, prompt="none")
    body = p.rp.exchange(again.callback["code"], again.verifier).json()
    assert p.rp.verify_id_token(body["id_token"], nonce=again.params["nonce"])["acr"] == BASIC


def test_a_client_default_above_what_is_offered_is_unmet(party: PartyFactory) -> None:
    p = party(default_acr=ADVANCED)
    params, _ = p.rp.authorize_params()
    query = redirect_query(p.rp.start(params))
    assert query["error"] == "unmet_authentication_requirements"
