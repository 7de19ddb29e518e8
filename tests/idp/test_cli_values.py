"""The CLI refuses what the domain refuses (idp.value_rules), naming the option that gave it; with
``--json`` the error object names it too. Exit code 2, nothing written."""

from __future__ import annotations

import pytest

from tests.idp.test_cli import Cli, _tenant, cli
from tests.support.hostile import CONTROL_TEXT

__all__ = ["cli"]

UUID = "12345678-1234-1234-1234-123456789abc"


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (("--slug", UUID, "--name", "X"), "--slug", "--slug must not have the form of a tenant id (a UUID)"),
        (
            ("--slug", "Acme Inc", "--name", "X"),
            "--slug",
            "--slug must be lowercase letters, digits and dashes",
        ),
        (
            ("--slug", "acme", "--name", CONTROL_TEXT["newline"]),
            "--name",
            "--name must be one line of text without control characters, found '\\n'",
        ),
        (
            ("--slug", "acme", "--name", "Acme", "--branding", '{"name": "Acme\\u202e"}'),
            "--branding",
            "--branding: name must be one line of text without control characters, found '\\u202e'",
        ),
        (
            ("--slug", "acme", "--name", "Acme", "--branding", '{"logo_url": "//evil.example/x"}'),
            "--branding",
            "--branding: logo_url must be an https:// URL with a host, or a path on this server",
        ),
    ],
)
def test_tenant_create_refuses(cli: Cli, args: tuple[str, ...], option: str, message: str) -> None:
    error = cli("tenant", "create", *args, "--json", code=2).json()
    assert error["ok"] is False and error["error"] == "invalid_argument"
    assert error["option"] == option and error["message"].startswith(message), error
    human = cli("tenant", "create", *args, code=2)
    assert human.stderr.startswith(f"idp: {message}") and human.stdout == ""
    assert cli("tenant", "list", "--json").json() == []


@pytest.mark.parametrize(
    ("args", "option", "message"),
    [
        (("--name", CONTROL_TEXT["tab"]), "--name", "--name must be one line of text"),
        (("--name", "   "), "--name", "--name must be 1-200 characters"),
        (
            ("--name", "App", "--redirect-uri", "https://rp.example/cb\r\nX: y"),
            "--redirect-uri",
            "--redirect-uri must not contain spaces or control characters",
        ),
        (
            (
                "--name",
                "App",
                "--redirect-uri",
                "https://rp.example/cb",
                "--redirect-uri",
                "https://rp.example/a b",
            ),
            "--redirect-uri",
            "--redirect-uri must not contain spaces or control characters",
        ),
        (
            ("--name", "App", "--redirect-uri", "http://rp.example/cb"),
            "--redirect-uri",
            "--redirect-uri over plain http is allowed only for loopback: 'http://rp.example/cb'",
        ),
        (
            (
                "--name",
                "App",
                "--redirect-uri",
                "https://rp.example/cb",
                "--post-logout-redirect-uri",
                "https://rp.example/\tbye",
            ),
            "--post-logout-redirect-uri",
            "--post-logout-redirect-uri must not contain spaces or control characters",
        ),
    ],
)
def test_client_create_refuses(cli: Cli, args: tuple[str, ...], option: str, message: str) -> None:
    _tenant(cli)
    error = cli("client", "create", "--tenant", "acme", *args, "--json", code=2).json()
    assert error["option"] == option and error["message"].startswith(message), error
    human = cli("client", "create", "--tenant", "acme", *args, code=2)
    assert human.stderr.startswith(f"idp: {message}")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("--username", CONTROL_TEXT["CRLF"]), "--username"),
        (("--given-name", CONTROL_TEXT["bidi override"]), "--given-name"),
        (("--family-name", CONTROL_TEXT["escape"]), "--family-name"),
        (("--email", "ana\u202e@example.com"), "--email"),
    ],
)
def test_user_create_refuses(cli: Cli, args: tuple[str, ...], option: str) -> None:
    _tenant(cli)
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [part for pair in {"--email": "ana@example.com", **given}.items() for part in pair]
    error = cli("user", "create", "--tenant", "acme", *flat, "--json", code=2).json()
    assert error["option"] == option, error
    assert error["message"].startswith(f"{option} must be one line of text without control characters")
    assert cli("user", "show", "--tenant", "acme", "--email", "ana@example.com", code=2).stderr.startswith(
        "idp: no eID"
    )


def test_scim_token_name_and_suspension_reason(cli: Cli) -> None:
    _tenant(cli)
    error = cli(
        "scim-token", "create", "--tenant", "acme", "--name", CONTROL_TEXT["DEL"], "--json", code=2
    ).json()
    assert error["option"] == "--name" and "found '\\x7f'" in error["message"]
    cli("user", "create", "--tenant", "acme", "--email", "ana@example.com")
    error = cli(
        "user",
        "suspend",
        "--tenant",
        "acme",
        "--email",
        "ana@example.com",
        "--reason",
        "a\nb",
        "--json",
        code=2,
    ).json()
    assert error["option"] == "--reason"
    assert (
        cli("user", "show", "--tenant", "acme", "--email", "ana@example.com", "--json").json()["status"]
        == "active"
    )


def test_international_text_passes(cli: Cli) -> None:
    tenant = cli("tenant", "create", "--slug", "kovac", "--name", "Kovač d.o.o. 山田 😀", "--json").json()
    assert tenant["name"] == "Kovač d.o.o. 山田 😀"
    person = cli(
        "user",
        "create",
        "--tenant",
        "kovac",
        "--email",
        "sime@example.com",
        "--username",
        "Šime",
        "--given-name",
        "Šime",
        "--family-name",
        "Đorđević",
        "--json",
    ).json()
    assert person["username"] == "Šime" and person["attributes"]["family_name"]["value"] == "Đorđević"
    app = cli(
        "client",
        "create",
        "--tenant",
        "kovac",
        "--name",
        "Podpis 日本",
        "--redirect-uri",
        "https://rp.example/cb",
        "--json",
    ).json()
    assert app["name"] == "Podpis 日本"
