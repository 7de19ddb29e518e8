"""Moments in pages: ``utc_instant`` reads them as the instants they are, and account.html writes
each in UTC for a page without scripts, with the instant in its datetime for static/local-time.js."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from idp.web.i18n import utc_instant
from tests.support.pages import _ACCOUNT, all_pages, render

INSTANT = datetime(2026, 12, 7, 23, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-07T23:30:05.250000Z",  # as the audit trail writes it
        "2026-12-07T23:30:05.25",  # no offset: UTC, as every moment is kept, not local time
        "2026-12-08T00:30:05+01:00",
        INSTANT.timestamp() + 0.25,  # an attribute's verified_at
        int(INSTANT.timestamp()),
    ],
)
def test_a_moment_is_the_instant_it_names_to_the_second(value: object) -> None:
    moment = utc_instant(value)
    assert moment == INSTANT and moment.tzinfo is UTC and moment.microsecond == 0


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2026-13-01T00:00:00Z", None, True, 1e20, float("nan"), []]
)
def test_what_is_no_moment_is_none(value: object) -> None:
    assert utc_instant(value) is None


def _event_time(occurred_at: str) -> str:
    """What account.html writes before an event's name for an event at ``occurred_at``."""
    event = {"occurred_at": occurred_at, "event_type": "password.changed", "client_ip": None, "success": True}
    html = render(all_pages(), "account.html", "sl", **{**_ACCOUNT, "events": [(event, "Password changed")]})
    item = re.search(r'<li data-event="password.changed">(.*?) ·', html)
    assert item is not None
    return item.group(1)


@pytest.mark.parametrize(
    "occurred_at", ["2026-12-07T23:30:05.250000Z", "2026-12-07T23:30:05.25", "2026-12-08T00:30:05+01:00"]
)
def test_an_event_is_written_in_utc_with_its_instant(occurred_at: str) -> None:
    assert _event_time(occurred_at) == (
        '<time class="nowrap" datetime="2026-12-07T23:30:05Z" data-local-time="datetime">'
        "2026-12-07 23:30 UTC</time>"
    )


def test_a_moment_that_cannot_be_read_is_shown_as_it_is_and_left_alone() -> None:
    assert _event_time("soon & later") == "soon &amp; later"
