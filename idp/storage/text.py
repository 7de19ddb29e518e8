"""Text every database column can hold: no NUL character (PostgreSQL's text refuses it, SQLite
keeps it), no lone surrogate (not encodable as UTF-8). Checked where JSON bodies come in."""

from __future__ import annotations

from typing import Any


def check_storable(value: Any) -> None:
    """Raise ValueError, saying what is wrong, if a string anywhere in ``value`` cannot be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("strings must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)
    elif isinstance(value, list):
        for item in value:
            check_storable(item)
