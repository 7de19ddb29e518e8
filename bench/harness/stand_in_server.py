"""``idp serve`` with argon2id's verification replaced, for ``login_factors.py --verify-as``.

    python bench/harness/stand_in_server.py KIND MILLISECONDS serve --host … --port …

A control experiment, never a way to run the IdP: every password is accepted. ``KIND`` is

- ``pbkdf2``: PBKDF2-HMAC-SHA256 for as many iterations as take ``MILLISECONDS`` on this core
  (calibrated at start). Like argon2 it runs in C with the GIL released, on the app's CPU pool,
  and its time is counted as argon2's is (``password_hash_cpu_seconds_total``); unlike argon2 its
  state is a few hundred bytes, so it leaves the caches to the event loop. If the rest of the
  flow costs as much beside it as beside argon2, argon2's 19 MiB is not what makes it cost;
- ``none``: no work at all: the rest of the flow alone, and how far the event loop batches it.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def calibrated_iterations(milliseconds: float) -> int:
    """PBKDF2-HMAC-SHA256 iterations that take ``milliseconds`` of this thread's CPU, by the
    median of five timings of 20,000."""
    trial = 20_000
    timings = []
    for _ in range(5):
        began = time.thread_time()
        hashlib.pbkdf2_hmac("sha256", b"stand-in", b"salt-of-the-bench", trial)
        timings.append(time.thread_time() - began)
    per_iteration = sorted(timings)[2] / trial
    return max(1, round(milliseconds / 1000 / per_iteration))


def install(kind: str, milliseconds: float) -> None:
    from levels_of_assurance.authenticators import password

    if kind == "none":

        def verify(self: object, stored: str, secret: str) -> None:
            return None

    elif kind == "pbkdf2":
        iterations = calibrated_iterations(milliseconds)
        print(f"stand-in: PBKDF2-HMAC-SHA256, {iterations} iterations", file=sys.stderr, flush=True)

        def verify(self: object, stored: str, secret: str) -> None:
            hashlib.pbkdf2_hmac("sha256", secret.encode(), b"salt-of-the-bench", iterations)

    else:
        raise SystemExit(f"unknown stand-in {kind!r}: pbkdf2 or none")
    password.PasswordHasher.verify = verify  # type: ignore[method-assign,assignment]
    password.PasswordHasher.verify_dummy = lambda self, secret: verify(self, "", secret)  # type: ignore[method-assign,assignment,misc]


def main() -> int:
    kind, milliseconds, *argv = sys.argv[1:]
    install(kind, float(milliseconds))
    from idp.cli import main as idp_main

    return idp_main(argv)


if __name__ == "__main__":
    sys.exit(main())
