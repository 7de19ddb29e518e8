"""Settings from IDP_ variables: defaults, files, and a named error for every wrong value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from idp.errors import SettingsError
from idp.settings import Settings, ensure_secret_key, load_settings

GOOD_SECRET = "s" * 40
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
VERIFY_SID = "VA" + "fedcba9876543210" * 2


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.issuer == "http://127.0.0.1:8000"
    assert s.database_url == "sqlite+aiosqlite:///var/idp.db"
    assert s.is_sqlite
    assert s.redis_url is None
    assert s.secret_key == ""
    assert s.email_backend.startswith("file:") and s.sms_backend.startswith("file:")
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.var_dir == Path("var")
    assert s.languages == ("sl", "en", "hr", "sr-Latn")
    assert s.trust_proxy_headers is False
    assert s.secure_cookies


def test_values_from_the_environment() -> None:
    s = load_settings(
        env={
            "IDP_ISSUER": "https://id.example.com",
            "IDP_DATABASE_URL": "postgresql+asyncpg://idp@db/idp",
            "IDP_REDIS_URL": "redis://cache:6379/1",
            "IDP_SECRET_KEY": GOOD_SECRET,
            "IDP_EMAIL_BACKEND": "smtp://mail:25",
            "IDP_SMS_BACKEND": "twilio",
            "IDP_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "IDP_TWILIO_AUTH_TOKEN": "token",
            "IDP_TWILIO_FROM": "+38640000000",
            "IDP_PORT": "9000",
            "IDP_VAR_DIR": "/srv/idp",
            "IDP_LANGUAGES": "en, sl, sr_latn, HR",
            "IDP_TRUST_PROXY_HEADERS": "yes",
        }
    )
    assert s.issuer == "https://id.example.com"
    assert not s.is_sqlite
    assert s.redis_url == "redis://cache:6379/1"
    assert s.secret_key == GOOD_SECRET
    assert s.twilio_account_sid == ACCOUNT_SID and s.twilio_from == "+38640000000"
    assert s.port == 9000
    assert s.var_dir == Path("/srv/idp")
    assert s.languages == ("en", "sl", "sr-Latn", "hr")  # BCP 47 spelling, whatever was given
    assert s.trust_proxy_headers is True


TWILIO = {
    "IDP_SMS_BACKEND": "twilio",
    "IDP_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "IDP_TWILIO_AUTH_TOKEN": "token",
    "IDP_TWILIO_FROM": "+38640000000",
}


def test_twilio_settings(tmp_path: Path) -> None:
    token_file = tmp_path / "twilio-token"
    token_file.write_text("from-a-file\n", encoding="utf-8")
    env = {k: v for k, v in TWILIO.items() if k != "IDP_TWILIO_AUTH_TOKEN"}
    s = load_settings(env={**env, "IDP_TWILIO_AUTH_TOKEN_FILE": str(token_file), "IDP_TWILIO_TIMEOUT": "5"})
    assert (s.sms_backend, s.twilio_auth_token, s.twilio_timeout) == ("twilio", "from-a-file", 5)
    # Verify alone needs no sending number; a Messaging Service or an alphanumeric sender also do
    verify_only = {k: v for k, v in TWILIO.items() if k != "IDP_TWILIO_FROM"}
    assert load_settings(env={**verify_only, "IDP_TWILIO_VERIFY_SID": VERIFY_SID}).twilio_from is None
    for sender in ("MG" + "0" * 32, "eID Acme", "+38640123456"):
        assert load_settings(env={**TWILIO, "IDP_TWILIO_FROM": sender}).twilio_from == sender
    limits = load_settings(env={"IDP_SMS_LIMIT_PER_NUMBER": "3", "IDP_SMS_LIMIT_PER_TENANT": "50"})
    assert (limits.sms_limit_per_number, limits.sms_limit_per_ip, limits.sms_limit_per_tenant) == (3, 20, 50)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IDP_ISSUER": "ftp://id.example.com"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "id.example.com"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "http://id.example.com"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://id.example.com/"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://id.example.com?tenant=a"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://id.example.com#x"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://:8443"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https:id.example.com"}, "IDP_ISSUER"),
        ({"IDP_ISSUER": "https://user@"}, "IDP_ISSUER"),
        ({"IDP_DATABASE_URL": "mysql://idp@db/idp"}, "IDP_DATABASE_URL"),
        ({"IDP_DATABASE_URL": "var/idp.db"}, "IDP_DATABASE_URL"),
        ({"IDP_REDIS_URL": "http://cache:6379"}, "IDP_REDIS_URL"),
        ({"IDP_EMAIL_BACKEND": "sendmail"}, "IDP_EMAIL_BACKEND"),
        ({"IDP_EMAIL_BACKEND": "http://mail"}, "IDP_EMAIL_BACKEND"),
        ({"IDP_SMS_BACKEND": "nexmo"}, "IDP_SMS_BACKEND"),
        ({"IDP_SMS_BACKEND": "twilio", "IDP_TWILIO_AUTH_TOKEN": "t"}, "IDP_TWILIO_ACCOUNT_SID"),
        ({"IDP_SMS_BACKEND": "twilio", "IDP_TWILIO_ACCOUNT_SID": "AC1"}, "IDP_TWILIO_AUTH_TOKEN"),
        ({"IDP_PORT": "eighty"}, "IDP_PORT"),
        ({"IDP_PORT": "80.5"}, "IDP_PORT"),
        ({"IDP_PORT": "0"}, "IDP_PORT"),
        ({"IDP_PORT": "65536"}, "IDP_PORT"),
        ({"IDP_SESSION_TTL": "-1"}, "IDP_SESSION_TTL"),
        ({"IDP_ACCESS_TOKEN_TTL": "1h"}, "IDP_ACCESS_TOKEN_TTL"),
        ({"IDP_AUTHORIZATION_CODE_TTL": "0"}, "IDP_AUTHORIZATION_CODE_TTL"),
        ({"IDP_AUTHORIZATION_CODE_TTL": "3600"}, "IDP_AUTHORIZATION_CODE_TTL"),
        ({"IDP_SECRET_KEY": "short"}, "IDP_SECRET_KEY"),
        ({"IDP_SECRET_KEY": "x" * 31}, "IDP_SECRET_KEY"),
        ({"IDP_SQLITE_SYNCHRONOUS": "OFF"}, "IDP_SQLITE_SYNCHRONOUS"),
        ({"IDP_TRUST_PROXY_HEADERS": "maybe"}, "IDP_TRUST_PROXY_HEADERS"),
        ({"IDP_LANGUAGES": " , "}, "IDP_LANGUAGES"),
        ({"IDP_LANGUAGES": "sl,en,sl"}, "IDP_LANGUAGES"),
        ({"IDP_LANGUAGES": "sl,sr_Latn,sr-latn"}, "IDP_LANGUAGES"),
        ({"IDP_LANGUAGES": "sl,../etc"}, "IDP_LANGUAGES"),
        ({"IDP_LANGUAGES": "sl,sr-Latn-RS-x-private"}, "IDP_LANGUAGES"),
        ({"IDP_SECRET_KEY_FILE": "/nonexistent/idp/secret"}, "IDP_SECRET_KEY_FILE"),
        ({"IDP_DATABASE_URL_FILE": "/nonexistent/idp/db-url"}, "IDP_DATABASE_URL_FILE"),
        ({"IDP_TWILIO_AUTH_TOKEN_FILE": "/nonexistent/idp/twilio"}, "IDP_TWILIO_AUTH_TOKEN_FILE"),
        ({"IDP_SMS_BACKEND": "file:"}, "IDP_SMS_BACKEND"),
        ({**TWILIO, "IDP_TWILIO_ACCOUNT_SID": "AC123"}, "IDP_TWILIO_ACCOUNT_SID"),
        ({**TWILIO, "IDP_TWILIO_FROM": "040 123 456"}, "IDP_TWILIO_FROM"),
        ({**TWILIO, "IDP_TWILIO_FROM": "TwelveLetter"}, "IDP_TWILIO_FROM"),
        ({**TWILIO, "IDP_TWILIO_FROM": ""}, "IDP_TWILIO_FROM"),
        ({**TWILIO, "IDP_TWILIO_VERIFY_SID": "VA1"}, "IDP_TWILIO_VERIFY_SID"),
        ({**TWILIO, "IDP_TWILIO_TIMEOUT": "0"}, "IDP_TWILIO_TIMEOUT"),
        ({"IDP_TWILIO_TIMEOUT": "ten"}, "IDP_TWILIO_TIMEOUT"),
        ({"IDP_SMS_LIMIT_PER_NUMBER": "0"}, "IDP_SMS_LIMIT_PER_NUMBER"),
        ({"IDP_SMS_LIMIT_PER_IP": "0"}, "IDP_SMS_LIMIT_PER_IP"),
        ({"IDP_SMS_LIMIT_PER_TENANT": "-5"}, "IDP_SMS_LIMIT_PER_TENANT"),
    ],
)
def test_wrong_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: "), str(caught.value)


def test_missing_file_error_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    with pytest.raises(SettingsError, match="IDP_SECRET_KEY_FILE") as caught:
        load_settings(env={"IDP_SECRET_KEY_FILE": str(missing)})
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8000", "http://localhost:8000", "https://id.example.com/eid"]
)
def test_acceptable_issuers(issuer: str) -> None:
    assert load_settings(env={"IDP_ISSUER": issuer}).issuer == issuer


def test_secret_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(GOOD_SECRET + "\n", encoding="utf-8")
    assert load_settings(env={"IDP_SECRET_KEY_FILE": str(path)}).secret_key == GOOD_SECRET


def test_short_secret_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("short\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"IDP_SECRET_KEY_FILE": str(path)})
    assert caught.value.variable.startswith("IDP_SECRET_KEY")


def test_variable_wins_over_its_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("f" * 40, encoding="utf-8")
    s = load_settings(env={"IDP_SECRET_KEY": GOOD_SECRET, "IDP_SECRET_KEY_FILE": str(path)})
    assert s.secret_key == GOOD_SECRET


def test_ensure_secret_key_creates_a_private_file_once(tmp_path: Path) -> None:
    settings = load_settings(env={"IDP_VAR_DIR": str(tmp_path / "var")})
    first = ensure_secret_key(settings)
    path = tmp_path / "var" / "secret_key"
    assert len(first.secret_key) >= 32
    assert path.read_text(encoding="utf-8").strip() == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = ensure_secret_key(settings)
    assert second.secret_key == first.secret_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ensure_secret_key_keeps_a_configured_key(tmp_path: Path) -> None:
    settings = load_settings(env={"IDP_VAR_DIR": str(tmp_path / "var"), "IDP_SECRET_KEY": GOOD_SECRET})
    assert ensure_secret_key(settings).secret_key == GOOD_SECRET
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize("content", ["", "\n", "too-short\n"])
def test_ensure_secret_key_refuses_a_weak_stored_key(tmp_path: Path, content: str) -> None:
    """A truncated or emptied key file must not become the instance secret (it seals the keys)."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret_key").write_text(content, encoding="utf-8")
    settings = load_settings(env={"IDP_VAR_DIR": str(tmp_path / "var")})
    with pytest.raises(SettingsError) as caught:
        ensure_secret_key(settings)
    assert "secret_key" in str(caught.value)
