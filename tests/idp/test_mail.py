from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from idp.delivery.mail import (
    FileMailer,
    SmtpMailer,
    build_mailer,
    compose,
    parse_smtp_url,
    read_outbox,
)
from idp.errors import DeliveryError, SettingsError

SUBJECT = "Vaša povezava za prijavo — čšž"
TEXT = "Pozdravljeni, Špela!\n\nPrijavite se tukaj: https://eid.example/login?token=abc=def\n"
HTML = "<p>Pozdravljeni, Špela! <a href='https://eid.example/login?token=abc=def'>Prijava</a></p>\n"
USER = "mailer@eid.example"
PASSWORD = "s3cr:et/p@ss%wörd"


def message(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "sender": "eID <no-reply@eid.example>",
        "to": "Špela Novak <spela@example.si>",
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
    }
    values.update(overrides)
    return compose(**values)


def test_compose_sets_date_message_id_and_alternative() -> None:
    msg = message(headers={"Auto-Submitted": "auto-generated"})
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Date"] is not None
    assert msg["Message-ID"].endswith("@eid.example>")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_compose_text_only_is_single_part() -> None:
    msg = message(html=None)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content() == TEXT


def test_compose_refuses_header_injection_and_overrides() -> None:
    with pytest.raises(ValueError):
        message(subject="Hello\r\nBcc: attacker@example.com")
    with pytest.raises(ValueError, match="Subject"):
        message(headers={"Subject": "other"})


def test_compose_is_seven_bit_clean() -> None:
    message(text="čšž " * 50).as_bytes().decode("ascii")


async def test_file_mailer_round_trip(tmp_path: Path) -> None:
    outbox = tmp_path / "does" / "not" / "exist"
    mailer = FileMailer(outbox)
    await mailer.send(message())
    await mailer.send(message(subject="second", html=None))

    files = sorted(outbox.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert files[0].stat().st_mode & 0o077 == 0
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"].addresses[0].display_name == "Špela Novak"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and plain.get_content() == TEXT
    assert html is not None and html.get_content() == HTML

    first, second = read_outbox(outbox)
    assert first["Message-ID"] == parsed["Message-ID"]
    assert second["Subject"] == "second"


async def test_read_outbox_ignores_temporary_files_and_missing_directory(tmp_path: Path) -> None:
    assert read_outbox(tmp_path / "missing") == []
    await FileMailer(tmp_path).send(message())
    (tmp_path / ".half-written.eml.tmp").write_bytes(b"Subject: trunc")
    assert len(read_outbox(tmp_path)) == 1


async def test_file_mailer_unwritable_directory_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DeliveryError, match="outbox"):
        await FileMailer(blocker / "sub").send(message())


def test_build_mailer(tmp_path: Path) -> None:
    file_mailer = build_mailer("file:var/outbox/mail", base_dir=tmp_path)
    assert isinstance(file_mailer, FileMailer)
    assert file_mailer.directory == tmp_path / "var/outbox/mail"
    absolute = build_mailer(f"file:{tmp_path}/x", base_dir=Path("elsewhere"))
    assert isinstance(absolute, FileMailer) and absolute.directory == tmp_path / "x"
    relative = build_mailer("file:out")
    assert isinstance(relative, FileMailer) and relative.directory == Path("out")
    assert isinstance(build_mailer("smtp://mail.example", base_dir=tmp_path), SmtpMailer)
    assert isinstance(build_mailer("smtps://mail.example", base_dir=tmp_path), SmtpMailer)
    for bad in ("file:", "sendmail", "http://u:hunter2@mail.example"):
        with pytest.raises(SettingsError) as info:
            build_mailer(bad, base_dir=tmp_path)
        assert info.value.variable == "IDP_EMAIL_BACKEND"
        assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", ("mail.example", 25, None, None, False, None, 10.0)),
        (
            "smtp://mail.example:2525?starttls=false&timeout=2.5",
            ("mail.example", 2525, None, None, False, False, 2.5),
        ),
        ("smtp://mail.example?starttls=true", ("mail.example", 587, None, None, False, True, 10.0)),
        ("smtp://u%40x:p%2Fw%3A@mail.example", ("mail.example", 587, "u@x", "p/w:", False, True, 10.0)),
        ("smtp://u:p@mail.example:25?starttls=false", ("mail.example", 25, "u", "p", False, False, 10.0)),
        ("smtps://u:p@mail.example", ("mail.example", 465, "u", "p", True, None, 10.0)),
    ],
)
def test_parse_smtp_url(url: str, expected: tuple[object, ...]) -> None:
    t = parse_smtp_url(url)
    assert (t.hostname, t.port, t.username, t.password, t.use_tls, t.start_tls, t.timeout) == expected


@pytest.mark.parametrize(
    "url",
    [
        "smtp://",
        "smtp://u:hunter2@mail.example:99999",
        "smtp://u:hunter2@mail.example?starttls=maybe",
        "smtp://u:hunter2@mail.example?timeout=-1",
        "smtp://u:hunter2@mail.example?tls=1",
        "smtps://u:hunter2@mail.example?starttls=true",
        "smtp://u:hunter2@mail.example/path",
    ],
)
def test_parse_smtp_url_rejects(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_smtp_url(url)
    assert info.value.variable == "IDP_EMAIL_BACKEND"
    assert "hunter2" not in str(info.value)


def test_smtp_target_repr_hides_password() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtp://u:hunter2@mail.example"))


@dataclass
class Capture:
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    port: int
    capture: Capture


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    capture = Capture()
    port = free_port()
    controller = Controller(
        capture,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(port, capture)
    finally:
        controller.stop()


def smtp_url(port: int, *, password: str = PASSWORD, query: str = "starttls=false&timeout=5") -> str:
    return f"smtp://{quote(USER, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}?{query}"


def assert_no_secret(error: BaseException, password: str) -> None:
    text = f"{error}\n{error!r}\n{error.__cause__!r}\n{error.__context__!r}"
    assert password not in text
    assert quote(password, safe="") not in text


async def test_smtp_mailer_delivers_without_auth(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp_server.port}?starttls=false&timeout=5")
    await mailer.send(message())

    [(mail_from, rcpt_tos, content)] = smtp_server.capture.envelopes
    assert mail_from == "no-reply@eid.example"
    assert rcpt_tos == ["spela@example.si"]
    received = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Subject"] == SUBJECT
    plain = received.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == TEXT


async def test_smtp_mailer_authenticates_with_percent_decoded_credentials(smtp_server: SmtpServer) -> None:
    await SmtpMailer(smtp_url(smtp_server.port)).send(message())
    assert len(smtp_server.capture.envelopes) == 1


async def test_smtp_auth_refused_does_not_leak_password(smtp_server: SmtpServer) -> None:
    wrong = "wr0ng:p@ss/wörd"
    with pytest.raises(DeliveryError) as info:
        await SmtpMailer(smtp_url(smtp_server.port, password=wrong)).send(message())
    assert "SMTPAuthenticationError" in str(info.value)
    assert_no_secret(info.value, wrong)
    assert smtp_server.capture.envelopes == []


async def test_smtp_closed_port_does_not_leak_password() -> None:
    port = free_port()
    with pytest.raises(DeliveryError) as info:
        await SmtpMailer(smtp_url(port)).send(message())
    assert f"127.0.0.1:{port} failed: SMTPConnectError" in str(info.value)
    assert_no_secret(info.value, PASSWORD)


async def test_smtp_credentials_require_starttls_by_default(smtp_server: SmtpServer) -> None:
    # The test server offers no STARTTLS: the mailer must refuse to send the password in clear.
    with pytest.raises(DeliveryError) as info:
        await SmtpMailer(smtp_url(smtp_server.port, query="timeout=5")).send(message())
    assert_no_secret(info.value, PASSWORD)
    assert smtp_server.capture.envelopes == []
