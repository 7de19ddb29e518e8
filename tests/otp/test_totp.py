from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from idp.errors import LoginError
from otp.totp import OTPError, code_at, manual_entry_key, new_secret, provisioning_uri, verify

SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}

# RFC 6238 Appendix B, all 18 rows: (time, algorithm, 8-digit TOTP).
RFC6238_VECTORS = [
    (59, "SHA1", "94287082"),
    (59, "SHA256", "46119246"),
    (59, "SHA512", "90693936"),
    (1111111109, "SHA1", "07081804"),
    (1111111109, "SHA256", "68084774"),
    (1111111109, "SHA512", "25091201"),
    (1111111111, "SHA1", "14050471"),
    (1111111111, "SHA256", "67062674"),
    (1111111111, "SHA512", "99943326"),
    (1234567890, "SHA1", "89005924"),
    (1234567890, "SHA256", "91819424"),
    (1234567890, "SHA512", "93441116"),
    (2000000000, "SHA1", "69279037"),
    (2000000000, "SHA256", "90698825"),
    (2000000000, "SHA512", "38618901"),
    (20000000000, "SHA1", "65353130"),
    (20000000000, "SHA256", "77737706"),
    (20000000000, "SHA512", "47863826"),
]

SECRET = base64.b32encode(SEEDS["SHA1"]).decode()
NOW = 1_700_000_000.0
STEP = int(NOW) // 30


def _code(step: int) -> str:
    return code_at(secret=SECRET, for_time=step * 30)


@pytest.mark.parametrize(("for_time", "algorithm", "expected"), RFC6238_VECTORS)
def test_rfc6238_appendix_b(for_time: int, algorithm: str, expected: str) -> None:
    secret = base64.b32encode(SEEDS[algorithm]).decode()
    assert code_at(secret=secret, for_time=for_time, digits=8, algorithm=algorithm) == expected


def test_vectors_cover_the_whole_table() -> None:
    assert len(RFC6238_VECTORS) == 18
    assert [len(seed) for seed in SEEDS.values()] == [20, 32, 64]


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_window_of_one_step_accepted(offset: int) -> None:
    assert verify(secret=SECRET, code=_code(STEP + offset), now=NOW, last_used_step=None) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_away_refused(offset: int) -> None:
    code = _code(STEP + offset)
    assert code not in {_code(STEP + i) for i in (-1, 0, 1)}  # else the test could not fail
    with pytest.raises(OTPError) as info:
        verify(secret=SECRET, code=code, now=NOW, last_used_step=None)
    assert info.value.code == "invalid"


def test_window_two_accepts_two_steps_away() -> None:
    assert verify(secret=SECRET, code=_code(STEP + 2), now=NOW, last_used_step=None, window=2) == STEP + 2


def test_window_zero_accepts_only_current_step() -> None:
    assert verify(secret=SECRET, code=_code(STEP), now=NOW, last_used_step=None, window=0) == STEP
    with pytest.raises(OTPError) as info:
        verify(secret=SECRET, code=_code(STEP - 1), now=NOW, last_used_step=None, window=0)
    assert info.value.code == "invalid"


def test_negative_window_rejected() -> None:
    with pytest.raises(ValueError, match="window"):
        verify(secret=SECRET, code=_code(STEP), now=NOW, last_used_step=None, window=-1)


def test_wrong_secret_invalid() -> None:
    other = new_secret()
    with pytest.raises(OTPError) as info:
        verify(secret=other, code=_code(STEP), now=NOW, last_used_step=None, window=0)
    # 1-in-10^6 flake only if the random secret collides on this step
    assert info.value.code == "invalid"


def test_same_step_replay_refused() -> None:
    code = _code(STEP)
    used = verify(secret=SECRET, code=code, now=NOW, last_used_step=None)
    assert used == STEP
    with pytest.raises(OTPError) as info:
        verify(secret=SECRET, code=code, now=NOW + 5, last_used_step=used)
    assert info.value.code == "replayed"


def test_older_step_refused_after_newer_used() -> None:
    used = verify(secret=SECRET, code=_code(STEP + 1), now=NOW, last_used_step=None)
    with pytest.raises(OTPError) as info:
        verify(secret=SECRET, code=_code(STEP - 1), now=NOW, last_used_step=used)
    assert info.value.code == "replayed"


def test_next_step_accepted_after_previous_used() -> None:
    used = verify(secret=SECRET, code=_code(STEP), now=NOW, last_used_step=None)
    assert verify(secret=SECRET, code=_code(STEP + 1), now=NOW + 30, last_used_step=used) == STEP + 1


@pytest.mark.parametrize("code", ["12345", "abcdef", "12a456", "", "   ", "1234567", "١٢٣٤٥٦", "-12345"])
def test_malformed(code: str) -> None:
    with pytest.raises(OTPError) as info:
        verify(secret=SECRET, code=code, now=NOW, last_used_step=None)
    assert info.value.code == "malformed"
    assert isinstance(info.value, LoginError)


@pytest.mark.parametrize(
    "template", ["{} {}", " {}{} ", "{}\t{}", "{}-{}", "{}.{}", "{}\u2013{}", " {} - {} "]
)
def test_spaces_and_separators_between_digits_ignored(template: str) -> None:
    code = _code(STEP)
    spaced = template.format(code[:3], code[3:])
    assert verify(secret=SECRET, code=spaced, now=NOW, last_used_step=None) == STEP


def test_new_secret_is_160_bits_and_fresh() -> None:
    secret = new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert new_secret() != secret


def test_manual_entry_key_groups_of_four() -> None:
    key = manual_entry_key(secret=SECRET)
    assert key == "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
    assert all(len(group) == 4 for group in key.split(" "))
    assert verify(secret=key.lower(), code=_code(STEP), now=NOW, last_used_step=None) == STEP


def test_invalid_secret_rejected() -> None:
    with pytest.raises(ValueError, match="base32"):
        code_at(secret="not base32 1!", for_time=NOW)


def test_provisioning_uri_parses() -> None:
    secret = new_secret()
    uri = provisioning_uri(secret=secret, account_name="alice@example.org", issuer_name="Example IdP")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    issuer, account = unquote(parts.path.removeprefix("/")).split(":")
    assert (issuer, account) == ("Example IdP", "alice@example.org")
    assert "+" not in uri
    assert parse_qs(parts.query, strict_parsing=True) == {
        "secret": [secret],
        "issuer": ["Example IdP"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


@pytest.mark.parametrize(("account", "issuer"), [("a:b", "Example"), ("alice", "Ex:ample"), ("", "Example")])
def test_provisioning_uri_refuses_colons_and_empty(account: str, issuer: str) -> None:
    with pytest.raises(ValueError, match="name"):
        provisioning_uri(secret=SECRET, account_name=account, issuer_name=issuer)
