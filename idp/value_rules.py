"""What a stored value may be, whoever sends it: the administration API, SCIM, the CLI or a page.

- A name, username, label or id is **one line of text**: no line break, tab, escape, DEL, Unicode
  line or paragraph separator, nor bidirectional override. It reaches logs, mail headers,
  consoles and the audit trail, where such characters forge lines or reorder what a reader sees
  (CVE-2021-42574).
- A URL has **no spaces or control characters**: ``urlsplit`` drops tabs and line breaks, so a
  check would pass on a URL other than the one stored.
- A logo URL names a host over https, or a path on this server (``//host`` and ``/\\host`` are
  other hosts to a browser).
- A tenant slug is lowercase letters, digits and dashes, and not shaped like a tenant id (a
  UUID): tenants are found by id or slug, so such a slug could shadow another tenant.
- A birthdate is a real day as YYYY-MM-DD, or a year (OIDC Core §5.1).

Each rule returns the value it checked and raises :class:`ValueRuleError` (a ``ValueError``).
Callers that know which value it is pass ``field`` so that each entry point can name it in its
own terms (a CLI option, a SCIM attribute, a JSON member).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from urllib.parse import urlsplit

# bidirectional embeddings, overrides and isolates reorder what a reader sees (CVE-2021-42574)
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BIRTHDATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})-([0-9]{2}))?")


class ValueRuleError(ValueError):
    """A value one of these rules refused.

    ``field`` names the value (``username``, ``redirect_uri``, ``branding.logo_url``) when the
    caller said which it was; ``reason`` is the sentence without its subject, for an entry point
    that names the value its own way.
    """

    def __init__(self, reason: str, *, field: str | None = None, subject: str | None = None) -> None:
        super().__init__(" ".join(part for part in (subject or field, reason) if part))
        self.field = field
        self.reason = reason


def one_line(value: str, *, field: str | None = None, subject: str | None = None) -> str:
    """The value, if it is one line of text without control characters."""
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS:
            raise ValueRuleError(
                f"must be one line of text without control characters, found {ch!r}",
                field=field,
                subject=subject,
            )
    return value


def single_line(value: str, *, field: str, max_length: int, subject: str | None = None) -> str:
    """A name or label: one line of text, 1 to ``max_length`` characters once trimmed (returned)."""
    one_line(value, field=field, subject=subject)
    trimmed = value.strip()
    if not 0 < len(trimmed) <= max_length:
        raise ValueRuleError(f"must be 1-{max_length} characters", field=field, subject=subject)
    return trimmed


def url_text(value: str, *, field: str | None = None, subject: str | None = None) -> str:
    """A URL without spaces or control characters (checked before it is parsed)."""
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueRuleError(
            "must not contain spaces or control characters", field=field, subject=subject or field or "a URL"
        )
    return value


def logo_url(value: str, *, field: str | None = None) -> str:
    """An https URL with a host, or a path on this server (one leading ``/``)."""
    url_text(value, field=field)
    if value.startswith("/") and value[1:2] not in ("/", "\\"):
        return value
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueRuleError(
            "must be an https:// URL with a host, or a path on this server",
            field=field,
            subject=field or "logo_url",
        )
    return value


def slug(value: str, *, field: str | None = None, subject: str | None = None) -> str:
    """A tenant slug: lowercase letters, digits and dashes, and not the form of a tenant id."""
    if not SLUG.fullmatch(value):
        raise ValueRuleError(
            f"must be lowercase letters, digits and dashes, got {value!r}",
            field=field,
            subject=subject or field or "a slug",
        )
    if UUID_FORM.fullmatch(value):
        reason = "must not have the form of a tenant id (a UUID)"
        raise ValueRuleError(reason, field=field, subject=subject or field or "a slug")
    return value


def birthdate(value: str, *, field: str | None = None) -> str:
    """OIDC Core §5.1 ``birthdate``: YYYY-MM-DD of a real day (year 0000: not given), or YYYY."""
    subject = field or "birthdate"
    found = BIRTHDATE.fullmatch(value)
    if found is None:
        raise ValueRuleError("must be YYYY-MM-DD or YYYY (OIDC Core §5.1)", field=field, subject=subject)
    if found[2] is not None:
        try:
            datetime.date(int(found[1]) or 2000, int(found[2]), int(found[3]))  # 0000-02-29 is a day
        except ValueError as exc:
            # the admin API has always answered with the bare reason (its member is named beside it)
            reason = str(exc) if field is None else f"must be a real day, got {value!r} ({exc})"
            raise ValueRuleError(reason, field=field, subject=None if field is None else subject) from None
    return value
