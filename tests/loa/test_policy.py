"""The level a set of factors reaches, what is missing, and how max_age/prompt=login count."""

from __future__ import annotations

import pytest

from levels_of_assurance.ladder import Level
from levels_of_assurance.policy import Factor, Method, Step, amr_of, decide, factors_from_json, level_of, own

EMAIL = Factor(Method.EMAIL_LINK, ("email",), 100.0)
PWD = Factor(Method.PASSWORD, ("pwd",), 200.0)
TOTP = Factor(Method.TOTP, ("otp",), 210.0)
SMS = Factor(Method.SMS, ("sms",), 220.0)
RECOVERY = Factor(Method.RECOVERY_CODE, ("otp",), 230.0)
PASSKEY = Factor(Method.PASSKEY, ("hwk", "user"), 300.0)


@pytest.mark.parametrize(
    ("factors", "proofed", "level"),
    [
        ([], False, None),
        ([TOTP], False, None),  # a code alone identifies nobody
        ([EMAIL], False, Level.BASIC),
        ([PWD], False, Level.BASIC),
        ([PWD, TOTP], False, Level.ADVANCED),
        ([PWD, SMS], False, Level.ADVANCED),
        ([PWD, RECOVERY], False, Level.ADVANCED),
        ([EMAIL, TOTP], False, Level.BASIC),  # an email link is no knowledge factor
        ([PASSKEY], False, Level.ADVANCED),
        ([PWD, TOTP], True, Level.QUALIFIED),
        ([PASSKEY], True, Level.QUALIFIED),
        ([EMAIL], True, Level.BASIC),
    ],
)
def test_level_of(factors: list[Factor], proofed: bool, level: Level | None) -> None:
    assert level_of(factors, identity_proofed=proofed) == level


def test_step_up_from_basic_asks_for_password_and_code_or_a_passkey() -> None:
    d = decide([EMAIL], requested=Level.ADVANCED)
    assert not d.satisfied and d.level == Level.BASIC
    assert d.missing == ((Step.PASSWORD, Step.ONE_TIME_CODE), (Step.PASSKEY,))


def test_after_the_password_only_the_code_is_missing() -> None:
    d = decide([PWD], requested=Level.ADVANCED, passkey_available=False)
    assert d.missing == ((Step.ONE_TIME_CODE,),)
    assert decide([PWD, SMS], requested=Level.ADVANCED).satisfied


def test_old_factors_do_not_count_after_max_age() -> None:
    d = decide([PWD, TOTP], requested=Level.ADVANCED, not_before=205.0, passkey_available=False)
    assert not d.satisfied
    assert d.missing == ((Step.PASSWORD,),)
    assert d.counted == (TOTP,)


def test_qualified_without_proofing_has_no_way() -> None:
    d = decide([PWD, TOTP], requested=Level.QUALIFIED)
    assert not d.satisfied and d.missing == ()
    assert decide([PWD, TOTP], requested=Level.QUALIFIED, identity_proofed=True).satisfied


def test_amr_lists_each_value_once_with_mfa_for_two_kinds() -> None:
    assert amr_of([PWD, TOTP]) == ["pwd", "otp", "mfa"]
    assert amr_of([PWD]) == ["pwd"]
    assert amr_of([PASSKEY]) == ["hwk", "user"]


def test_stored_factors_round_trip_and_garbage_proves_nothing() -> None:
    stored = [f.to_json() for f in (PWD, TOTP)]
    assert factors_from_json(stored) == [PWD, TOTP]
    assert factors_from_json([{"method": "magic", "at": 1}, {"at": 2}, "x", None]) == []
    assert factors_from_json({"method": "password"}) == []


def test_own_leaves_out_what_a_portal_vouched_for() -> None:
    portal = Factor(Method.LOGIN_TOKEN_ADVANCED, ("fed",), 400.0)
    assert level_of([portal]) == Level.ADVANCED
    assert own([portal, PWD, TOTP]) == [PWD, TOTP]
    assert level_of(own([portal])) is None
