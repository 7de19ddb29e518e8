"""UUIDv7 row ids (RFC 9562 §5.7): well-formed, unique, ordered by creation time."""

from __future__ import annotations

import time
import uuid

import pytest

from idp import ids
from idp.ids import uuid7


def test_a_uuid7_is_a_well_formed_version_7_uuid() -> None:
    value = uuid7()
    parsed = uuid.UUID(value)
    assert str(parsed) == value  # lower-case, hyphenated: the form the columns hold
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_its_first_48_bits_are_the_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(value).int >> 80 <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones_and_none_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_800_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    first = [uuid7() for _ in range(2000)]
    assert len(set(first)) == len(first)  # 74 random bits within one millisecond
    now[0] += 1_000_000
    later = uuid7()
    assert max(first) < later
