"""Whole video identification sessions over WebRTC: live fps, decision time, sessions per core.

    .venv/bin/python bench/videoid_session.py [--sessions 1,2,3] [--runs 1]

Serves the real app (uvicorn over TLS, SQLite in a temporary directory) and drives N sessions at
once with aiortc clients streaming the synthetic webcam of the tests (the test clip's speaker at
640x480 and 30 fps, then a passport with his photo, then a tilt; the challenges fixed to what the
clip does). Everything, server and clients, runs on this machine, so the clients' VP8 encoding
takes CPU from the server: the figures are a lower bound for a server with cores of its own.

For each N it prints, per session: frames analysed per second during the face and liveness steps
(the live path: WebRTC decode, BGR conversion, queue of one, tracking and landmarks, liveness),
frames received, OCR reads (every attempt), the reads of the MRZ that voted on the names and
whether they confirmed them (:mod:`videoid.document.consensus`), the seconds the document steps
took (front and back), the decision, and two times: from the end of the capture (the last tilt
frame) to the decision, and from the code's submission to the decision.
Targets: >= 15 fps per session at 640x480 and a decision within 2 s of the last capture.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idp.storage import migrate
from tests.support.server import ServedApp, make_tls, serve, settings_factory_for
from tests.support.videoid_client import advanced_person, identify, signed_in, start_session
from tests.support.webcam import Performer
from videoid.liveness import Challenge
from videoid.service import Live


async def one_session(served: ServedApp, directory: Path, index: int) -> dict[str, Any]:
    phone = f"+3864012{index:04d}"
    person = advanced_person(served, phone=phone)
    (directory / f"p{index}").mkdir(exist_ok=True)
    performer = Performer(directory / f"p{index}", seed=index)
    async with signed_in(served, person) as browser:
        session_id, csrf = await start_session(browser)
        box: dict[str, Live] = {}

        async def grab() -> None:
            while session_id not in served.state.videoid.live:
                await asyncio.sleep(0.01)
            box["live"] = served.state.videoid.live[session_id]

        grabber = asyncio.ensure_future(grab())
        run = await identify(
            served, browser, performer, session_id=session_id, csrf=csrf, timeout=240, phone=phone
        )
        await grabber
    live = box["live"]
    capture = live.capture
    stats = capture.pipeline.stats
    first = capture._first_frame or capture.started
    live_seconds = (stats.decided_at or time.perf_counter()) - (first + capture.warmup)
    result = live.result
    out = {
        "decision": run.final.get("decision"),
        "fps_live": stats.analysed / live_seconds if live_seconds > 0 else 0.0,
        "analysis_ms": 1000 * statistics.median(stats.per_frame) if stats.per_frame else 0.0,
        "received": capture.received,
        "ocr_reads": result.ocr_reads if result else 0,
        "voted": result.consensus.reads if result and result.consensus else 0,
        "names": "yes" if result and result.consensus and result.consensus.names_confirmed else "no",
        "document_seconds": sum(result.timings.get(step, 0.0) for step in ("document_front", "document_back"))
        if result
        else 0.0,
        "capture_to_decision": (live.decided_at - result.captured_at)
        if result and result.captured_at and live.decided_at
        else None,
        "code_to_decision": (live.decided_at - live.code_at) if live.code_at and live.decided_at else None,
    }
    return out


async def sessions(served: ServedApp, directory: Path, count: int) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(one_session(served, directory, i) for i in range(count))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", default="1,2,3", help="concurrent sessions to try, comma-separated")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    counts = [int(x) for x in args.sessions.split(",")]
    cores = os.cpu_count() or 1
    directory = Path(tempfile.mkdtemp(prefix="videoid-bench-"))
    try:
        db = directory / "idp.db"
        migrate.upgrade(f"sqlite+aiosqlite:///{db}")
        tls = make_tls(directory)
        factory = settings_factory_for(f"sqlite+aiosqlite:///{db}", directory, sms_limit_per_number=1000)
        with serve(factory, tls=tls, outbox=directory / "mail") as served:
            served.state.videoid.challenges = lambda: (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)
            print(f"{cores} cores; server and clients on this machine; 640x480 at 30 fps per client")
            print(
                f"{'N':>2} {'decision':>9} {'fps live':>9} {'ms/frame':>9} {'received':>9} {'OCR':>4} "
                f"{'voted':>5} {'names':>5} {'document':>9} {'capture->decision':>18} {'code->decision':>15}"
            )
            for count in counts:
                for _ in range(args.runs):
                    for r in asyncio.run(sessions(served, directory, count)):
                        c2d, k2d = r["capture_to_decision"], r["code_to_decision"]
                        print(
                            f"{count:>2} {r['decision']!s:>9} {r['fps_live']:>9.1f} {r['analysis_ms']:>9.1f} "
                            f"{r['received']:>9} {r['ocr_reads']:>4} {r['voted']:>5} {r['names']:>5} "
                            f"{r['document_seconds']:>7.1f} s "
                            f"{'-' if c2d is None else f'{c2d:.2f} s':>18} "
                            f"{'-' if k2d is None else f'{k2d:.3f} s':>15}"
                        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
