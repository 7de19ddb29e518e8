"""Twilio: text messages through the Programmable Messaging API and codes through Twilio Verify.

The official ``twilio`` SDK is used with its asynchronous HTTP client (``create_async``), so the
event loop never waits on Twilio. Every refusal, outage or timeout becomes an
:class:`SMSDeliveryError` whose message can be shown to the person as it is and whose ``code``
the web layer translates; the provider's own code and text stay in ``detail`` for operators.
Twilio error codes: https://www.twilio.com/docs/api/errors.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from idp.errors import DeliveryError

if TYPE_CHECKING:
    from idp.settings import Settings

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0

SMSProblem = Literal["sms_number_refused", "sms_too_many", "sms_unavailable"]

_MESSAGES: dict[str, str] = {
    "sms_number_refused": (
        "This number cannot receive our text messages. Check the number or use another mobile number."
    ),
    "sms_too_many": "Too many text messages were sent to this number. Please wait a while and try again.",
    "sms_unavailable": "Text messages cannot be sent right now. Please try again in a few minutes.",
}
# Twilio error codes that say the recipient cannot be reached (https://www.twilio.com/docs/api/errors)
_NUMBER_REFUSED = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21217,  # phone number does not appear to be valid
        21401,  # invalid phone number
        21408,  # permission to send an SMS has not been enabled for the region
        21610,  # attempt to send to unsubscribed recipient (replied STOP)
        21612,  # the 'To' phone number is not currently reachable
        21614,  # 'To' number is not a valid mobile number
        60200,  # Verify: invalid parameter (the number)
        60205,  # Verify: SMS is not supported by landline phone number
        60410,  # Verify: this prefix is blocked (fraud guard)
    }
)
_TOO_MANY = frozenset({14107, 20429, 60203})  # rate limits; 60203: Verify max send attempts reached


class SMSDeliveryError(DeliveryError):
    """The SMS provider refused or could not be reached; the message is fit to show the person.

    ``code`` is one of ``sms_number_refused``, ``sms_too_many``, ``sms_unavailable``; ``detail``
    says what the provider answered (for logs; it never holds the credentials).
    """

    def __init__(
        self,
        code: SMSProblem,
        *,
        detail: str,
        provider_code: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(_MESSAGES[code])
        self.code = code
        self.detail = detail
        self.provider_code = provider_code
        self.status = status


def map_error(exc: BaseException, *, action: str) -> SMSDeliveryError:
    """The :class:`SMSDeliveryError` for an exception raised while calling Twilio."""
    if isinstance(exc, TwilioRestException):
        code = int(exc.code) if isinstance(exc.code, int) else None
        detail = f"{action}: Twilio answered HTTP {exc.status}, error {code}: {exc.msg}"
        problem: SMSProblem
        if code in _NUMBER_REFUSED:
            problem = "sms_number_refused"
        elif code in _TOO_MANY or exc.status == 429:
            problem = "sms_too_many"
        else:  # 401/403 (credentials), other 4xx (our request), 5xx (Twilio's side)
            problem = "sms_unavailable"
        return SMSDeliveryError(problem, detail=detail, provider_code=code, status=exc.status)
    if isinstance(exc, TimeoutError):
        return SMSDeliveryError("sms_unavailable", detail=f"{action}: Twilio did not answer in time")
    return SMSDeliveryError("sms_unavailable", detail=f"{action}: {type(exc).__name__}: {exc}")


async def _call(action: str, make: Callable[[], Awaitable[T]]) -> T:
    try:
        return await make()
    except (TwilioException, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        # ``from None``: the SDK's exception text is in ``detail``; its traceback is noise in logs
        raise map_error(exc, action=action) from None


class TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # the SDK ships no types
    """The SDK's asynchronous HTTP client, with its request made safe to use in a server.

    The SDK's own ``request`` applies no timeout unless each call passes one (aiohttp's default
    is five minutes), leaves its per-request aiohttp session unclosed when the request fails, and
    passes Basic auth through aiohttp's ``auth`` argument, deprecated since aiohttp 3.13. This
    one opens and always closes one session per request (SMS are rare), bounds the whole request
    with ``timeout``, and sends the credentials in the ``Authorization`` header (RFC 7617).
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(pool_connections=False, timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            pair = f"{auth[0]}:{auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        limit = timeout if timeout is not None else self.timeout
        # asyncio.timeout bounds connecting and reading alike and raises the builtin TimeoutError
        async with asyncio.timeout(limit), aiohttp.ClientSession() as session:
            async with session.request(
                method.upper(),
                url,
                params={k: str(v) for k, v in (params or {}).items()},
                data=data,
                headers=headers,
                allow_redirects=allow_redirects,
            ) as answer:
                text = await answer.text()
                return Response(answer.status, text, answer.headers)


def twilio_client(settings: Settings, *, http_client: AsyncTwilioHttpClient | None = None) -> Client:
    """A Twilio REST client for ``IDP_TWILIO_ACCOUNT_SID`` / ``IDP_TWILIO_AUTH_TOKEN``."""
    return Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        http_client=http_client or TwilioHttpClient(timeout=float(settings.twilio_timeout)),
        # non-empty, so the SDK does not fall back to reading os.environ for edge and region
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )


class TwilioSMSSender:
    """Sends through the Messages resource (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

    ``sender`` is an E.164 number, an alphanumeric sender ID, or a Messaging Service SID (``MG…``).
    """

    def __init__(self, client: Client, *, sender: str) -> None:
        self._client = client
        self._sender = sender

    async def send(self, *, to: str, body: str) -> str:
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self._sender.startswith("MG"):
            kwargs["messaging_service_sid"] = self._sender
        else:
            kwargs["from_"] = self._sender
        message = await _call("sending an SMS", lambda: self._client.messages.create_async(**kwargs))
        return str(message.sid)


class TwilioVerify:
    """Twilio Verify: Twilio generates the code, sends it and checks it.

    ``POST /v2/Services/{sid}/Verifications`` starts one, ``POST /v2/Services/{sid}/VerificationCheck``
    checks a code (https://www.twilio.com/docs/verify/api).
    """

    def __init__(self, client: Client, service_sid: str) -> None:
        self._client = client
        self.service_sid = service_sid

    async def start(self, *, to: str, locale: str | None = None) -> str:
        """Send a code by SMS to ``to``; returns the verification's SID."""
        service = self._client.verify.v2.services(self.service_sid)
        kwargs: dict[str, Any] = {"to": to, "channel": "sms"}
        if locale:
            kwargs["locale"] = locale
        verification = await _call(
            "starting a Twilio verification", lambda: service.verifications.create_async(**kwargs)
        )
        return str(verification.sid)

    async def check(self, *, to: str, code: str) -> bool | None:
        """``True`` when Twilio approves ``code``, ``False`` when it is wrong, ``None`` when Twilio
        holds no pending verification for ``to`` (expired, approved already, or too many checks)."""
        service = self._client.verify.v2.services(self.service_sid)
        try:
            result = await service.verification_checks.create_async(to=to, code=code)
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in (20404, 60202):
                return None
            raise map_error(exc, action="checking a Twilio verification") from None
        except (TwilioException, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise map_error(exc, action="checking a Twilio verification") from None
        return bool(result.status == "approved")
