"""authlib requests built from Starlette's (oidc.starlette.requests): the same object authlib builds,
and authlib's transport rule (RFC 6749 §1.6) still applied."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError

from oidc.starlette.requests import StarletteOAuth2Request


def test_the_request_has_every_attribute_authlib_sets() -> None:
    # StarletteOAuth2Request sets authlib's attributes itself; an authlib upgrade that adds one fails here
    ours = StarletteOAuth2Request(method="POST", uri="https://idp.test/token", headers={}, form=[("a", "1")])
    theirs = OAuth2Request("POST", "https://idp.test/token", headers={})
    assert set(vars(theirs)) <= set(vars(ours))
    for name, value in vars(theirs).items():
        if name != "payload":
            assert getattr(ours, name) == value, name


@pytest.mark.parametrize(
    ("args", "form", "data", "datalist"),
    [
        ([], [("grant_type", "x"), ("scope", "a")], {"grant_type": "x", "scope": "a"}, None),
        ([("state", "s")], [], {"state": "s"}, None),
        ([("a", "1"), ("b", "2")], [("a", "3")], {"a": "1", "b": "2"}, {"a": ["1", "3"], "b": ["2"]}),
        ([], [("a", "1"), ("a", "2")], {"a": "1"}, {"a": ["1", "2"]}),
    ],
)
def test_the_payload_merges_query_and_form(
    args: list[tuple[str, str]],
    form: list[tuple[str, str]],
    data: dict[str, str],
    datalist: dict[str, list[str]] | None,
) -> None:
    uri = "https://idp.test/token"
    req = StarletteOAuth2Request(method="POST", uri=uri, headers={}, args=args, form=form)
    assert req.payload.data == data
    assert dict(req.payload.datalist) == (datalist or {k: [v] for k, v in data.items()})
    assert req.form == _first_values(form)
    assert req.args == _first_values(args)


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(reversed(pairs))


@pytest.mark.parametrize("uri", ["http://idp.example/token", "ftp://idp.example/token", "https:///token"])
def test_a_plain_http_issuer_is_refused_every_time(uri: str) -> None:
    for _ in range(2):  # the check is cached only for URIs that pass it
        with pytest.raises(InsecureTransportError):
            StarletteOAuth2Request(method="POST", uri=uri, headers={})


@pytest.mark.parametrize(
    "uri", ["https://idp.example/token", "http://127.0.0.1:8000/token", "http://localhost/t"]
)
def test_https_and_loopback_issuers_are_accepted(uri: str) -> None:
    assert StarletteOAuth2Request(method="POST", uri=uri, headers={}).uri == uri
