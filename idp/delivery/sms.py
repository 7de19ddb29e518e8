"""Handing text messages (SMS) to a file outbox or to Twilio.

``IDP_SMS_BACKEND`` selects the backend (:func:`build_sms_sender`):

* ``file:DIR`` — :class:`FileSMSSender`, one JSON file per message (``id``, ``to``, ``body``,
  ``time``), read back with :func:`read_outbox` the way a person reads their phone;
* ``twilio`` — :class:`idp.delivery.twilio.TwilioSMSSender` on Twilio's Programmable Messaging
  API, and, when ``IDP_TWILIO_VERIFY_SID`` is set, :class:`idp.delivery.twilio.TwilioVerify`
  (Twilio then generates, sends and checks the codes itself).

Messages carry one-time codes, so outbox files are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from idp.errors import DeliveryError, SettingsError

if TYPE_CHECKING:
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    from idp.delivery.twilio import TwilioVerify
    from idp.settings import Settings

_SETTING = "IDP_SMS_BACKEND"
_OUTBOX_SUFFIX = ".json"


class SMSSender(Protocol):
    """Hands one text message over for delivery and returns the provider's message id.

    Raises :class:`~idp.errors.DeliveryError` (an :class:`~idp.delivery.twilio.SMSDeliveryError`
    for provider refusals) with a message fit to show the person.
    """

    async def send(self, *, to: str, body: str) -> str: ...


@dataclass(slots=True, frozen=True)
class OutboxSMS:
    """One message as :class:`FileSMSSender` wrote it."""

    id: str
    to: str
    body: str
    time: str  # ISO 8601, UTC


class FileSMSSender:
    """Writes each message to ``directory`` as one JSON file (for development and tests).

    Names sort by time (``20250131T101500.123456789Z-<random>.json``); each file is written under
    a dot-prefixed temporary name and renamed, so a reader never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, *, to: str, body: str) -> str:
        try:
            return await asyncio.to_thread(self._write, to, body)
        except OSError as exc:
            raise DeliveryError(f"cannot write to the SMS outbox {self.directory}: {exc.strerror}") from exc

    def _write(self, to: str, body: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        moment = datetime.fromtimestamp(seconds, UTC)
        message_id = f"file-{secrets.token_hex(8)}"
        name = f"{moment.strftime('%Y%m%dT%H%M%S')}.{nanos:09d}Z-{message_id}{_OUTBOX_SUFFIX}"
        record = {
            "id": message_id,
            "to": to,
            "body": body,
            "time": moment.replace(microsecond=nanos // 1000).isoformat().replace("+00:00", "Z"),
        }
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record, fh, ensure_ascii=False, indent=2)
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return message_id


def read_outbox(directory: Path) -> list[OutboxSMS]:
    """The messages a :class:`FileSMSSender` wrote to ``directory``, oldest first (none if missing)."""
    if not directory.is_dir():
        return []
    paths = sorted(
        p for p in directory.iterdir() if p.suffix == _OUTBOX_SUFFIX and not p.name.startswith(".")
    )
    out = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append(OutboxSMS(id=data["id"], to=data["to"], body=data["body"], time=data["time"]))
    return out


def outbox_directory(backend: str, *, base_dir: Path | None = None) -> Path:
    """The directory a ``file:DIR`` backend writes to (relative ones resolve against ``base_dir``)."""
    raw = backend.removeprefix("file:")
    if not backend.startswith("file:") or not raw:
        raise SettingsError(_SETTING, f"expected file:DIR, e.g. file:var/outbox/sms, got {backend!r}")
    directory = Path(raw)
    if base_dir is not None and not directory.is_absolute():
        directory = base_dir / directory
    return directory


def build_sms_sender(
    settings: Settings, *, base_dir: Path | None = None, http_client: AsyncTwilioHttpClient | None = None
) -> SMSSender | None:
    """The sender for ``IDP_SMS_BACKEND`` (module docstring).

    ``None`` only for ``twilio`` without ``IDP_TWILIO_FROM``, which settings allow when
    ``IDP_TWILIO_VERIFY_SID`` is set: Twilio Verify then sends the codes
    (:func:`build_verify_service`). ``http_client`` replaces the SDK's HTTP client (tests point it
    at a local fake of Twilio's API).
    """
    if settings.sms_backend.startswith("file:"):
        return FileSMSSender(outbox_directory(settings.sms_backend, base_dir=base_dir))
    if settings.sms_backend == "twilio":
        from idp.delivery.twilio import TwilioSMSSender, twilio_client

        if not settings.twilio_from:
            return None
        return TwilioSMSSender(twilio_client(settings, http_client=http_client), sender=settings.twilio_from)
    raise SettingsError(_SETTING, f"expected twilio or file:DIR, got {settings.sms_backend!r}")


def build_verify_service(
    settings: Settings, *, http_client: AsyncTwilioHttpClient | None = None
) -> TwilioVerify | None:
    """Twilio Verify when ``IDP_SMS_BACKEND=twilio`` and ``IDP_TWILIO_VERIFY_SID`` are set, else ``None``."""
    if settings.sms_backend != "twilio" or not settings.twilio_verify_sid:
        return None
    from idp.delivery.twilio import TwilioVerify, twilio_client

    return TwilioVerify(twilio_client(settings, http_client=http_client), settings.twilio_verify_sid)
