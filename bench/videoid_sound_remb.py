"""Does the person's sound lower the video's bandwidth estimate? The REMB the server sends.

    .venv/bin/python bench/videoid_sound_remb.py [--runs 2]

Serves the real app (uvicorn over TLS, SQLite in a temporary directory) and runs reviewed sessions
(the mode in which the server takes the person's sound) with an aiortc client streaming the
synthetic webcam of the tests, alternately with and without its synthetic microphone. aiortc's
sender logs every REMB (receiver estimated maximum bitrate) the server's receiver sends it and
sets its VP8 encoder's target bitrate to it; this prints their count, minimum, median and last
value per session. Runs vary a lot (2026-12-06, 2 cores: medians 374 and 460 kbit/s with sound,
698 and 411 without): compare several.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idp.storage import migrate
from tests.support.server import make_tls, serve, settings_factory_for
from tests.support.videoid_client import advanced_person, identify, signed_in, start_session
from tests.support.webcam import Performer
from videoid import policy
from videoid.liveness import Challenge
from videoid.policy import Mode, TenantPolicy

REMB = re.compile(r"receiver estimated maximum bitrate (\d+)")


class RembLog(logging.Handler):
    """Collects the REMB values aiortc's sender logs (at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.values: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = REMB.search(record.getMessage())
        if found:
            self.values.append(int(found.group(1)))


def one_session(directory: Path, *, microphone: bool, log: RembLog) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    migrate.upgrade(url)
    with serve(
        settings_factory_for(url, directory), tls=make_tls(directory), outbox=directory / "mail"
    ) as served:
        served.state.videoid.challenges = lambda: (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)
        person = advanced_person(served)
        reviewed = TenantPolicy(mode=Mode.REVIEWED)
        served.write(lambda tx: policy.save(tx, tenant_id=person.tenant_id, policy=reviewed))
        (directory / "performer").mkdir()

        async def run() -> str:
            async with signed_in(served, person) as browser:
                session_id, csrf = await start_session(browser)
                log.values.clear()
                done = await identify(
                    served,
                    browser,
                    Performer(directory / "performer"),
                    session_id=session_id,
                    csrf=csrf,
                    microphone=microphone,
                )
                return str(done.final.get("status"))

        return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="sessions with and without sound each")
    args = parser.parse_args()
    log = RembLog()
    sender_log = logging.getLogger("aiortc.rtcrtpsender")
    sender_log.setLevel(logging.DEBUG)
    sender_log.addHandler(log)
    print(" sound  status           REMBs  min kbit/s  median kbit/s  last kbit/s")
    for _ in range(args.runs):
        for microphone in (True, False):
            with tempfile.TemporaryDirectory() as directory:
                started = time.monotonic()
                status = one_session(Path(directory), microphone=microphone, log=log)
                values = log.values or [0]
                low, middle, last = min(values) / 1000, statistics.median(values) / 1000, values[-1] / 1000
                print(
                    f"{'yes' if microphone else 'no':>6}  {status:<15} {len(log.values):>6} {low:>11.0f}"
                    f" {middle:>14.0f} {last:>12.0f}"
                    f"   ({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
