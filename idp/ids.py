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
_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> str:
    """A version 7 UUID in its usual text form: 48 bits of Unix time in milliseconds, then 74
    random bits (RFC 9562 §5.7)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62 & _RAND_A) << 64 | 0b10 << 62 | rand & _RAND_B
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
