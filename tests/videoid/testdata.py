"""Where the shared test images and video are (beside the checkout, never copied in)."""

from __future__ import annotations

from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata"
FACES = TESTDATA / "faces"
CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
NAMED = ("obama", "biden", "kit_harington", "rose_leslie")
