"""Composing mail and handing it to a file outbox or an SMTP server.

``IDP_EMAIL_BACKEND`` selects the backend (:func:`build_mailer`):

* ``file:DIR`` — :class:`FileMailer`, one RFC 5322 ``.eml`` file per message;
* ``smtp://[user:pass@]host[:port][?starttls=true|false&timeout=10]`` — :class:`SmtpMailer`,
  STARTTLS (RFC 3207) opportunistic by default and *required* when credentials are given,
  unless ``starttls=false`` says otherwise;
* ``smtps://[user:pass@]host[:port][?timeout=10]`` — implicit TLS (RFC 8314 section 3.3).

Messages carry secrets (login links), so outbox files are readable by their owner only and
SMTP errors never repeat the password.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from idp.errors import DeliveryError, SettingsError

_SETTING = "IDP_EMAIL_BACKEND"
_OUTBOX_SUFFIX = ".eml"
_RESERVED_HEADERS = frozenset({"from", "to", "subject", "date", "message-id", "mime-version"})


def compose(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Build a message (RFC 5322) with a text part and, when ``html`` is given, an HTML alternative.

    The result is ``multipart/alternative`` (RFC 2046 section 5.1.4) with the text first, so
    clients prefer the HTML. Non-ASCII subjects and bodies are encoded per RFC 2047 / UTF-8.
    ``headers`` adds headers such as ``Auto-Submitted``; it cannot replace the ones set here.
    Header values with line breaks raise ``ValueError`` (no header injection).
    """
    message = EmailMessage(policy=email.policy.default)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # An explicit domain: make_msgid() would otherwise look up the FQDN, which can block on DNS.
    message["Message-ID"] = make_msgid(domain=_domain_of(sender))
    for name, value in (headers or {}).items():
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by compose() and cannot be overridden")
        message[name] = value
    # quoted-printable keeps the message 7-bit clean, so no relay needs 8BITMIME (RFC 6152).
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def _domain_of(address: str) -> str:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2]
    return domain if "@" in addr and domain else "localhost"


class Mailer(Protocol):
    """Hands one message over for delivery; raises :class:`DeliveryError` when it cannot."""

    async def send(self, message: EmailMessage) -> None: ...


class FileMailer:
    """Writes each message to ``directory`` as one RFC 5322 ``.eml`` file.

    Line ends are LF, as Maildir stores mail on POSIX systems, so that
    ``email.message_from_bytes(data, policy=email.policy.default)`` gives back the text as composed.

    Names sort by time (``20250131T101500.123456789Z-<random>.eml``); each file is written under
    a dot-prefixed temporary name and renamed, so a reader never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        data = message.as_bytes(policy=email.policy.default)
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            raise DeliveryError(f"cannot write to the mail outbox {self.directory}: {exc.strerror}") from exc

    def _write(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}.{nanos:09d}Z-{secrets.token_hex(6)}{_OUTBOX_SUFFIX}"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def read_outbox(directory: Path) -> list[EmailMessage]:
    """The messages a :class:`FileMailer` wrote to ``directory``, oldest first (none if it is missing)."""
    if not directory.is_dir():
        return []
    paths = sorted(
        p for p in directory.iterdir() if p.suffix == _OUTBOX_SUFFIX and not p.name.startswith(".")
    )
    messages = []
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # guaranteed by policy.default's message_factory
        messages.append(message)
    return messages


@dataclass(slots=True, frozen=True)
class SmtpTarget:
    """Where and how :class:`SmtpMailer` connects, parsed from an ``smtp://`` or ``smtps://`` URL."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: upgrade when the server offers STARTTLS
    timeout: float

    def __repr__(self) -> str:
        return (
            f"SmtpTarget(hostname={self.hostname!r}, port={self.port}, username={self.username!r}, "
            f"password={'***' if self.password else None}, use_tls={self.use_tls}, "
            f"start_tls={self.start_tls}, timeout={self.timeout})"
        )


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``smtp://`` / ``smtps://`` URLs (module docstring); errors never repeat the password."""
    parts = urlsplit(url)
    shown = _redact(url, parts.password)
    if parts.scheme not in ("smtp", "smtps"):
        raise SettingsError(_SETTING, f"expected smtp://… or smtps://…, got {shown!r}")
    try:
        port_in_url = parts.port
    except ValueError:
        raise SettingsError(_SETTING, f"invalid port in {shown!r}") from None
    if not parts.hostname:
        raise SettingsError(_SETTING, f"no host in {shown!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise SettingsError(_SETTING, f"unexpected path or fragment in {shown!r}")
    use_tls = parts.scheme == "smtps"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    start_tls: bool | None = None
    timeout = 10.0
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "starttls" and not use_tls and value.lower() in _BOOLEANS:
            start_tls = _BOOLEANS[value.lower()]
        elif key == "timeout" and _is_positive_number(value):
            timeout = float(value)
        else:
            raise SettingsError(_SETTING, f"unsupported query parameter {key}={value!r} in {shown!r}")
    if start_tls is None and username is not None and not use_tls:
        start_tls = True  # never send credentials in clear unless starttls=false says so
    port = port_in_url or (465 if use_tls else 587 if start_tls else 25)
    return SmtpTarget(parts.hostname, port, username, password, use_tls, start_tls, timeout)


def _is_positive_number(value: str) -> bool:
    try:
        return 0 < float(value) < float("inf")
    except ValueError:
        return False


def _redact(text: str, password: str | None) -> str:
    if not password:
        return text
    for form in {password, unquote(password)}:
        text = text.replace(form, "***")
    return text


class SmtpMailer:
    """Sends through an SMTP server (RFC 5321) with aiosmtplib, one connection per message."""

    def __init__(self, url: str) -> None:
        self.target = parse_smtp_url(url)

    async def send(self, message: EmailMessage) -> None:
        t = self.target
        try:
            await aiosmtplib.send(
                message,
                hostname=t.hostname,
                port=t.port,
                username=t.username,
                password=t.password,
                use_tls=t.use_tls,
                start_tls=t.start_tls,
                timeout=t.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            detail = _redact(f"{type(exc).__name__}: {exc}", t.password)
            # ``from None``: the cause's traceback is left out of logs; its text is in the message.
            raise DeliveryError(f"SMTP delivery via {t.hostname}:{t.port} failed: {detail}") from None


def build_mailer(backend: str, *, base_dir: Path | None = None) -> Mailer:
    """The mailer for an ``IDP_EMAIL_BACKEND`` value (module docstring).

    A relative ``file:DIR`` resolves against ``base_dir`` when given, else the working directory.
    """
    if backend.startswith("file:"):
        raw = backend.removeprefix("file:")
        if not raw:
            raise SettingsError(_SETTING, "file: needs a directory, e.g. file:var/outbox/mail")
        directory = Path(raw)
        if base_dir is not None and not directory.is_absolute():
            directory = base_dir / directory
        return FileMailer(directory)
    if backend.startswith(("smtp://", "smtps://")):
        return SmtpMailer(backend)
    raise SettingsError(_SETTING, f"expected smtp://…, smtps://… or file:DIR, got {_redact_url(backend)!r}")


def _redact_url(value: str) -> str:
    try:
        return _redact(value, urlsplit(value).password)
    except ValueError:
        return "<unparsable>"
