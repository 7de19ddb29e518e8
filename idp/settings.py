"""Typed settings, built once at start-up from ``IDP_`` environment variables.

Every variable may instead be given as a file with ``IDP_<NAME>_FILE`` (container secrets).
A wrong value stops start-up with a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from idp.errors import SettingsError

DEFAULT_LANGUAGES = ("sl", "en")


@dataclass(slots=True, frozen=True)
class Settings:
    issuer: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite+aiosqlite:///var/idp.db"
    redis_url: str | None = None
    sqlite_synchronous: str = "NORMAL"
    secret_key: str = ""
    email_backend: str = "file:var/outbox/mail"
    email_from: str = "eID <no-reply@localhost>"
    sms_backend: str = "file:var/outbox/sms"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_verify_sid: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    var_dir: Path = Path("var")
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    trust_proxy_headers: bool = False
    access_token_ttl: int = 3600
    id_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    authorization_code_ttl: int = 60
    session_ttl: int = 12 * 3600
    email_link_ttl: int = 15 * 60
    email_link_limit_per_address: int = 5
    email_link_limit_per_ip: int = 20
    client_cache_ttl: float = 30.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """``__Host-`` cookies need Secure; browsers treat http://localhost as secure too."""
        return True


_INT_FIELDS = {
    "port": "IDP_PORT",
    "access_token_ttl": "IDP_ACCESS_TOKEN_TTL",
    "id_token_ttl": "IDP_ID_TOKEN_TTL",
    "refresh_token_ttl": "IDP_REFRESH_TOKEN_TTL",
    "authorization_code_ttl": "IDP_AUTHORIZATION_CODE_TTL",
    "session_ttl": "IDP_SESSION_TTL",
    "email_link_ttl": "IDP_EMAIL_LINK_TTL",
    "email_link_limit_per_address": "IDP_EMAIL_LINK_LIMIT_PER_ADDRESS",
    "email_link_limit_per_ip": "IDP_EMAIL_LINK_LIMIT_PER_IP",
}

_STR_FIELDS = {
    "issuer": "IDP_ISSUER",
    "database_url": "IDP_DATABASE_URL",
    "redis_url": "IDP_REDIS_URL",
    "secret_key": "IDP_SECRET_KEY",
    "email_backend": "IDP_EMAIL_BACKEND",
    "email_from": "IDP_EMAIL_FROM",
    "sms_backend": "IDP_SMS_BACKEND",
    "twilio_account_sid": "IDP_TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "IDP_TWILIO_AUTH_TOKEN",
    "twilio_from": "IDP_TWILIO_FROM",
    "twilio_verify_sid": "IDP_TWILIO_VERIFY_SID",
    "host": "IDP_HOST",
    "sqlite_synchronous": "IDP_SQLITE_SYNCHRONOUS",
}


def _read(env: Mapping[str, str], name: str) -> str | None:
    if name in env:
        return env[name]
    file_name = env.get(f"{name}_FILE")
    if file_name is None:
        return None
    try:
        return Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(name + "_FILE", f"cannot read {file_name!r}: {exc.strerror}") from exc


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise SettingsError(name, f"expected a URL with scheme {' or '.join(schemes)}, got {value!r}")


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``env`` (default ``os.environ``) and explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for attr, name in _STR_FIELDS.items():
        raw = _read(env, name)
        if raw is not None and raw != "":
            values[attr] = raw
    for attr, name in _INT_FIELDS.items():
        raw = _read(env, name)
        if raw is None or raw == "":
            continue
        try:
            number = int(raw)
        except ValueError:
            raise SettingsError(name, f"expected a whole number, got {raw!r}") from None
        if number < 0 or (attr == "port" and not 0 < number < 65536):
            raise SettingsError(name, f"value out of range: {number}")
        values[attr] = number
    var_dir = _read(env, "IDP_VAR_DIR")
    if var_dir:
        values["var_dir"] = Path(var_dir)
    languages = _read(env, "IDP_LANGUAGES")
    if languages:
        langs = tuple(x.strip() for x in languages.split(",") if x.strip())
        if not langs:
            raise SettingsError("IDP_LANGUAGES", "expected a comma-separated list such as 'sl,en'")
        values["languages"] = langs
    trust = _read(env, "IDP_TRUST_PROXY_HEADERS")
    if trust:
        if trust.lower() not in {"0", "1", "true", "false", "yes", "no"}:
            raise SettingsError("IDP_TRUST_PROXY_HEADERS", f"expected true or false, got {trust!r}")
        values["trust_proxy_headers"] = trust.lower() in {"1", "true", "yes"}
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    _check_url("IDP_ISSUER", s.issuer, ("http", "https"))
    parts = urlsplit(s.issuer)
    if not parts.hostname:
        raise SettingsError("IDP_ISSUER", f"expected an absolute URL with a host, got {s.issuer!r}")
    if parts.query or parts.fragment or s.issuer.endswith("/"):
        raise SettingsError("IDP_ISSUER", "the issuer must have no query, fragment or trailing slash")
    if parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise SettingsError("IDP_ISSUER", "plain http is allowed only for localhost; use https")
    _check_url(
        "IDP_DATABASE_URL",
        s.database_url,
        ("sqlite+aiosqlite", "sqlite", "postgresql+asyncpg", "postgresql"),
    )
    if s.sqlite_synchronous not in ("NORMAL", "FULL", "EXTRA"):
        raise SettingsError(
            "IDP_SQLITE_SYNCHRONOUS", f"expected NORMAL, FULL or EXTRA, got {s.sqlite_synchronous!r}"
        )
    if s.redis_url is not None:
        _check_url("IDP_REDIS_URL", s.redis_url, ("redis", "rediss", "unix"))
    if not (s.email_backend.startswith("file:") or s.email_backend.startswith(("smtp://", "smtps://"))):
        raise SettingsError("IDP_EMAIL_BACKEND", f"expected smtp://… or file:DIR, got {s.email_backend!r}")
    if not (s.sms_backend == "twilio" or s.sms_backend.startswith("file:")):
        raise SettingsError("IDP_SMS_BACKEND", f"expected twilio or file:DIR, got {s.sms_backend!r}")
    if s.sms_backend == "twilio":
        for attr, name in (
            ("twilio_account_sid", "IDP_TWILIO_ACCOUNT_SID"),
            ("twilio_auth_token", "IDP_TWILIO_AUTH_TOKEN"),
        ):
            if not getattr(s, attr):
                raise SettingsError(name, "required when IDP_SMS_BACKEND=twilio")
    if s.secret_key and len(s.secret_key) < 32:
        raise SettingsError("IDP_SECRET_KEY", "must be at least 32 characters of random data")
    if s.authorization_code_ttl == 0 or s.authorization_code_ttl > 600:
        raise SettingsError("IDP_AUTHORIZATION_CODE_TTL", "must be between 1 and 600 seconds")


def ensure_secret_key(settings: Settings) -> Settings:
    """Return settings with a secret key, generating ``var/secret_key`` on first start."""
    if settings.secret_key:
        return settings
    path = settings.var_dir / "secret_key"
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 32:  # emptied or truncated: it must not become the secret that seals the keys
            raise SettingsError(
                "IDP_SECRET_KEY", f"{path} holds fewer than 32 characters; restore or remove it"
            )
    else:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race to create it: use theirs
            return ensure_secret_key(settings)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
    from dataclasses import replace

    return replace(settings, secret_key=key)
