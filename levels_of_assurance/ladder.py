"""The ladder of levels of assurance and its two acr spellings.

Level names follow the product (basic, advanced, qualified); each has the project's URN and the
eIDAS URI (Commission Implementing Regulation (EU) 2015/1502: low, substantial, high). Both are
accepted wherever a relying party asks for a level; the answer uses the spelling it asked with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Level(IntEnum):
    BASIC = 1
    ADVANCED = 2
    QUALIFIED = 3


URN = {
    Level.BASIC: "urn:eid:loa:basic",
    Level.ADVANCED: "urn:eid:loa:advanced",
    Level.QUALIFIED: "urn:eid:loa:qualified",
}
EIDAS = {
    Level.BASIC: "http://eidas.europa.eu/LoA/low",
    Level.ADVANCED: "http://eidas.europa.eu/LoA/substantial",
    Level.QUALIFIED: "http://eidas.europa.eu/LoA/high",
}
_BY_VALUE = {**{v: k for k, v in URN.items()}, **{v: k for k, v in EIDAS.items()}}


class AMR(StrEnum):
    """Authentication method references, RFC 8176 §2."""

    PWD = "pwd"
    OTP = "otp"
    SMS = "sms"
    HWK = "hwk"
    SWK = "swk"
    SC = "sc"
    FACE = "face"
    MFA = "mfa"
    USER = "user"  # a test of user presence (e.g. touching a security key)
    PIN = "pin"
    # not in RFC 8176's registry: proof of control of an email address by a one-time link
    EMAIL = "email"
    # not in RFC 8176's registry (§2 allows values the parties agree on): a federated
    # authentication, here an enterprise portal's SSO login token; the value Microsoft Entra ID
    # uses for the same thing
    FED = "fed"


@dataclass(slots=True, frozen=True)
class RequestedLevel:
    """A level asked for, remembering the spelling (acr value) it was asked with."""

    level: Level
    acr: str


def parse_acr(value: str) -> Level:
    """The level an acr value names; ``ValueError`` for one that names none."""
    try:
        return _BY_VALUE[value]
    except KeyError:
        raise ValueError(
            f"unknown acr value {value!r}; expected one of {', '.join(sorted(_BY_VALUE))}"
        ) from None


def acr_for(level: Level, *, spelling_of: str | None = None) -> str:
    """The acr value for ``level`` in the spelling of ``spelling_of`` (URN by default)."""
    if spelling_of is not None and spelling_of in EIDAS.values():
        return EIDAS[level]
    return URN[level]


def lowest_acceptable(values: Iterable[str]) -> RequestedLevel | None:
    """From a preference list of acr values, the lowest known level asked for (OIDC Core §3.1.2.1)."""
    known = [RequestedLevel(_BY_VALUE[v], v) for v in values if v in _BY_VALUE]
    if not known:
        return None
    return min(known, key=lambda r: r.level)
