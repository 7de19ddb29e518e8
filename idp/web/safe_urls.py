"""The URLs a page may send the browser to: a redirect target, a link, a tenant's logo.

A value from a request or a tenant's settings is followed only when it stays on this site or is
an ordinary http(s) URL; anything else (``//host``, ``javascript:``, hidden characters) is dropped.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a path on this site (``/…``, not ``//…``), else ``/``."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers strip tabs and newlines and read "\" as "/", so "/\t/evil" or "/\evil" leave the site.
    if "\\" in value or any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def safe_url(value: object, fallback: str = "/") -> str:
    """The ``safe_url`` template filter: ``value`` if :func:`is_safe_url`, else ``fallback``."""
    return value if isinstance(value, str) and is_safe_url(value) else fallback


def is_safe_url(value: str) -> bool:
    """Whether ``value`` is a path on this site or an http(s) URL with a host."""
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value) or "\\" in value:
        return False
    if value.startswith("/"):
        return not value.startswith("//")
    parts = urlsplit(value)
    return parts.scheme in {"https", "http"} and bool(parts.netloc)
