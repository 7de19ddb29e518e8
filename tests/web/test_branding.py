"""A tenant's branding on its pages (``idp/web/branding.py``): cleaned, and readable in its colour."""

from __future__ import annotations

import pytest

from idp.tenants import Tenant
from idp.web.branding import brand_colors
from tests.support.pages import all_pages, render


def test_branding() -> None:
    pages = all_pages()
    branded = render(pages, "index.html", "en", branding={"name": "Acme", "primary_color": "#FFCC00"})
    assert 'style="--primary: #ffcc00; --on-primary: #000000;' in branded
    assert "<h1>Acme</h1>" in branded
    hostile = {"primary_color": "red; background: url(x)", "logo_url": "javascript:alert(1)"}
    plain = render(pages, "index.html", "en", branding=hostile)
    assert "<body>" in plain
    assert "javascript:" not in plain
    assert "<h1>eID</h1>" in plain
    logo = render(pages, "index.html", "en", branding={"logo_url": "https://cdn.example/l.svg"})
    assert '<img class="brand-logo" src="https://cdn.example/l.svg" alt="eID">' in logo


def test_a_tenant_without_a_brand_name_is_shown_by_its_own_name() -> None:
    """Its pages' header, title and mails name the organisation, not the product."""
    for branding in ({}, {"name": "  "}, {"name": None, "primary_color": "#0b5fff"}):
        tenant = Tenant(id="t", slug="acme", name="Acme d.o.o.", branding=branding)
        assert tenant.shown_name == "Acme d.o.o."
        shown = tenant.shown_branding()
        assert shown["name"] == "Acme d.o.o." and shown.get("primary_color") == branding.get("primary_color")
        page = render(all_pages(), "index.html", "en", branding=shown)
        assert "<h1>Acme d.o.o.</h1>" in page
    named = Tenant(id="t", slug="acme", name="Acme d.o.o.", branding={"name": " Acme "})
    assert named.shown_name == "Acme" and named.shown_branding()["name"] == "Acme"


@pytest.mark.parametrize("color", ["#ffcc00", "#fff", "#777777", "#0b5fff", "#22c55e", "#000"])
def test_brand_colors_keep_aa_contrast(color: str) -> None:
    colors = brand_colors(color)
    assert _contrast(colors["primary"], colors["on_primary"]) >= 4.5
    assert _contrast(colors["accent"], "#ffffff") >= 4.5


def _contrast(first: str, second: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)] if len(color) == 7 else []
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
