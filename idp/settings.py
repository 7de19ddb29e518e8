"""Typed settings, built once at start-up from ``IDP_`` environment variables.

Every variable may instead be given as a file with ``IDP_<NAME>_FILE`` (container secrets).
A wrong value stops start-up with a :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from idp.errors import SettingsError
from idp.language_tags import language_tag

# BCP 47 tags; Serbian is offered in Latin script (its catalogue folder is Babel's ``sr_Latn``)
DEFAULT_LANGUAGES = ("sl", "en", "hr", "sr-Latn")


@dataclass(slots=True, frozen=True)
class Settings:
    issuer: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite+aiosqlite:///var/idp.db"
    redis_url: str | None = None
    # keys this deployment keeps in Redis start with this (deployments may share one Redis)
    redis_key_prefix: str = "idp:"
    sqlite_synchronous: str = "NORMAL"
    secret_key: str = ""
    email_backend: str = "file:var/outbox/mail"
    email_from: str = "eID <no-reply@localhost>"
    sms_backend: str = "file:var/outbox/sms"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_verify_sid: str | None = None
    twilio_timeout: int = 10
    sms_limit_per_number: int = 5
    sms_limit_per_ip: int = 20
    sms_limit_per_tenant: int = 1000
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
    # argon2id, OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1; changing them rehashes at login
    password_memory_kib: int = 19456
    password_time_cost: int = 2
    password_parallelism: int = 1
    invitation_ttl: int = 7 * 24 * 3600
    # failed passwords and codes: free attempts before growing delays, and the lock threshold
    login_free_failures_per_account: int = 3
    login_free_failures_per_ip: int = 20
    login_lock_after: int = 10
    # video identification: STUN/TURN servers for the page and aiortc (W3C RTCIceServer dictionaries)
    videoid_ice_servers: tuple[Mapping[str, object], ...] = ()
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
    "password_memory_kib": "IDP_PASSWORD_MEMORY_KIB",
    "password_time_cost": "IDP_PASSWORD_TIME_COST",
    "password_parallelism": "IDP_PASSWORD_PARALLELISM",
    "invitation_ttl": "IDP_INVITATION_TTL",
    "login_free_failures_per_account": "IDP_LOGIN_FREE_FAILURES_PER_ACCOUNT",
    "login_free_failures_per_ip": "IDP_LOGIN_FREE_FAILURES_PER_IP",
    "login_lock_after": "IDP_LOGIN_LOCK_AFTER",
    "twilio_timeout": "IDP_TWILIO_TIMEOUT",
    "sms_limit_per_number": "IDP_SMS_LIMIT_PER_NUMBER",
    "sms_limit_per_ip": "IDP_SMS_LIMIT_PER_IP",
    "sms_limit_per_tenant": "IDP_SMS_LIMIT_PER_TENANT",
}

_STR_FIELDS = {
    "issuer": "IDP_ISSUER",
    "database_url": "IDP_DATABASE_URL",
    "redis_url": "IDP_REDIS_URL",
    "redis_key_prefix": "IDP_REDIS_KEY_PREFIX",
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
        values["languages"] = _languages(languages)
    trust = _read(env, "IDP_TRUST_PROXY_HEADERS")
    if trust:
        if trust.lower() not in {"0", "1", "true", "false", "yes", "no"}:
            raise SettingsError("IDP_TRUST_PROXY_HEADERS", f"expected true or false, got {trust!r}")
        values["trust_proxy_headers"] = trust.lower() in {"1", "true", "yes"}
    ice = _read(env, "IDP_VIDEOID_ICE_SERVERS")
    if ice:
        values["videoid_ice_servers"] = parse_ice_servers(ice)
    values.update(overrides)
    var = values.get("var_dir")
    if isinstance(var, Path):  # the local state follows IDP_VAR_DIR unless a variable names its own
        values.setdefault("database_url", f"sqlite+aiosqlite:///{var / 'idp.db'}")
        values.setdefault("email_backend", f"file:{var / 'outbox' / 'mail'}")
        values.setdefault("sms_backend", f"file:{var / 'outbox' / 'sms'}")
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _languages(raw: str) -> tuple[str, ...]:
    """``IDP_LANGUAGES``: BCP 47 tags (``sr-Latn``) or Babel locale ids (``sr_Latn``), canonicalised."""
    try:
        tags = tuple(language_tag(item) for item in raw.split(",") if item.strip())
    except ValueError as error:
        raise SettingsError("IDP_LANGUAGES", str(error)) from None
    if not tags:
        raise SettingsError("IDP_LANGUAGES", "expected a comma-separated list such as 'sl,en,hr,sr-Latn'")
    if len(set(tags)) != len(tags):
        raise SettingsError("IDP_LANGUAGES", f"expected each language once, got {raw!r}")
    return tags


def parse_ice_servers(raw: str) -> tuple[Mapping[str, object], ...]:
    """``IDP_VIDEOID_ICE_SERVERS``: a JSON list of ``{"urls": "stun:…" | ["turn:…"], "username",
    "credential"}`` (W3C WebRTC RTCIceServer)."""
    name = "IDP_VIDEOID_ICE_SERVERS"
    try:
        data = json.loads(raw)
    except ValueError:
        raise SettingsError(name, "expected a JSON list of ICE servers") from None
    if not isinstance(data, list):
        raise SettingsError(name, "expected a JSON list of ICE servers")
    servers = []
    for entry in data:
        if not isinstance(entry, dict) or set(entry) - {"urls", "username", "credential"}:
            raise SettingsError(name, 'each ICE server is {"urls": …, "username": …, "credential": …}')
        urls = entry.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if (
            not isinstance(listed, list)
            or not listed
            or not all(
                isinstance(u, str) and u.startswith(("stun:", "stuns:", "turn:", "turns:")) for u in listed
            )
        ):
            raise SettingsError(name, f"urls must be stun:, stuns:, turn: or turns: URLs, got {urls!r}")
        if any(u.startswith("turn") for u in listed) and not (
            entry.get("username") and entry.get("credential")
        ):
            raise SettingsError(name, "a TURN server needs a username and a credential")
        servers.append(dict(entry))
    return tuple(servers)


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
    if not s.redis_key_prefix or len(s.redis_key_prefix) > 64 or not s.redis_key_prefix.isprintable():
        raise SettingsError("IDP_REDIS_KEY_PREFIX", "expected 1 to 64 printable characters, e.g. idp:")
    if not (s.email_backend.startswith("file:") or s.email_backend.startswith(("smtp://", "smtps://"))):
        raise SettingsError("IDP_EMAIL_BACKEND", f"expected smtp://… or file:DIR, got {s.email_backend!r}")
    _validate_sms(s)
    if s.secret_key and len(s.secret_key) < 32:
        raise SettingsError("IDP_SECRET_KEY", "must be at least 32 characters of random data")
    if s.login_lock_after < 1:
        raise SettingsError("IDP_LOGIN_LOCK_AFTER", "must be at least 1")
    if s.password_memory_kib < 8192:
        raise SettingsError(
            "IDP_PASSWORD_MEMORY_KIB", "argon2id needs at least 8192 KiB (OWASP's minimum is 19456)"
        )
    if s.password_time_cost < 1 or s.password_parallelism < 1:
        name = "IDP_PASSWORD_TIME_COST" if s.password_time_cost < 1 else "IDP_PASSWORD_PARALLELISM"
        raise SettingsError(name, "must be at least 1")
    if s.authorization_code_ttl == 0 or s.authorization_code_ttl > 600:
        raise SettingsError("IDP_AUTHORIZATION_CODE_TTL", "must be between 1 and 600 seconds")


# Twilio identifiers: https://www.twilio.com/docs/glossary/what-is-a-sid
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_VERIFY_SID = re.compile(r"VA[0-9a-fA-F]{32}")
_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# alphanumeric sender ID: up to 11 of A-Z a-z 0-9 and space, at least one letter
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def _validate_sms(s: Settings) -> None:
    if not (s.sms_backend == "twilio" or (s.sms_backend.startswith("file:") and len(s.sms_backend) > 5)):
        raise SettingsError("IDP_SMS_BACKEND", f"expected twilio or file:DIR, got {s.sms_backend!r}")
    for attr, name in (
        ("sms_limit_per_number", "IDP_SMS_LIMIT_PER_NUMBER"),
        ("sms_limit_per_ip", "IDP_SMS_LIMIT_PER_IP"),
        ("sms_limit_per_tenant", "IDP_SMS_LIMIT_PER_TENANT"),
    ):
        if getattr(s, attr) < 1:
            raise SettingsError(name, "must be at least 1 (SMS sends per hour)")
    if not 1 <= s.twilio_timeout <= 120:
        raise SettingsError(
            "IDP_TWILIO_TIMEOUT", f"must be between 1 and 120 seconds, got {s.twilio_timeout}"
        )
    if s.sms_backend != "twilio":
        return
    if not s.twilio_account_sid:
        raise SettingsError("IDP_TWILIO_ACCOUNT_SID", "required when IDP_SMS_BACKEND=twilio")
    if not s.twilio_auth_token:
        raise SettingsError(
            "IDP_TWILIO_AUTH_TOKEN", "required when IDP_SMS_BACKEND=twilio (or IDP_TWILIO_AUTH_TOKEN_FILE)"
        )
    if not _ACCOUNT_SID.fullmatch(s.twilio_account_sid):
        raise SettingsError("IDP_TWILIO_ACCOUNT_SID", "expected AC followed by 32 hexadecimal digits")
    if s.twilio_verify_sid is not None and not _VERIFY_SID.fullmatch(s.twilio_verify_sid):
        raise SettingsError("IDP_TWILIO_VERIFY_SID", "expected VA followed by 32 hexadecimal digits")
    if s.twilio_from is None:
        if s.twilio_verify_sid is None:
            raise SettingsError(
                "IDP_TWILIO_FROM", "required when IDP_SMS_BACKEND=twilio, unless IDP_TWILIO_VERIFY_SID is set"
            )
    elif not (
        _E164.fullmatch(s.twilio_from)
        or _MESSAGING_SERVICE_SID.fullmatch(s.twilio_from)
        or _ALPHANUMERIC_SENDER.fullmatch(s.twilio_from)
    ):
        raise SettingsError(
            "IDP_TWILIO_FROM",
            "expected an E.164 number (+38640123456), a Messaging Service SID (MG…) "
            "or an alphanumeric sender ID (at most 11 letters, digits and spaces)",
        )


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
