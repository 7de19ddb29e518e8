"""Serving the real app for flow tests: uvicorn over TLS in a thread, with admin helpers."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp import clients, eids, tenants
from idp.delivery.mail import read_outbox
from idp.settings import Settings, load_settings
from idp.storage.database import Tx
from idp.web.app import create_app
from idp.web.serving import http_protocol
from idp.web.state import AppState

T = TypeVar("T")

# one instance secret for every test app: a run's PostgreSQL database is shared, and signing keys
# sealed with one secret cannot be opened with another
SECRET = "test-secret-" + "x" * 40


def database_url_on(engine: str, request: Any, directory: Path, sqlite_template: Path) -> str:
    """A database for ``engine`` (a fixture's param): a copy of the migrated SQLite template in
    ``directory``, or the run's PostgreSQL database (the ``pg_database_url`` fixture)."""
    if engine == "sqlite":
        shutil.copy(sqlite_template, directory / "idp.db")
        return f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    return str(request.getfixturevalue("pg_database_url"))


def settings_factory_for(database_url: str, directory: Path, **defaults: object) -> Callable[..., Settings]:
    """Settings for a test app on ``database_url`` with its state and outboxes under ``directory``."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "secret_key": SECRET,
            "var_dir": directory / "var",
            "email_backend": f"file:{directory / 'mail'}",
            "sms_backend": f"file:{directory / 'sms'}",
            **defaults,
        }
        values.update(overrides)
        return load_settings(env={}, **values)

    return make


def make_tls(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class ServedApp:
    issuer: str
    ca: Path
    settings: Settings
    outbox: Path
    state: AppState
    loop: asyncio.AbstractEventLoop

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client that trusts the test certificate (no redirects followed by default)."""
        return httpx.Client(base_url=self.issuer, verify=self.ssl_context(), timeout=10, **kwargs)

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the server's event loop (for admin set-up through its database)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def write(self, unit: Callable[[Tx], T]) -> T:
        return self.run(self.state.db.write(unit))

    def tenant(self, slug: str | None = None, **kwargs: Any) -> tenants.Tenant:
        slug = slug or f"t{time.monotonic_ns() % 10**12}"
        return self.write(lambda tx: tenants.create(tx, slug=slug, name=slug.title(), **kwargs))

    def client_app(self, tenant: tenants.Tenant, **kwargs: Any) -> clients.NewClient:
        kwargs.setdefault("client_type", clients.ClientType.CONFIDENTIAL)
        kwargs.setdefault("name", "Relying app")
        return self.write(lambda tx: clients.create(tx, tenant_id=tenant.id, **kwargs))

    def user(self, tenant: tenants.Tenant, email: str, **attributes: str) -> eids.EID:
        return self.write(
            lambda tx: eids.create(tx, tenant_id=tenant.id, attributes={"email": email, **attributes})
        )

    def set_password(self, person: eids.EID, secret: str) -> None:
        from levels_of_assurance.authenticators import password

        new_hash = self.state.hasher.hash(secret)
        self.write(
            lambda tx: password.set_hash(
                tx, eid_id=person.id, tenant_id=person.tenant_id, new_hash=new_hash, reason="set"
            )
        )

    def mails(self) -> list[EmailMessage]:
        return read_outbox(self.outbox)

    def wait_for_mail(self, to: str, *, after: int = 0, timeout: float = 5.0) -> EmailMessage:
        """The first mail to ``to`` beyond the first ``after`` mails in the outbox."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.mails()[after:] if m["To"] == to]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {to} within {timeout} s")
            time.sleep(0.02)


@contextmanager
def serve(
    settings_factory: Callable[..., Settings],
    *,
    tls: tuple[Path, Path],
    outbox: Path,
    issuer_host: str = "127.0.0.1",
    sms_http_client: Any = None,
    **overrides: Any,
) -> Iterator[ServedApp]:
    """Serve the app over TLS on 127.0.0.1; ``issuer_host="localhost"`` where a browser needs a
    domain name (WebAuthn refuses IP addresses as relying party ids)."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto says TCP,
    # and with Nagle on, every response written in two parts waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = settings_factory(issuer=f"https://{issuer_host}:{port}", **overrides)
    app = create_app(settings, sms_http_client=sms_http_client)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ssl_certfile=str(tls[0]),
        ssl_keyfile=str(tls[1]),
        lifespan="on",
        http=http_protocol(),
    )
    server = uvicorn.Server(config)
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        loop_box["loop"] = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(sockets=[sock]))
        loop.close()

    thread = threading.Thread(target=run, name="served-app", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.01)
    try:
        yield ServedApp(
            issuer=settings.issuer,
            ca=tls[0],
            settings=settings,
            outbox=outbox,
            state=app.state.idp,
            loop=loop_box["loop"],
        )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
