"""A local fake of Twilio's REST API, driven by the real twilio SDK.

Serves the three resources the IdP uses, with HTTP Basic authentication checked as Twilio does
(account SID and auth token) and Twilio's error JSON (``code``, ``message``, ``more_info``,
``status``):

* ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (Programmable Messaging),
* ``POST /v2/Services/{ServiceSid}/Verifications`` and ``.../VerificationCheck`` (Verify).

The SDK is pointed here through its ``http_client`` hook: :class:`FakeTwilioHttpClient` is the
IdP's own client (:class:`idp.delivery.twilio.TwilioHttpClient`) with the host of every URL
rewritten to this server, so what is tested is exactly the request the SDK builds.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from twilio.http.response import Response

from idp.delivery.twilio import TwilioHttpClient

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token-" + "9" * 16
VERIFY_SID = "VA" + "fedcba9876543210" * 2
MAX_CHECKS = 5


@dataclass(slots=True, frozen=True)
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None
    headers: dict[str, str]


@dataclass(slots=True, frozen=True)
class Failure:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilio:
    host: str = "127.0.0.1"
    port: int = 0
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    verify_sid: str = VERIFY_SID
    requests: list[Recorded] = field(default_factory=list)
    original_urls: list[str] = field(default_factory=list)
    pending_codes: dict[str, str] = field(default_factory=dict)  # Verify: E.164 -> code
    wrong_checks: dict[str, int] = field(default_factory=dict)
    failures: deque[Failure] = field(default_factory=deque)
    hang: threading.Event = field(default_factory=threading.Event)  # set: hold answers until released
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, status: int, code: int, message: str) -> None:
        """Answer the next request with Twilio's error JSON."""
        self.failures.append(Failure(status, code, message))

    def http_client(self, *, timeout: float = 5.0) -> FakeTwilioHttpClient:
        return FakeTwilioHttpClient(self, timeout=timeout)


class FakeTwilioHttpClient(TwilioHttpClient):  # type: ignore[misc]  # the SDK ships no types
    """The IdP's Twilio HTTP client with ``https://*.twilio.com`` rewritten to the fake."""

    def __init__(self, fake: FakeTwilio, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.fake = fake

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname is not None
        assert parts.hostname.endswith(".twilio.com"), f"the SDK called {url}"
        self.fake.original_urls.append(url)
        local = urlunsplit(("http", f"{self.fake.host}:{self.fake.port}", parts.path, parts.query, ""))
        response: Response = await super().request(method, local, *args, **kwargs)
        return response


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _answer(fake: FakeTwilio, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    segments = [s for s in path.split("/") if s]
    if method != "POST":
        return _error(405, 20004, "Method not allowed")
    if segments[:3] == ["2010-04-01", "Accounts", fake.account_sid] and segments[3:] == ["Messages.json"]:
        to = form.get("To", "")
        if not to.startswith("+") or not to[1:].isdigit():
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if "Body" not in form:
            return _error(400, 21602, "Message body is required.")
        sender = form.get("From")
        if sender is None and "MessagingServiceSid" not in form:
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        return 201, {
            "sid": _sid("SM"),
            "account_sid": fake.account_sid,
            "to": to,
            "from": sender,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued" if sender else "accepted",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
        }
    if segments[:3] == ["v2", "Services", fake.verify_sid] and segments[3:] == ["Verifications"]:
        to = form.get("To", "")
        if form.get("Channel") not in ("sms", "call", "email", "whatsapp"):
            return _error(400, 60200, "Invalid parameter: Channel")
        if not to.startswith("+") or not to[1:].isdigit():
            return _error(400, 60200, "Invalid parameter `To`")
        with fake.lock:  # Twilio resends the pending code when there is one
            fake.pending_codes.setdefault(to, f"{secrets.randbelow(10**6):06d}")
            fake.wrong_checks.setdefault(to, 0)
        return 201, {
            "sid": _sid("VE"),
            "service_sid": fake.verify_sid,
            "account_sid": fake.account_sid,
            "to": to,
            "channel": form["Channel"],
            "status": "pending",
            "valid": False,
            "lookup": {},
            "amount": None,
            "payee": None,
            "send_code_attempts": [],
        } | ({"locale": form["Locale"]} if "Locale" in form else {})
    if segments[:3] == ["v2", "Services", fake.verify_sid] and segments[3:] == ["VerificationCheck"]:
        to = form.get("To", "")
        with fake.lock:
            expected = fake.pending_codes.get(to)
            if expected is None:
                return _error(
                    404,
                    20404,
                    f"The requested resource /Services/{fake.verify_sid}/VerificationCheck was not found",
                )
            if form.get("Code") == expected:
                del fake.pending_codes[to]
                status = "approved"
            else:
                fake.wrong_checks[to] = fake.wrong_checks.get(to, 0) + 1
                if fake.wrong_checks[to] >= MAX_CHECKS:
                    del fake.pending_codes[to]
                    return _error(429, 60202, "Max check attempts reached")
                status = "pending"
        return 200, {
            "sid": _sid("VE"),
            "service_sid": fake.verify_sid,
            "account_sid": fake.account_sid,
            "to": to,
            "channel": "sms",
            "status": status,
            "valid": status == "approved",
        }
    return _error(404, 20404, f"The requested resource {path} was not found")


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    """Serve a :class:`FakeTwilio` on a free local port until the block ends."""
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            form = dict(parse_qsl(body, keep_blank_values=True))
            auth = _basic(self.headers.get("Authorization"))
            path = urlsplit(self.path).path
            fake.requests.append(Recorded(self.command, path, form, auth, dict(self.headers.items())))
            if fake.hang.is_set():
                fake.release.wait(timeout=30)
            if auth != (fake.account_sid, fake.auth_token):
                status, payload = _error(401, 20003, "Authenticate")
            elif fake.failures:
                failure = fake.failures.popleft()
                status, payload = _error(failure.status, failure.code, failure.message)
            else:
                status, payload = _answer(fake, self.command, path, form)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((fake.host, 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-twilio", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password
