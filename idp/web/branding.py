"""A tenant's branding on its pages, mails and SMS: name, logo, colour and texts.

What a tenant stores is cleaned before a page shows it (a bad colour or logo URL is dropped), and
its colour comes with text colours computed to keep WCAG AA contrast. Those are computed once per
colour, not on every page: a process serves a few tenant colours.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from idp.web.safe_urls import is_safe_url

PRODUCT_NAME = "eID"
DEFAULT_PRIMARY_COLOR = "#1d4ed8"

_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.split())
    return text[:limit] if text.isprintable() else None


def clean_branding(raw: object) -> dict[str, str | None]:
    """Keep the tenant's ``name``, ``logo_url`` (http(s) or a site path), ``#rgb``/``#rrggbb``
    colour, the paragraph its invitation mails carry (``invitation_text``) and the name its SMS
    give (``sms_name``, short: it counts against one SMS)."""
    source: Mapping[object, object] = raw if isinstance(raw, Mapping) else {}
    name = source.get("name")
    logo_url = source.get("logo_url")
    color = source.get("primary_color")
    return {
        "name": name.strip() if isinstance(name, str) and name.strip() else PRODUCT_NAME,
        "logo_url": logo_url if isinstance(logo_url, str) and is_safe_url(logo_url) else None,
        "primary_color": color.lower() if isinstance(color, str) and _HEX_COLOR.match(color) else None,
        "invitation_text": _text(source.get("invitation_text"), 600),
        "sms_name": _text(source.get("sms_name"), 20),
    }


def sms_name(branding: object, fallback: str) -> str:
    """The name an SMS of this tenant signs with."""
    cleaned = clean_branding(branding)
    return cleaned["sms_name"] or (cleaned["name"] if cleaned["name"] != PRODUCT_NAME else None) or fallback


def brand_colors(primary_color: str | None) -> dict[str, str]:
    """The tenant colour (or the default) with text colours that keep WCAG AA contrast.

    ``on_primary`` is the text on a ``primary`` background; ``accent`` is ``primary`` darkened until
    it reads as text (links, focus rings) on white at 4.5:1 or more.
    """
    color = primary_color if primary_color and _HEX_COLOR.match(primary_color) else DEFAULT_PRIMARY_COLOR
    primary, on_primary, accent = _colors(color)
    return {"primary": primary, "on_primary": on_primary, "accent": accent}


@functools.lru_cache(maxsize=1024)
def _colors(color: str) -> tuple[str, str, str]:
    # a pure function of the colour, computed for every page otherwise: a few tenant colours
    rgb = _rgb(color)
    on_primary = "#ffffff" if _contrast(rgb, _WHITE) >= _contrast(rgb, _BLACK) else "#000000"
    accent = rgb
    while _contrast(accent, _WHITE) < 4.5:
        accent = (accent[0] * 85 // 100, accent[1] * 85 // 100, accent[2] * 85 // 100)
    return _hex(rgb), on_primary, _hex(accent)


def brand_style(primary_color: str | None) -> str:
    """The ``style`` attribute value that overrides the stylesheet's colours, or ``""`` for the default."""
    if primary_color is None or not _HEX_COLOR.match(primary_color):
        return ""
    colors = brand_colors(primary_color)
    return (
        f"--primary: {colors['primary']}; --on-primary: {colors['on_primary']}; --accent: {colors['accent']};"
    )


def _rgb(color: str) -> tuple[int, int, int]:
    digits = color[1:] if len(color) == 7 else "".join(char * 2 for char in color[1:])
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _contrast(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    """WCAG 2.2 contrast ratio (https://www.w3.org/TR/WCAG22/#dfn-contrast-ratio)."""

    def luminance(rgb: tuple[int, int, int]) -> float:
        linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
