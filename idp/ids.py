"""Row identifiers that sort by creation time: UUIDv7 (RFC 9562 §5.7).

A random UUIDv4 puts each new row's index entry on a random B-tree page, and every page a
transaction changes is written out whole at commit (SQLite's WAL) and again at the checkpoint.
Ids created close in time share their index pages instead. Used where rows are written on every
token request (grant ids, audit event ids); the random part keeps them unguessable enough for
ids that are not secrets.
"""

from __future__ import annotations

import os
import time

_MS = (1 << 48) - 1


def uuid7_hex() -> str:
    """A version 7 UUID as 32 lower-case hex digits: 48 bits of Unix time in milliseconds, then 74
    random bits (RFC 9562 §5.7)."""
    raw = bytearray(os.urandom(16))
    raw[:6] = (time.time_ns() // 1_000_000 & _MS).to_bytes(6, "big")
    raw[6] = 0x70 | raw[6] & 0x0F  # version 7
    raw[8] = 0x80 | raw[8] & 0x3F  # variant 0b10
    return raw.hex()


def uuid7() -> str:
    """A version 7 UUID in its usual text form (:func:`uuid7_hex` with its hyphens)."""
    h = uuid7_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
