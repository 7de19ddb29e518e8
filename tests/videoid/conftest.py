"""Fixtures for the video identification tests: the shared test data, models loaded once, and
consent on their WebRTC connections that outlasts a stall of the test process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServedApp, serve, settings_factory_for
from tests.support.videoid_client import consent_outlasting_stalls
from tests.videoid.testdata import FACES, NAMED
from videoid import calibration, faces
from videoid.faces import Embedding
from videoid.liveness import Challenge

# what the speaker in the test clip does: turns to his right, then to his left
CLIP_CHALLENGES = (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)


@pytest.fixture(scope="module", autouse=True)
def consent_outlasts_stalls() -> Iterator[None]:
    """Both ends of these tests' connections run in this process: see consent_outlasting_stalls.
    Module-scoped, so it holds for as long as the module's served app does."""
    with consent_outlasting_stalls():
        yield


@pytest.fixture(scope="session")
def face_models() -> faces.FaceModels:
    return faces.models()


@pytest.fixture(scope="session")
def named_people(face_models: faces.FaceModels) -> dict[str, list[Embedding]]:
    """Descriptors of the four named people's photos (2-3 each)."""
    return calibration.embed_people(FACES / name for name in NAMED)


@pytest.fixture(scope="session")
def johns(face_models: faces.FaceModels) -> dict[str, list[Embedding]]:
    """Descriptors of the calibration set: 5 people x 11 crops."""
    return calibration.embed_people(p for p in (FACES / "johns").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def videoid_app(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, tls: tuple[Path, Path]
) -> Iterator[ServedApp]:
    """The app on SQLite for the live sessions (each costs seconds of video; the storage they use
    is tested on both engines in test_records.py), the challenges fixed to what the clip does."""
    directory = tmp_path_factory.mktemp("videoid-e2e")
    shutil.copy(sqlite_template, directory / "idp.db")
    url = f"sqlite+aiosqlite:///{directory / 'idp.db'}"
    with serve(settings_factory_for(url, directory), tls=tls, outbox=directory / "mail") as app:
        app.state.videoid.challenges = lambda: CLIP_CHALLENGES
        yield app


@pytest.fixture(scope="module")
def performer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("performer")
