from __future__ import annotations

from idp.clients import ClientType
from tests.support.flows import RelyingParty
from tests.support.server import ServedApp


def test_code_flow_with_pkce_through_email_link(served: ServedApp) -> None:
    tenant = served.tenant()
    new = served.client_app(
        tenant, client_type=ClientType.CONFIDENTIAL, redirect_uris=["https://rp.example/cb"]
    )
    served.user(tenant, "ana@example.com", given_name="Ana")
    rp = RelyingParty(served, new.client.client_id, new.client_secret, "https://rp.example/cb")
    params, verifier = rp.authorize_params()
    callback = rp.email_login(params, "ana@example.com")
    assert callback["state"] == params["state"]
    assert callback["iss"] == served.issuer
    response = rp.exchange(callback["code"], verifier)
    assert response.status_code == 200, response.text
    claims = rp.verify_id_token(response.json()["id_token"], nonce=params["nonce"])
    assert claims["acr"] == "urn:eid:loa:basic"
    rp.close()
