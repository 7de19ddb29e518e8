"""Phone numbers: E.164 out, a clear reason for every number refused, masking for display."""

from __future__ import annotations

import pytest

from idp.errors import InvalidPhoneError, LoginError
from otp.phone import display_phone, mask_phone, parse_phone, region_of


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+386 41 234 567", None, "+38641234567"),
        ("+386-41-234-567", None, "+38641234567"),
        ("00386 41 234 567", "SI", "+38641234567"),
        ("041 234 567", "SI", "+38641234567"),
        ("041 234 567", "si", "+38641234567"),
        ("+385 91 234 5678", None, "+385912345678"),  # Croatia
        ("+381 64 1234567", None, "+381641234567"),  # Serbia
        ("+44 7911 123456", "SI", "+447911123456"),  # a foreign number with a default region
        ("+1 650 253 0000", None, "+16502530000"),  # US: fixed line or mobile, undecidable
        ("  +38641234567  ", None, "+38641234567"),
    ],
)
def test_parsed_to_e164(value: str, region: str | None, expected: str) -> None:
    assert parse_phone(value, default_region=region) == expected


@pytest.mark.parametrize(
    ("value", "region", "reason"),
    [
        ("", None, "required"),
        ("   ", None, "required"),
        ("041 234 567", None, "country calling code"),  # national form without a region
        ("+999 41 234 567", None, "country calling code"),
        ("hello", None, "not a phone number"),
        ("+386 41", None, "wrong length"),
        ("+386 41 234 567 890 123", None, "wrong length"),
        ("+386 1 234 56 78", None, "fixed line"),  # Ljubljana landline
        ("+386 90 123 456", None, "premium rate"),  # SMS pumping target
        ("+386 80 12 34", None, "toll free"),
        ("+44 20 7946 0958", None, "fixed line"),
        ("+" + "1" * 70, None, "at most 64"),
    ],
)
def test_refused_with_a_reason(value: str, region: str | None, reason: str) -> None:
    with pytest.raises(InvalidPhoneError) as caught:
        parse_phone(value, default_region=region)
    assert isinstance(caught.value, LoginError)
    assert caught.value.code == "invalid_phone"
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+38641234789", "+386 •• ••• 789"),
        ("+386641234789", "+386 ••• ••• 789"),
        ("+447911123456", "+44 • ••• ••• 456"),
    ],
)
def test_masked(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked
    assert e164[-3:] in masked and e164[4:-3] not in masked.replace(" ", "")


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+38641234789", "+386 41 234 789"),
        ("+385912345678", "+385 91 234 5678"),
        ("+381641234567", "+381 64 1234567"),
        ("+447911123456", "+44 7911 123456"),
        ("not a number", "not a number"),  # shown as stored, never an error on a page
        ("", ""),
    ],
)
def test_displayed_as_people_write_it(e164: str, shown: str) -> None:
    assert display_phone(e164) == shown


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("+38640123456", "SI"),
        ("+385911234567", "HR"),
        ("+381641234567", "RS"),
        ("not a number", None),
        ("", None),
    ],
)
def test_region_of_a_number(value: str, region: str | None) -> None:
    assert region_of(value) == region
