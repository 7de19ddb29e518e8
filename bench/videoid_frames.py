"""Frame analysis for video identification: throughput per core, sessions per core, decision time.

    python bench/videoid_frames.py [--seconds 6] [--cpu 0]

The process is pinned to one CPU. Frames are the test clip (640x360, 30 fps) padded to 640x480,
the size a WebRTC session receives, looped. Prints:

1. frames analysed per second by one session's analyser (tracking + 68 landmarks on every
   frame, descriptors on the few chosen frames), over the whole clip and over the shot where
   the speaker faces the camera;
2. the cost of one descriptor (ResNet on the aligned chip) and of the document comparison;
3. concurrent sessions on the one core: N pipelines each fed at 30 fps in real time through
   their queue of one, analysis in a single worker thread; analysed frames per second per
   session, for growing N, until a session falls under 10 fps;
4. time from the capture that completed the last liveness challenge to the decision (liveness
   and the closing identity check), and with the document portrait compared after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from videoid import faces
from videoid.frames import FrameAnalyser, FramePipeline
from videoid.liveness import Challenge, LivenessSession, Observation, Policy, Verdict

TESTDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata"
SINGER = range(85, 213)
CAMERA_FPS = 30.0
LONG = Policy(session_timeout=1e9, step_timeout=1e9)


def load_clip() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(TESTDATA / "video" / "short_hamilton_clip.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.copyMakeBorder(frame, 60, 60, 0, 0, cv2.BORDER_CONSTANT))
    return frames


def single_session(frames: list[np.ndarray], seconds: float) -> tuple[float, list[float], int]:
    analyser = FrameAnalyser()
    per_frame: list[float] = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        frame = frames[i % len(frames)]
        per_frame.append(analyser.analyse(frame, i / CAMERA_FPS, want_embedding=False).seconds)
        i += 1
    return i / (time.perf_counter() - started), per_frame, analyser.embeddings


async def concurrent(frames: list[np.ndarray], sessions: int, seconds: float) -> list[float]:
    """Analysed frames per second of each of ``sessions`` pipelines sharing one worker thread."""
    executor = ThreadPoolExecutor(max_workers=1)
    pipelines = [
        FramePipeline(
            LivenessSession([Challenge.BLINK], started_at=time.monotonic(), policy=LONG), executor=executor
        )
        for _ in range(sessions)
    ]
    workers = [asyncio.create_task(p.run()) for p in pipelines]
    started = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - started < seconds:
        for k, pipeline in enumerate(pipelines):
            pipeline.push(frames[(n + 7 * k) % len(frames)])
        n += 1
        await asyncio.sleep(max(0.0, started + n / CAMERA_FPS - time.perf_counter()))
    elapsed = now - started
    counts = [p.stats.analysed for p in pipelines]
    for p in pipelines:
        p.close()
    await asyncio.gather(*workers)
    executor.shutdown()
    return [c / elapsed for c in counts]


async def decision_latency(frames: list[np.ndarray]) -> tuple[float, float, int]:
    """Seconds from the capture completing the last challenge to the final decision."""
    session = LivenessSession([Challenge.TURN_RIGHT, Challenge.TURN_LEFT], started_at=time.perf_counter())
    completed_at: list[float] = []
    closed_at: list[float] = []
    observe = session.observe

    def watched(obs: Observation):  # type: ignore[no-untyped-def]
        decision = observe(obs)
        if session.current is None and not completed_at:
            completed_at.append(obs.t)
        if decision.verdict is not Verdict.IN_PROGRESS:
            closed_at.append(obs.t)
        return decision

    session.observe = watched  # type: ignore[method-assign]
    executor = ThreadPoolExecutor(max_workers=1)
    pipeline = FramePipeline(session, executor=executor, clock=time.perf_counter)
    worker = asyncio.create_task(pipeline.run())
    started = time.perf_counter()
    n = 0
    while not worker.done() and n < 3 * len(frames):
        pipeline.push(frames[n % len(frames)])
        n += 1
        await asyncio.sleep(max(0.0, started + n / CAMERA_FPS - time.perf_counter()))
    pipeline.close()
    decision = await worker
    executor.shutdown()
    if not completed_at or pipeline.stats.decided_at is None:
        raise SystemExit(f"no decision: {decision}")
    print(f"  decision: {decision.verdict} ({decision.message}); frames dropped {pipeline.queue.dropped}")
    decided = pipeline.stats.decided_at
    return decided - completed_at[0], decided - closed_at[0], pipeline.stats.analysed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin the process to")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    cv2.setNumThreads(1)
    frames = load_clip()
    singer = [frames[i] for i in SINGER]
    faces.models()
    print(f"pinned to CPU {args.cpu}; clip {len(frames)} frames padded to 640x480, looped")

    print("1. one session, frames analysed per second (tracking + landmarks on every frame)")
    for label, source in (("whole clip", frames), ("speaker shot", singer)):
        fps, per_frame, embeddings = single_session(source, args.seconds)
        ms = sorted(1000 * s for s in per_frame)
        print(
            f"  {label:<13} {fps:6.1f} fps  per frame p50 {statistics.median(ms):5.1f} ms, "
            f"p95 {ms[int(0.95 * len(ms))]:5.1f} ms, max {ms[-1]:5.1f} ms; {embeddings} descriptors"
        )

    print("2. descriptor")
    face = faces.detect_faces(singer[60], retry_upsampled=False)[0]
    runs = []
    for _ in range(20):
        t = time.perf_counter()
        faces.embed(singer[60], face)
        runs.append(time.perf_counter() - t)
    print(f"  one descriptor (5-point alignment, chip, ResNet): {1000 * statistics.median(runs):.1f} ms")
    portrait = faces.read_image(TESTDATA / "faces" / "obama" / "1.jpg")
    t = time.perf_counter()
    faces.compare(faces.encode(portrait).embedding, faces.embed(singer[60], face))
    document_s = time.perf_counter() - t
    print(f"  document portrait (910x1137 photo: detect, encode, compare): {1000 * document_s:.0f} ms")

    print("3. concurrent sessions on one core, each fed 30 fps in real time")
    sessions = 1
    while True:
        rates = asyncio.run(concurrent(singer, sessions, args.seconds))
        low, mean = min(rates), statistics.mean(rates)
        print(f"  {sessions} session(s): analysed fps per session min {low:5.1f}, mean {mean:5.1f}")
        if min(rates) < 10 or sessions >= 12:
            break
        sessions += 1
    print(f"  => {sessions - 1 if min(rates) < 10 else sessions} session(s) per core at >= 10 fps analysed")

    print("4. time from the capture completing the last challenge to the decision")
    latency, closing, analysed = asyncio.run(decision_latency(singer))
    print(f"  liveness + closing identity check: {1000 * latency:.0f} ms ({analysed} frames analysed)")
    print(f"    of which after the capture of the frontal frame that closed it: {1000 * closing:.0f} ms")
    total = 1000 * (latency + document_s)
    print(f"  with the document comparison after it: {total:.0f} ms (target < 2000 ms)")


if __name__ == "__main__":
    main()
