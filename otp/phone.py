"""Mobile phone numbers: parsed with phonenumbers (libphonenumber) and stored in E.164.

E.164 (ITU-T Recommendation E.164) is ``+`` and at most 15 digits with the country code first;
it is the form Twilio takes and the form the ``phone_number`` claim should carry (OIDC Core §5.1).
Only numbers that may be mobile are accepted: SMS to a fixed line, a premium-rate or a shared-cost
number either fails or costs money (SMS pumping), so those are refused up front.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from idp.errors import InvalidPhoneError

MAX_INPUT = 64
_MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_MASK = "\u2022"  # •
_SHOWN_DIGITS = 3

_PARSE_PROBLEMS = {
    NumberParseException.INVALID_COUNTRY_CODE: "the country calling code is missing or unknown; "
    "start with + and the country code, e.g. +386",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}


def _parse(value: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if len(value) > MAX_INPUT:
        raise InvalidPhoneError(f"a phone number has at most {MAX_INPUT} characters, got {len(value)}")
    if not value.strip():
        raise InvalidPhoneError("a phone number is required")
    try:
        return phonenumbers.parse(value, default_region.upper() if default_region else None)
    except NumberParseException as exc:
        problem = _PARSE_PROBLEMS.get(exc.error_type, "it cannot be read as a phone number")
        raise InvalidPhoneError(f"{value.strip()!r} is not a usable phone number: {problem}") from None


def parse_phone(value: str, *, default_region: str | None = None) -> str:
    """``value`` in E.164 (``+38641234567``), or :class:`InvalidPhoneError` saying why not.

    ``default_region`` (ISO 3166-1 alpha-2, e.g. ``SI``) lets national forms such as
    ``041 234 567`` through; without it the number must start with ``+`` and a country code.
    A number must be valid for its region (libphonenumber's metadata) and of a type that may be
    mobile (mobile, or fixed-line-or-mobile where the numbering plan does not tell them apart).
    """
    number = _parse(value, default_region)
    region = phonenumbers.region_code_for_number(number) or "unknown region"
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneError(
            f"{value.strip()!r} is not a usable phone number: it has the wrong length for {region}"
        )
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(
            f"{value.strip()!r} is not a usable phone number: no such number exists in {region}"
        )
    kind = phonenumbers.number_type(number)
    if kind not in _MOBILE_TYPES:
        name = {v: k for k, v in vars(PhoneNumberType).items() if isinstance(v, int)}.get(kind, "unknown")
        raise InvalidPhoneError(
            f"{value.strip()!r} cannot receive SMS: expected a mobile number, got a "
            f"{name.lower().replace('_', ' ')} number"
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def region_of(e164: str) -> str | None:
    """The ISO 3166-1 region of a number (``SI`` for ``+386…``), None when it does not parse."""
    try:
        return phonenumbers.region_code_for_number(_parse(e164, None)) or None
    except InvalidPhoneError:
        return None


def display_phone(e164: str) -> str:
    """The number as people write it internationally (ITU-T E.123): ``+386 40 123 456``; a value
    that does not parse is shown as it is."""
    try:
        number = _parse(e164, None)
    except InvalidPhoneError:
        return e164
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def mask_phone(e164: str) -> str:
    """The number with all but the last three digits hidden: ``+386 ••• ••• 789``.

    The country code stays visible (the person recognises their number by it and the ending);
    hidden digits are grouped in threes from the right, as most plans write them.
    """
    number = _parse(e164, None)
    national = phonenumbers.national_significant_number(number)
    shown = national[-_SHOWN_DIGITS:]
    hidden = len(national) - len(shown)
    groups: list[str] = []
    while hidden > 0:
        size = min(3, hidden)
        groups.insert(0, _MASK * size)
        hidden -= size
    return " ".join([f"+{number.country_code}", *groups, shown])
