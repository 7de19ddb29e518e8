"""UUIDv7 row ids (RFC 9562 §5.7): well-formed, unique, ordered by creation time; and the
time-ordered keys of access and refresh tokens."""

from __future__ import annotations

import time
import uuid

import pytest

from idp import ids, secrets
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


def test_tokens_are_keyed_in_the_order_they_were_issued() -> None:
    """Access and refresh tokens begin with a UUIDv7; their storage keys keep that order, so that
    new tokens' index entries append (see :mod:`idp.secrets`)."""
    issued = []
    for _ in range(50):
        issued.append(secrets.new_token())
        time.sleep(0.001)
    keys = [secrets.token_key(t) for t in issued]
    assert keys == sorted(keys) and len(set(keys)) == 50
    token = issued[0]
    head, secret = token.split(".")
    assert uuid.UUID(head).version == 7 and len(secret) == 43  # 256 bits, base64url
    key = secrets.token_key(token)
    assert len(key) == 64 and key[:32] == head and key[32:] == secrets.digest(token)[:32]
    assert secrets.token_matches(token, key)
    # the same time part with another secret, or a change anywhere, is another key
    assert not secrets.token_matches(f"{head}.{secrets.new_secret()}", key)
    assert not secrets.token_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), key)


def test_tokens_of_the_earlier_form_keep_their_whole_digest_as_key() -> None:
    """Tokens issued before the time-ordered form (random base64url) are found as they were
    stored; so is anything else presented, which then matches nothing."""
    for old in (secrets.new_secret(), "not-a-token", "ABCDEF0123456789abcdef0123456789.x", ""):
        assert secrets.token_key(old) == secrets.digest(old)
