"""The automated decision of a video identification (I/O-free).

Approved only when every check holds (ETSI TS 119 461 §9.2.3 for unattended remote proofing):

- liveness passed (:mod:`videoid.liveness`: the random challenges done by the same live face);
- the MRZ read with every ICAO 9303 check digit valid;
- the document accepted by the tenant (type, issuing state) and not expired;
- the live face (the best stills of the session) matching the document portrait:
  distance at most :data:`videoid.faces.MATCH_THRESHOLD`;
- the document tilted in front of the camera (its perspective changed: not a flat picture);
- the code sent by SMS to the eID's verified phone read back (second channel);
- the name in the MRZ matching the eID's given and family names (:func:`names_match`).

Otherwise rejected with every reason that applies (:class:`ReasonCode`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from videoid.faces import MATCH_THRESHOLD


class ReasonCode(StrEnum):
    LIVENESS_FAILED = "liveness_failed"
    DOCUMENT_NOT_READ = "document_not_read"
    MRZ_INVALID = "mrz_invalid"
    DOCUMENT_EXPIRED = "document_expired"
    DOCUMENT_NOT_ACCEPTED = "document_not_accepted"
    NO_PORTRAIT = "no_portrait"
    NO_FACE_STILL = "no_face_still"
    FACE_MISMATCH = "face_mismatch"
    TILT_NOT_SEEN = "tilt_not_seen"
    SMS_CODE_NOT_MATCHED = "sms_code_not_matched"
    NAME_MISMATCH = "name_mismatch"
    ABANDONED = "abandoned"


@dataclass(slots=True, frozen=True)
class Checks:
    """What the session established; None where a check never ran."""

    liveness_passed: bool
    mrz_read: bool
    mrz_valid: bool
    expired: bool | None
    accepted: bool
    portrait_found: bool
    face_distance: float | None
    tilt_passed: bool
    sms_matched: bool
    name_matches: bool


@dataclass(slots=True, frozen=True)
class Outcome:
    approved: bool
    reasons: tuple[ReasonCode, ...]


def decide(checks: Checks, *, threshold: float = MATCH_THRESHOLD) -> Outcome:
    """Approve when every check holds; otherwise reject with every failed check's reason."""
    reasons: list[ReasonCode] = []
    if not checks.liveness_passed:
        reasons.append(ReasonCode.LIVENESS_FAILED)
    if not checks.mrz_read:
        reasons.append(ReasonCode.DOCUMENT_NOT_READ)
    else:
        if not checks.mrz_valid:
            reasons.append(ReasonCode.MRZ_INVALID)
        if checks.expired is not False:
            reasons.append(ReasonCode.DOCUMENT_EXPIRED)
        if not checks.accepted:
            reasons.append(ReasonCode.DOCUMENT_NOT_ACCEPTED)
        if not checks.name_matches:
            reasons.append(ReasonCode.NAME_MISMATCH)
    if not checks.portrait_found:
        reasons.append(ReasonCode.NO_PORTRAIT)
    elif checks.face_distance is None:
        reasons.append(ReasonCode.NO_FACE_STILL)
    elif checks.face_distance > threshold:
        reasons.append(ReasonCode.FACE_MISMATCH)
    if not checks.tilt_passed:
        reasons.append(ReasonCode.TILT_NOT_SEEN)
    if not checks.sms_matched:
        reasons.append(ReasonCode.SMS_CODE_NOT_MATCHED)
    return Outcome(not reasons, tuple(reasons))


# ICAO Doc 9303 Part 3 §6 (transliteration of national characters): letters that Unicode does not
# decompose into a base letter and a mark
_TRANSLITERATION = str.maketrans(
    {"Đ": "D", "đ": "D", "Ø": "OE", "ø": "OE", "Æ": "AE", "æ": "AE", "ß": "SS", "Ł": "L", "ł": "L",
     "Þ": "TH", "þ": "TH", "Œ": "OE", "œ": "OE", "Ħ": "H", "ħ": "H"}
)  # fmt: skip
_NOT_LETTER = re.compile(r"[^A-Z]+")


def normalise_name(name: str) -> tuple[str, ...]:
    """Upper-case words of A-Z only: diacritics folded (Č → C, Đ → D), hyphens and ``<`` split."""
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATION))
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch)).upper()
    return tuple(w for w in _NOT_LETTER.split(plain) if w)


def _prefix(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return bool(short) and long[: len(short)] == short


def names_match(
    *, mrz_surname: str, mrz_given: str, family_name: str | None, given_names: Iterable[str | None]
) -> bool:
    """The MRZ names against the eID's, after :func:`normalise_name`.

    The family name must be equal; the given names must agree word for word as far as the shorter
    goes (the MRZ truncates long names, and an eID may carry only the first given name).
    """
    surname = normalise_name(mrz_surname)
    if not surname or surname != normalise_name(family_name or ""):
        return False
    mrz = normalise_name(mrz_given)
    for given in given_names:
        words = normalise_name(given or "")
        if words and (_prefix(words, mrz) or _prefix(mrz, words)):
            return True
    return False
