"""The stylesheet styles every kind of form field the pages use.

An input type left out of the stylesheet's field rule renders as the browser's bare default:
on a phone a box about 20 pixels high in small type, below the 44 px touch target and, on iOS,
zoomed into on focus (below 16 px).
"""

from __future__ import annotations

import re

from tests.support.pages import TEMPLATES_DIR

_NOT_TYPED = {"hidden", "checkbox", "radio"}  # not text fields: styled apart or not shown


def _field_rule_selectors() -> set[str]:
    css = (TEMPLATES_DIR / "static" / "style.css").read_text()
    rule = next(block for block in re.findall(r"([^{}]+)\{([^}]*)\}", css) if "min-height: 48px" in block[1])
    return {selector.strip() for selector in rule[0].split(",")}


def test_every_text_field_type_the_pages_use_is_styled() -> None:
    used = {
        kind
        for path in TEMPLATES_DIR.glob("*.html")
        for kind in re.findall(r'<input\b[^>]*\btype="([a-z]+)"', path.read_text())
    } - _NOT_TYPED
    assert used, "no input types found in the templates"
    styled = _field_rule_selectors()
    assert {f'input[type="{kind}"]' for kind in used} <= styled, sorted(used)
    assert "select" in styled


# classes that only name an element for a script or a test, and need no style of their own
_HOOKS = {"events", "methods", "passkeys", "passkey", "hint", "value"}


def test_every_class_the_pages_use_is_styled() -> None:
    """A class the stylesheet does not define leaves its element unstyled: the video pages' errors
    once showed as plain text (``error`` for ``field-error``) and their consent box stood apart
    from its label (``field-checkbox``)."""
    css = re.sub(r"/\*.*?\*/", "", (TEMPLATES_DIR / "static" / "style.css").read_text(), flags=re.S)
    defined = set(re.findall(r"\.([A-Za-z_][\w-]*)", css))
    used = {
        (name, path.name)
        for path in TEMPLATES_DIR.rglob("*.html")
        for attribute in re.findall(r'class="([^"{]*)"', path.read_text())
        for name in attribute.split()
    }
    assert not sorted((name, page) for name, page in used if name not in defined | _HOOKS)
