"""What the agent's live view of a session costs the server, per frame and per watching agent.

    .venv/bin/python bench/videoid_live_view.py [--frames 300]

The live view (:mod:`videoid.live_view`) hands each decoded frame of the person's video to a
second MediaRelay consumer, which aiortc encodes again (VP8, its default codec, 640x480) for the
agent's browser: that encoding is what watching adds. This plays the test clip's speaker shot
(padded to 640x480, as the synthetic webcam sends it) through aiortc's own ``Vp8Encoder`` and
packetiser, and prints the CPU time per frame measured with ``time.thread_time`` on the
encoding thread (CPU, not wall clock: the machine is shared), and what that is at 15 and 30
frames per second as a share of one core.
"""

from __future__ import annotations

import argparse
import fractions
import statistics
import sys
import time
from pathlib import Path

import av
from aiortc.codecs.vpx import Vp8Encoder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.webcam import speaker_frames  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    clip = speaker_frames()
    encoder = Vp8Encoder()
    per_frame, sizes = [], []
    for i in range(args.frames):
        frame = av.VideoFrame.from_ndarray(clip[i % len(clip)], format="bgr24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        started = time.thread_time()
        payloads, _ = encoder.encode(frame, force_keyframe=i == 0)
        per_frame.append(time.thread_time() - started)
        sizes.append(sum(len(p) for p in payloads))
    steady = per_frame[1:]  # the first frame sets the encoder up
    mean_ms = statistics.mean(steady) * 1000
    p95_ms = sorted(steady)[int(0.95 * len(steady))] * 1000
    first_ms = per_frame[0] * 1000
    print(f"frames encoded        {args.frames} (640x480, VP8 by aiortc's encoder, PyAV {av.__version__})")
    print(f"CPU per frame         mean {mean_ms:.2f} ms, p95 {p95_ms:.2f} ms, first {first_ms:.1f} ms")
    print(f"bytes per frame       mean {statistics.mean(sizes):.0f}")
    for fps in (15, 30):
        print(f"one agent at {fps} fps   {mean_ms * fps / 10:.1f} % of one core")


if __name__ == "__main__":
    main()
