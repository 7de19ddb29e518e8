"""Face match threshold: calibration on the johns set, error rates on the other people.

    python bench/videoid_faces.py [--testdata DIR] [--margin 0.10]

Prints the distances seen, the threshold the false-accept-first rule picks (and the equal-error
threshold for comparison), the FAR/FRR of both and of the threshold in the code
(``videoid.faces.MATCH_THRESHOLD``) on the calibration set and on the held-out people; then
the same for the liveness continuity check (``videoid.liveness.Policy``): distances from the mean
of a person's descriptors (the session's face template) to their other descriptors and to
everyone else's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from videoid import calibration, faces, liveness

DEFAULT_TESTDATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "testdata"
HELD_OUT = ("obama", "biden", "kit_harington", "rose_leslie")


def _rates(label: str, pairs: calibration.PairDistances, threshold: float) -> str:
    r = calibration.error_rates(pairs, threshold)
    return (
        f"  {label:<34} threshold {threshold:.3f}  FAR {r.far:6.2%} ({r.false_accepts}/{r.impostor_pairs})"
        f"  FRR {r.frr:6.2%} ({r.false_rejects}/{r.genuine_pairs})"
    )


def _spread(label: str, pairs: calibration.PairDistances) -> str:
    def part(kind: str, values: tuple[float, ...]) -> str:
        v = sorted(values)
        if not v:
            return f"{kind} none"
        return f"{kind} {len(v):4d} pairs {v[0]:.3f}-{v[-1]:.3f} (median {v[len(v) // 2]:.3f})"

    return f"  {label:<10} {part('genuine', pairs.genuine)}; {part('impostor', pairs.impostor)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testdata", type=Path, default=DEFAULT_TESTDATA)
    parser.add_argument("--margin", type=float, default=0.10)
    args = parser.parse_args()
    root = args.testdata / "faces"

    started = time.perf_counter()
    faces.models()
    loaded = time.perf_counter()
    johns = calibration.embed_people(p for p in (root / "johns").iterdir() if p.is_dir())
    others = calibration.embed_people(root / name for name in HELD_OUT)
    done = time.perf_counter()
    count = sum(map(len, johns.values())) + sum(map(len, others.values()))
    print(f"models loaded in {loaded - started:.2f} s; {count} images encoded in {done - loaded:.1f} s")

    cal = calibration.pair_distances(johns)
    held = calibration.pair_distances(others)
    print("distances")
    print(_spread("johns", cal))
    print(_spread("others", held))

    chosen = calibration.false_accept_first_threshold(cal, margin=args.margin)
    eer = calibration.equal_error_threshold(cal)
    closest = min(cal.impostor)
    print(f"false-accept-first rule (closest impostor {closest:.3f} less {args.margin}): {chosen:.2f}")
    print(f"equal-error threshold on johns: {eer:.3f}")
    for name, threshold in (
        ("chosen", chosen),
        ("equal-error", eer),
        ("dlib customary", 0.6),
        ("in the code (MATCH_THRESHOLD)", faces.MATCH_THRESHOLD),
    ):
        print(f"{name}:")
        print(_rates("johns (calibration)", cal, threshold))
        print(_rates("obama/biden/kit/rose (held out)", held, threshold))
    # the liveness continuity check compares frames with the mean of the session's descriptors
    policy = liveness.Policy()
    size = policy.template_descriptors
    print(f"liveness face template (mean of {size}), at identity_threshold {policy.identity_threshold}:")
    for label, people in (("johns (calibration)", johns), ("obama/biden/kit/rose (held out)", others)):
        pairs = calibration.template_distances(people, size)
        print(_spread("template", pairs) + f"  [{label}]")
        print(_rates(label, pairs, policy.identity_threshold))
    if abs(chosen - faces.MATCH_THRESHOLD) > 1e-9:
        print(f"NOTE: MATCH_THRESHOLD {faces.MATCH_THRESHOLD} differs from the calibrated {chosen:.2f}")


if __name__ == "__main__":
    main()
