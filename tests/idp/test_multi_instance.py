"""Two app instances on one PostgreSQL database and one Redis: what one does, the other honours.

Sessions, codes and keys live in the database; key changes are announced on Redis; throttles
count in Redis. Each test's browser comes from its own documentation-range IP (the instances
trust X-Forwarded-For here), so runs sharing the Redis server do not count each other's hits.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from joserfc import jws

from idp import clients
from idp.sessions import COOKIE_NAME as SESSION_COOKIE
from idp.web.state import invalidation_channel
from oidc import keys
from tests.support.flows import RelyingParty, form_value, query_of
from tests.support.server import SECRET, ServedApp, serve, settings_factory_for

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIRECT_URI = "https://rp.example/cb"
IP_LIMIT = 3


@dataclass
class Pair:
    a: ServedApp
    b: ServedApp


@pytest.fixture
def pair(pg_database_url: str, tls: tuple[Path, Path], tmp_path: Path) -> Iterator[Pair]:
    factory = settings_factory_for(pg_database_url, tmp_path)
    options: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "trust_proxy_headers": True,
        "email_link_limit_per_ip": IP_LIMIT,
    }
    with (
        serve(factory, tls=tls, outbox=tmp_path / "mail", **options) as a,
        serve(factory, tls=tls, outbox=tmp_path / "mail", **options) as b,
    ):
        assert a.state.redis is not None and b.state.redis is not None
        yield Pair(a, b)


def _ip() -> str:
    """An address of 2001:db8::/32 (RFC 3849) no other test or run uses."""
    return str(ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + secrets.randbits(64)))


def _party(served: ServedApp, **client_kwargs: Any) -> tuple[clients.NewClient, str]:
    tenant = served.tenant(f"m{secrets.token_hex(5)}")
    new = served.client_app(tenant, redirect_uris=[REDIRECT_URI], **client_kwargs)
    email = f"{secrets.token_hex(4)}@example.com"
    served.user(tenant, email, given_name="Ana")
    return new, email


def _rp(served: ServedApp, new: clients.NewClient, ip: str) -> RelyingParty:
    rp = RelyingParty(served, new.client.client_id, new.client_secret, REDIRECT_URI)
    rp.browser.headers["X-Forwarded-For"] = ip
    return rp


def _kid(id_token: str) -> str:
    return str(jws.extract_compact(id_token.encode()).protected["kid"])


def _jwks_kids(served: ServedApp) -> set[str]:
    with served.client() as http:
        return {k["kid"] for k in http.get("/.well-known/jwks.json").json()["keys"]}


@contextmanager
def _keys_announced_elsewhere(channel: str) -> Iterator[Callable[[], bool]]:
    """Whether anyone else announced new keys on this deployment's channel meanwhile (another
    test of this run on the same database)."""
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1.0)  # the subscription is confirmed before the block runs

    def heard() -> bool:
        messages = iter(lambda: pubsub.get_message(timeout=0.2), None)
        return any(m["data"] == b"keys" for m in messages)

    try:
        yield heard
    finally:
        pubsub.close()
        client.close()


def _prompt_none(rp: RelyingParty, session_cookie: str | None) -> tuple[dict[str, str], str, dict[str, str]]:
    """``/authorize?prompt=none`` with only the SSO session cookie (if any); the callback's query."""
    params, verifier = rp.authorize_params(prompt="none")
    headers = {"Cookie": f"{SESSION_COOKIE}={session_cookie}"} if session_cookie else {}
    with httpx.Client(base_url=rp.served.issuer, verify=rp.served.ssl_context(), timeout=10) as fresh:
        response = fresh.get("/authorize", params=params, headers=headers)
    assert response.status_code == 302, (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return params, verifier, query_of(location)


def test_session_and_codes_work_across_instances(pair: Pair) -> None:
    new, email = _party(pair.a)
    ip = _ip()
    rp_a, rp_b = _rp(pair.a, new, ip), _rp(pair.b, new, ip)
    try:
        params, verifier = rp_a.authorize_params()
        callback = rp_a.email_login(params, email)  # logged in at A
        cookie = rp_a.browser.cookies[SESSION_COOKIE]

        # A's code, redeemed at B
        response = rp_b.exchange(callback["code"], verifier)
        assert response.status_code == 200, response.text
        claims = rp_b.verify_id_token(response.json()["id_token"], nonce=params["nonce"])
        sub = claims["sub"]

        # A's session cookie, honoured by B without a login; B's code redeemed at A
        params, verifier, query = _prompt_none(rp_b, cookie)
        assert "code" in query, query
        assert query["state"] == params["state"]
        response = rp_a.exchange(query["code"], verifier)
        assert response.status_code == 200, response.text
        assert rp_a.verify_id_token(response.json()["id_token"], nonce=params["nonce"])["sub"] == sub

        # and without the cookie B wants a login: what B honoured was the session
        _params, _verifier, query = _prompt_none(rp_b, None)
        assert query["error"] == "login_required", query
    finally:
        rp_a.close()
        rp_b.close()


def test_a_code_is_single_use_across_instances(pair: Pair) -> None:
    new, email = _party(pair.a)
    ip = _ip()
    rp_a, rp_b = _rp(pair.a, new, ip), _rp(pair.b, new, ip)
    try:
        params, verifier = rp_a.authorize_params()
        callback = rp_a.email_login(params, email)
        assert rp_b.exchange(callback["code"], verifier).status_code == 200
        replay = rp_a.exchange(callback["code"], verifier)
        assert replay.status_code == 400, replay.text
        assert replay.json()["error"] == "invalid_grant"
    finally:
        rp_a.close()
        rp_b.close()


def test_key_rotation_on_one_instance_reaches_the_other(pair: Pair) -> None:
    new, email = _party(pair.a)
    ip = _ip()
    rp_a, rp_b = _rp(pair.a, new, ip), _rp(pair.b, new, ip)
    try:
        params, _verifier = rp_a.authorize_params()
        rp_a.email_login(params, email)
        cookie = rp_a.browser.cookies[SESSION_COOKIE]

        with _keys_announced_elsewhere(
            invalidation_channel(pair.a.settings.database_url)
        ) as announced_elsewhere:
            result = pair.a.write(lambda tx: keys.rotate(tx, secret=SECRET, keep_for=3600))
            pair.a.run(pair.a.state.reload_keys())
            new_kids = set(result["active"])
            assert new_kids <= _jwks_kids(pair.a)
            b_knows = new_kids & _jwks_kids(pair.b)
            if not announced_elsewhere():
                assert not b_knows, "B knew of the rotation before it was announced"

        pair.a.run(pair.a.state.announce("keys"))
        deadline = time.monotonic() + 5
        while not new_kids <= _jwks_kids(pair.b):
            assert time.monotonic() < deadline, "instance B did not pick up the rotated keys within 5 s"
            time.sleep(0.05)
        assert set(result["retired"]) <= _jwks_kids(pair.b)  # the old keys stay published

        # B now signs with the new key
        params, verifier, query = _prompt_none(rp_b, cookie)
        response = rp_b.exchange(query["code"], verifier)
        assert response.status_code == 200, response.text
        id_token = response.json()["id_token"]
        assert _kid(id_token) in new_kids
        rp_b.verify_id_token(id_token, nonce=params["nonce"])
    finally:
        rp_a.close()
        rp_b.close()


def _login_form(rp: RelyingParty) -> tuple[str, str]:
    response = rp.start(rp.authorize_params()[0])
    assert response.status_code == 303, response.text
    page = rp.browser.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return form_value(page.text, "csrf_token"), form_value(page.text, "request_id")


def _send_link(served: ServedApp, rp: RelyingParty, csrf: str, request_id: str) -> httpx.Response:
    """POST the email form to ``served`` as ``rp``'s browser (its cookies and IP), wherever it started."""
    with httpx.Client(base_url=served.issuer, verify=served.ssl_context(), timeout=10) as http:
        return http.post(
            "/login/email",
            data={"csrf_token": csrf, "request_id": request_id, "email": "nobody@example.com"},
            headers={
                "X-Forwarded-For": rp.browser.headers["X-Forwarded-For"],
                "Cookie": "; ".join(f"{name}={value}" for name, value in rp.browser.cookies.items()),
            },
        )


def test_email_link_ip_limit_is_shared(pair: Pair) -> None:
    new, _email = _party(pair.a)
    rp = _rp(pair.a, new, _ip())
    try:
        csrf, request_id = _login_form(rp)
        hits = [pair.a, pair.a, pair.b]
        assert len(hits) == IP_LIMIT
        for served in hits:
            response = _send_link(served, rp, csrf, request_id)
            assert response.status_code == 303, response.text  # on to "check your email"
        for served in (pair.b, pair.a):  # neither instance lets a fourth one through
            refused = _send_link(served, rp, csrf, request_id)
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) > 0
        # another address (another browser) is not affected
        other = _rp(pair.b, new, _ip())
        try:
            csrf, request_id = _login_form(other)
            assert _send_link(pair.b, other, csrf, request_id).status_code == 303
        finally:
            other.close()
    finally:
        rp.close()


def _redis_ports(served: ServedApp) -> set[int]:
    """Local ports of the Redis connections ``served`` holds now: at rest, its channel subscription
    (redis-py keeps no public handle on them)."""
    assert served.state.redis is not None
    pool: Any = served.state.redis.connection_pool
    return {c._writer.get_extra_info("sockname")[1] for c in list(pool._in_use_connections) if c._writer}


def test_an_instance_hears_announcements_again_after_losing_redis(pair: Pair) -> None:
    """A Redis restart or network blip drops the subscription; the instance must subscribe again
    (and catch up on what it may have missed) instead of going deaf until it restarts."""
    import asyncio

    from redis.asyncio import Redis

    deadline = time.monotonic() + 5
    while not (ports := _redis_ports(pair.b)):  # the listener subscribes once the app is up
        assert time.monotonic() < deadline, "instance B holds no subscription"
        time.sleep(0.02)

    async def drop() -> None:
        admin = Redis.from_url(REDIS_URL)
        try:
            for port in ports:
                await admin.client_kill_filter(_type=None, addr=f"127.0.0.1:{port}")
        finally:
            await admin.aclose()

    asyncio.run(drop())
    result = pair.a.write(lambda tx: keys.rotate(tx, secret=SECRET, keep_for=3600))
    pair.a.run(pair.a.state.reload_keys())
    new_kids = set(result["active"])
    deadline = time.monotonic() + 10
    while not new_kids <= _jwks_kids(pair.b):
        assert time.monotonic() < deadline, "instance B stopped hearing announcements after a Redis blip"
        pair.a.run(pair.a.state.announce("keys"))
        time.sleep(0.1)
