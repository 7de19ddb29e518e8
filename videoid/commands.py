"""``idp videoid …``: operator commands that re-check a video identification's evidence.

They run the same code as a live session: ``read-document`` reads a document image as the
session reads its best document frames; ``compare-faces`` encodes each image's one face with
:func:`videoid.faces.encode` and decides with :func:`videoid.faces.compare`, as the session does
with its best frame and the document portrait. ``add_commands(subparsers)`` registers the group; each
command is one ``add_parser`` call and one ``cmd_*`` function, so more commands slot in beside.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from idp.errors import DocumentError, FaceError


def add_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Register ``idp videoid`` and its commands; ``common`` carries the shared ``--json``."""
    group = subparsers.add_parser("videoid", parents=[common], help="video identification evidence")
    commands = group.add_subparsers(dest="action", required=True)

    p = commands.add_parser(
        "read-document",
        parents=[common],
        help="read an identity document image: MRZ fields, check digits, expiry, portrait",
    )
    p.add_argument("image", type=Path, help="photo or scan of the document (JPEG, PNG, …)")
    p.add_argument("--today", type=date.fromisoformat, help="YYYY-MM-DD the expiry is judged on")
    p.add_argument("--portrait-out", type=Path, help="save the portrait cut-out to this file")
    p.set_defaults(func=cmd_read_document, needs_settings=False)

    p = commands.add_parser(
        "compare-faces",
        parents=[common],
        help="compare the faces of two images (distance, threshold, match)",
        description="Each image must show exactly one face; exit 2 when one does not or is no image.",
    )
    p.add_argument("images", nargs=2, metavar="IMAGE", help="an image file (JPEG, PNG, …)")
    p.set_defaults(func=cmd_compare_faces, needs_settings=False)


def cmd_read_document(args: argparse.Namespace, _settings: object = None) -> None:
    import cv2

    from videoid.document.reader import load_image_file, read_document

    today = args.today or date.today()
    reading = read_document(load_image_file(args.image), today=today)
    if args.portrait_out is not None and reading.portrait is not None:
        if not cv2.imwrite(str(args.portrait_out), reading.portrait.image):
            raise DocumentError(f"cannot write the portrait to {args.portrait_out}")
    m = reading.mrz
    data = {
        "ok": True,
        "valid": m.valid,
        "format": m.format.value,
        "document_code": m.document_code,
        "document_type": m.document_type,
        "issuing_state": m.issuing_state,
        "surname": m.surname,
        "given_names": m.given_names,
        "document_number": m.document_number,
        "nationality": m.nationality,
        "birth_date": reading.birth_date.isoformat() if reading.birth_date else None,
        "sex": m.sex,
        "expiry_date": reading.expiry_date.isoformat() if reading.expiry_date else None,
        "expired": reading.expired,
        "today": today.isoformat(),
        "optional_data": m.optional_data,
        "optional_data_2": m.optional_data_2,
        "checks": [
            {"name": c.name, "expected": c.expected, "computed": c.computed, "valid": c.valid}
            for c in m.checks
        ],
        "mrz": list(m.lines),
        "corrections": [
            {
                "field": c.field,
                "position": c.position,
                "read": c.read,
                "corrected": c.corrected,
                "reason": c.reason,
            }
            for c in m.corrections
        ],
        "portrait_found": reading.portrait is not None,
        "portrait_box": list(reading.portrait.box) if reading.portrait else None,
        "portrait_out": str(args.portrait_out) if args.portrait_out and reading.portrait else None,
    }
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    expiry = data["expiry_date"] or f"unreadable ({m.expiry_date})"
    rows = [
        ("document", f"{m.format.value}, code {m.document_code} ({_kind(m.document_type)})"),
        ("issuing state", m.issuing_state),
        ("surname", m.surname),
        ("given names", m.given_names),
        ("document number", m.document_number),
        ("nationality", m.nationality),
        ("birth date", data["birth_date"] or f"unreadable ({m.birth_date})"),
        ("sex", m.sex),
        ("expiry date", f"{expiry} ({'EXPIRED' if reading.expired else 'valid'} on {today.isoformat()})"),
    ]
    if m.optional_data:
        rows.append(("optional data", m.optional_data))
    if m.optional_data_2:
        rows.append(("optional data 2", m.optional_data_2))
    for c in m.checks:
        verdict = "valid" if c.valid else f"INVALID (computed {c.computed})"
        rows.append((f"check {c.name}", f"{c.expected} {verdict}"))
    found = "found" if reading.portrait else "none"
    if reading.portrait and args.portrait_out:
        found += f", saved to {args.portrait_out}"
    rows.append(("portrait", found))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    print("\n".join(["MRZ", *m.lines]))
    if m.corrections:
        print(f"OCR corrections: {len(m.corrections)}")


def _kind(document_type: str) -> str:
    return {
        "P": "passport",
        "I": "identity card",
        "A": "identity card",
        "C": "identity card",
        "V": "visa",
    }.get(document_type, "other")


def cmd_compare_faces(args: argparse.Namespace, _settings: object = None) -> None:
    """``idp videoid compare-faces IMAGE IMAGE``: raises :class:`idp.errors.FaceError` on bad input."""
    from videoid import faces

    encoded = []
    for path in args.images:
        image = faces.read_image(path)
        try:
            encoded.append(faces.encode(image))
        except FaceError as exc:
            raise FaceError(exc.code, f"{path}: {exc}") from None
    result = faces.compare(encoded[0].embedding, encoded[1].embedding)
    data: dict[str, Any] = {
        "distance": round(result.distance, 4),
        "threshold": result.threshold,
        "match": result.match,
        "faces": [{"image": path, **e.face.as_dict()} for path, e in zip(args.images, encoded, strict=True)],
    }
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for path, e in zip(args.images, encoded, strict=True):
        b = e.face.box
        print(f"{path}: one face at ({b.left}, {b.top})-({b.right}, {b.bottom}), {b.width}x{b.height} px")
    verdict = "same person" if result.match else "different people"
    print(f"distance {result.distance:.4f}, threshold {result.threshold:.2f}: {verdict}")
