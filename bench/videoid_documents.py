"""MRZ read rate and time per read: the document specimens and synthetic documents.

    .venv/bin/python bench/videoid_documents.py [--repeat 3] [--synthetic 8]

Reads every specimen in ``../shared/testdata/documents/`` and ``--synthetic`` rendered TD1/TD3
documents (holders varied, portraits from ``../shared/testdata/faces/``) with the same
``read_document`` a live session uses, ``--repeat`` times each, and prints per document whether
the MRZ came back exactly with all check digits valid, and the time per read (locate + three
tesseract runs + correction + portrait). A read that is wrong makes the exit status 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.documents import FACES, Holder, render  # noqa: E402
from videoid.document.mrz import MRZFormat  # noqa: E402
from videoid.document.reader import load_image_file, read_document  # noqa: E402

DOCUMENTS = REPO / ".." / "shared" / "testdata" / "documents"
SPECIMENS = {
    "100_id-si.jpg": (
        "I<SI<09999100180706966505468<<",
        "6606079F0807276SI<<<<<<<<<<<<0",
        "VZOREC<<TINA<<<<<<<<<<<<<<<<<<",
    ),
    "100_pass-hrv.jpg": (
        "P<HRVSPECIMEN<<SPECIMEN<<<<<<<<<<<<<<<<<<<<<",
        "0070070071HRV8212258F1407019<<<<<<<<<<<<<<06",
    ),
    "53_id-d.jpg": (
        "IDD<<T220001293<<<<<<<<<<<<<<<",
        "6408125<2010315D<<<<<<<<<<<<<4",
        "MUSTERMANN<<ERIKA<<<<<<<<<<<<<",
    ),
    "100_pass-uto.jpg": (
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ),
}
SURNAMES = ["NOVAK", "HORVAT", "KRAJNC", "ZUPANCIC", "MUELLER", "SCHMIDT", "OBRIEN", "DE LA CRUZ"]
GIVEN = ["ANA", "MARKO", "PETRA ZALA", "JOSIP", "ERIKA", "HANS PETER", "SEAN", "MARIA JOSE"]
PORTRAITS = [p for p in sorted(FACES.glob("*/*.jpg"))]


def synthetic(count: int) -> list[tuple[str, object, tuple[str, ...]]]:
    out = []
    for i in range(count):
        fmt = MRZFormat.TD1 if i % 2 else MRZFormat.TD3
        holder = Holder(
            surname=SURNAMES[i % len(SURNAMES)],
            given_names=GIVEN[i % len(GIVEN)],
            document_number=f"{'PABCXYZK'[i % 8]}{1000000 + 7919 * i:07d}{i % 10}",
            birth=date(1950 + 7 * i % 50, 1 + i % 12, 1 + 3 * i % 28),
            expiry=date(2027 + i % 8, 1 + (5 * i) % 12, 1 + (11 * i) % 28),
            sex="FM"[i % 2],
            optional_data="" if i % 3 else f"{123456 + i}",
            portrait=PORTRAITS[i % len(PORTRAITS)] if PORTRAITS else None,
        )
        document = render(fmt, holder)
        out.append((f"synthetic-{fmt}-{i}", document.image, document.lines))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--synthetic", type=int, default=8)
    args = parser.parse_args()
    cases = [(name, load_image_file(DOCUMENTS / name), lines) for name, lines in SPECIMENS.items()]
    cases += synthetic(args.synthetic)
    read_document(cases[0][1], today=date.today())  # warm-up: dlib's detector, the OCR-B templates
    exact = 0
    times: list[float] = []
    print(f"{'document':28} {'exact':>5} {'valid':>5} {'portrait':>8} {'ms/read':>8}")
    for name, image, truth in cases:
        per: list[float] = []
        ok = True
        for _ in range(args.repeat):
            start = time.perf_counter()
            try:
                reading = read_document(image, today=date.today())  # type: ignore[arg-type]
            except Exception as exc:  # a benchmark reports every failure and goes on
                ok, valid, portrait = False, False, False
                print(f"{name:28} failed: {exc}")
                break
            per.append((time.perf_counter() - start) * 1000)
            ok = ok and reading.mrz.lines == truth
            valid, portrait = reading.mrz.valid, reading.portrait is not None
        exact += ok
        times.extend(per)
        median = statistics.median(per) if per else float("nan")
        flags = " ".join(f"{'yes' if v else 'no':>{w}}" for v, w in ((ok, 5), (valid, 5), (portrait, 8)))
        print(f"{name:28} {flags} {median:8.0f}")
    print()
    print(
        f"MRZ read rate: {exact}/{len(cases)} exact with all check digits valid "
        f"({len(SPECIMENS)} specimens + {args.synthetic} synthetic)"
    )
    if times:
        q = statistics.quantiles(times, n=20) if len(times) >= 2 else [times[0]] * 19
        print(
            f"time per read: median {statistics.median(times):.0f} ms, p95 {q[18]:.0f} ms, "
            f"min {min(times):.0f} ms over {len(times)} reads (tesseract {_tesseract()})"
        )
    return 0 if exact == len(cases) else 1


def _tesseract() -> str:
    import pytesseract

    return str(pytesseract.get_tesseract_version())


if __name__ == "__main__":
    sys.exit(main())
