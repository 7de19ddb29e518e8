"""``idp videoid compare-faces``, run as an operator runs it: one subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.videoid.testdata import FACES
from videoid import faces

OBAMA_1, OBAMA_2, BIDEN = FACES / "obama" / "1.jpg", FACES / "obama" / "2.jpg", FACES / "biden" / "2.jpg"


def idp(tmp_path: Path, *args: str | Path, code: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_VAR_DIR=str(tmp_path / "var"), IDP_SECRET_KEY="cli-secret-" + "f" * 40)
    done = subprocess.run(
        [sys.executable, "-m", "idp.cli", *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == code, done
    return done


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def test_same_person_json(tmp_path: Path) -> None:
    out = as_json(idp(tmp_path, "videoid", "compare-faces", OBAMA_1, OBAMA_2, "--json", code=0))
    assert out["match"] is True
    assert out["threshold"] == faces.MATCH_THRESHOLD
    assert 0 < out["distance"] <= faces.MATCH_THRESHOLD
    assert [f["image"] for f in out["faces"]] == [str(OBAMA_1), str(OBAMA_2)]
    box = out["faces"][0]["box"]
    assert box["right"] > box["left"] and box["bottom"] > box["top"]


def test_different_people_human_output(tmp_path: Path) -> None:
    done = idp(tmp_path, "videoid", "compare-faces", OBAMA_1, BIDEN, code=0)
    assert "different people" in done.stdout
    assert f"threshold {faces.MATCH_THRESHOLD:.2f}" in done.stdout
    assert done.stdout.count("one face at") == 2
    # --json before the group works as it does for every other command
    out = as_json(idp(tmp_path, "--json", "videoid", "compare-faces", OBAMA_1, BIDEN, code=0))
    assert out["match"] is False and out["distance"] > faces.MATCH_THRESHOLD


def test_not_an_image(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture at all")
    out = as_json(idp(tmp_path, "videoid", "compare-faces", text, OBAMA_1, "--json", code=2))
    assert out == {
        "ok": False,
        "error": "unreadable_image",
        "message": f"{text}: not an image OpenCV can decode (20 bytes)",
    }
    done = idp(tmp_path, "videoid", "compare-faces", OBAMA_1, tmp_path / "missing.png", code=2)
    assert "cannot read" in done.stderr and "missing.png" in done.stderr
    assert done.stdout == ""


def test_no_face_names_the_image(tmp_path: Path) -> None:
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 300, 3), 200, dtype=np.uint8))
    out = as_json(idp(tmp_path, "videoid", "compare-faces", OBAMA_1, wall, "--json", code=2))
    assert out["error"] == "no_face"
    assert out["message"] == f"{wall}: no face found in the image"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "the following arguments are required: IMAGE"),
        ((str(OBAMA_1),), "the following arguments are required: IMAGE"),
        ((str(OBAMA_1), str(OBAMA_2), str(BIDEN)), "unrecognized arguments"),
    ],
)
def test_needs_exactly_two_images(tmp_path: Path, args: tuple[str, ...], complaint: str) -> None:
    done = idp(tmp_path, "videoid", "compare-faces", *args, code=2)
    assert complaint in done.stderr
