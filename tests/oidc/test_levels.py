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
HIGH = "http://eidas.europa.eu/LoA/high"


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
        {"acr_values": QUALIFIED},
        {"acr_values": HIGH},
        {"claims": _essential(QUALIFIED)},
        {"claims": _essential(HIGH)},
    ],
    ids=["qualified", "high", "essential-qualified", "essential-eidas"],
)
def test_the_qualified_level_starts_a_login(
    party: PartyFactory, served: ServedApp, extra: dict[str, str]
) -> None:
    # offered since video identification: an advanced login first, then the identity proofed
    p = party()
    seen = outbox_names(served)
    params, _ = p.rp.authorize_params(**extra)
    started = p.rp.start(params)
    assert started.status_code == 303 and started.headers["location"].startswith("/login?")
    page = p.rp.browser.get(started.headers["location"])
    assert 'action="/login/email"' not in page.text  # an email link cannot reach it
    none = redirect_query(p.rp.start(p.rp.authorize_params(**extra, prompt="none")[0]))
    assert none["error"] == "login_required"
    assert outbox_names(served) == seen


def test_a_session_does_not_lift_the_level_it_asks_for_the_missing_factors(party: PartyFactory) -> None:
    p = party()
    p.tokens()  # basic, by email link
    params, _ = p.rp.authorize_params(acr_values=ADVANCED)
    started = p.rp.start(params)
    assert started.status_code == 303 and started.headers["location"].startswith("/login?")
    page = p.rp.browser.get(started.headers["location"])
    # the person is known: no email address asked, and no email link offered at this level
    assert "Enter your password" in page.text
    assert 'action="/login/email"' not in page.text
    none = redirect_query(p.rp.start(p.rp.authorize_params(acr_values=ADVANCED, prompt="none")[0]))
    assert none["error"] == "login_required"


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


def test_a_client_minimum_of_qualified_lifts_every_request(party: PartyFactory) -> None:
    # qualified is offered since video identification: every request needs a qualified login
    p = party(minimum_acr=QUALIFIED)
    for extra in ({}, {"acr_values": BASIC}, {"acr_values": LOW}):
        params, _ = p.rp.authorize_params(**extra)
        started = p.rp.start(params)
        assert started.status_code == 303 and started.headers["location"].startswith("/login?"), extra
        page = p.rp.browser.get(started.headers["location"])
        assert 'action="/login/email"' not in page.text, extra  # an email link cannot reach it
    query = redirect_query(p.rp.start(p.rp.authorize_params(prompt="none")[0]))
    assert query["error"] == "login_required"


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


def test_a_client_default_of_qualified_asks_for_a_qualified_login(party: PartyFactory) -> None:
    p = party(default_acr=QUALIFIED)
    params, _ = p.rp.authorize_params()
    started = p.rp.start(params)
    assert started.status_code == 303 and started.headers["location"].startswith("/login?")
    query = redirect_query(p.rp.start(p.rp.authorize_params(prompt="none")[0]))
    assert query["error"] == "login_required"
