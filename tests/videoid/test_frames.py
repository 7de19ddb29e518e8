"""The frame pipeline on real frames: the test clip, a photo attack, a face swap, the queue of one."""

from __future__ import annotations

import asyncio
import threading

import cv2
import numpy as np
import pytest

from idp.errors import FaceError
from tests.videoid.testdata import CLIP, FACES
from videoid import faces, landmarks
from videoid.frames import STILL_GAP, FrameAnalyser, FramePipeline, LatestFrame, PipelineClosedError, Still
from videoid.liveness import Challenge, Decision, LivenessSession, Policy, Reason, Verdict

FPS = 15  # the clip is 30 fps; every other frame, as a session analyses about 15 a second
SINGER = range(85, 213)  # the shot where the speaker faces the camera, turning his head


def to_webcam(frame: np.ndarray) -> np.ndarray:
    """640x360 padded to 640x480, the size the WebRTC session receives."""
    return cv2.copyMakeBorder(frame, 60, 60, 0, 0, cv2.BORDER_CONSTANT)


@pytest.fixture(scope="session")
def clip() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in SINGER and index % 2 == 1:
            frames.append(to_webcam(frame))
        index += 1
    capture.release()
    assert len(frames) == 64
    return frames


def run(
    frames: list[np.ndarray], challenges: tuple[Challenge, ...], policy: Policy | None = None
) -> tuple[Decision, FrameAnalyser]:
    """Frames through the analyser and the state machine, one by one (what the worker does)."""
    analyser = FrameAnalyser()
    session = LivenessSession(challenges, started_at=0.0, policy=policy)
    for i, frame in enumerate(frames):
        analysis = analyser.analyse(frame, i / FPS, want_embedding=session.wants_embedding)
        if session.observe(analysis.observation).verdict is not Verdict.IN_PROGRESS:
            break
    return session.decision, analyser


def noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera filming a print: sensor noise and a pixel of shake; the picture itself is still."""
    shaken = np.roll(frame, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(0, 1))
    return np.clip(shaken + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)


def test_the_real_clip_passes_its_head_turns(clip: list[np.ndarray], face_models: faces.FaceModels) -> None:
    decision, analyser = run(clip, (Challenge.TURN_RIGHT, Challenge.TURN_LEFT))
    assert decision.verdict is Verdict.PASSED, decision
    assert decision.passed == (Challenge.TURN_RIGHT, Challenge.TURN_LEFT)
    assert decision.motion > 2 * Policy().static_motion
    assert decision.identity_distance is not None and decision.identity_distance < 0.6
    assert 2 <= analyser.embeddings <= 4  # descriptors on a few chosen frames, not on every frame
    stills = analyser.stills
    assert 1 <= len(stills) <= 5
    moments = [int(s.t // STILL_GAP) for s in stills]
    assert len(set(moments)) == len(moments)  # one still per moment
    assert [s.quality for s in stills] == sorted((s.quality for s in stills), reverse=True)
    assert all(abs(s.yaw or 99) <= 15 and s.ear >= 0.18 for s in stills)


def test_kept_stills_are_the_best_of_different_moments() -> None:
    """A long straight look then sharper frames of a head turn: the straight look keeps its place
    (it is what a document photo shows), and a moment keeps only its best still."""
    face = faces.Face(faces.Box(0, 0, 100, 100), 1.0, np.zeros((68, 2)))
    frame = np.zeros((4, 4, 3), np.uint8)
    analyser = FrameAnalyser()

    def offer(t: float, sharp: float) -> None:
        analyser._keep(Still(t, frame, face, sharp, 0.0, 0.3))

    for i in range(30):  # 1 s looking straight at the camera, 30 fps
        offer(i / 30, 300 + i)
    assert [s.t for s in analyser.stills] == [29 / 30]  # one moment, its best frame
    for i in range(90):  # 3 s of sharper frames
        offer(1.5 + i / 30, 600 + i % 7)
    kept = analyser.stills
    assert 3 <= len(kept) <= analyser.keep_stills
    assert kept[-1].t == 29 / 30  # the straight look is still there, last by quality
    moments = [int(s.t // STILL_GAP) for s in kept]
    assert len(set(moments)) == len(moments)


def test_the_real_clip_is_not_judged_a_photo(clip: list[np.ndarray], face_models: faces.FaceModels) -> None:
    # the speaker never blinks clearly in this shot: the blink step stays open, nothing fails
    decision, _ = run(clip, (Challenge.BLINK,))
    assert decision.verdict is Verdict.IN_PROGRESS, decision
    assert decision.motion > 2 * Policy().static_motion


def test_a_still_repeated_as_frames_fails(clip: list[np.ndarray], face_models: faces.FaceModels) -> None:
    still = clip[10]
    decision, _ = run([still] * 30, (Challenge.BLINK, Challenge.TURN_LEFT))
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.REPLAYED_FRAMES


def test_a_photo_filmed_by_a_camera_fails(clip: list[np.ndarray], face_models: faces.FaceModels) -> None:
    rng = np.random.default_rng(3)
    policy = Policy(step_timeout=3, session_timeout=10)
    frames = [noisy(clip[40], rng) for _ in range(4 * FPS)]
    decision, _ = run(frames, (Challenge.TURN_LEFT, Challenge.BLINK), policy)
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.STATIC_FACE, decision
    assert decision.motion < policy.static_motion


def framed(path: str) -> np.ndarray:
    """A photo of the shared set on a 640x480 frame."""
    photo = faces.read_image(FACES / path)
    scale = 400 / photo.shape[0]
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:, :560]
    canvas = np.full((480, 640, 3), 40, dtype=np.uint8)
    canvas[40 : 40 + photo.shape[0], 40 : 40 + photo.shape[1]] = photo
    return canvas


def test_another_face_taking_over_fails(face_models: faces.FaceModels) -> None:
    rng = np.random.default_rng(5)
    first, second = framed("obama/1.jpg"), framed("biden/2.jpg")
    frames = [noisy(first, rng) for _ in range(10)] + [noisy(second, rng) for _ in range(10)]
    decision, analyser = run(frames, (Challenge.BLINK,))
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.FACE_CHANGED, decision
    # the first face's template (three frames), then the new face as soon as it appeared, and
    # once more to confirm it
    assert analyser.embeddings == Policy().template_descriptors + 2


async def test_stills_from_before_the_anchor_are_dropped(face_models: faces.FaceModels) -> None:
    """One face for two frames, then another for good: the template forms on the second, and
    the first face's still, from before the anchor, is gone from what the document match sees."""
    rng = np.random.default_rng(7)
    frames = [noisy(framed("obama/1.jpg"), rng) for _ in range(2)]
    frames += [noisy(framed("biden/2.jpg"), rng) for _ in range(6)]
    session = LivenessSession((Challenge.BLINK,), started_at=0.0, policy=Policy(frozen_window=100))
    pipeline = FramePipeline(session)
    worker = asyncio.create_task(pipeline.run())
    for i, frame in enumerate(frames):  # one frame a moment (STILL_GAP), each analysed in turn
        pipeline.push(frame, i * 0.6)
        while pipeline.stats.analysed <= i:
            await asyncio.sleep(0.01)
    pipeline.close()
    decision = await worker
    assert decision.verdict is Verdict.IN_PROGRESS, decision  # no blink from photos; nothing failed
    assert session.anchored_at == pytest.approx(1.2)
    assert pipeline.stills and all(s.t >= 1.2 for s in pipeline.stills)


def test_a_mirrored_frame_turns_the_other_way(clip: list[np.ndarray], face_models: faces.FaceModels) -> None:
    turned = 0
    for frame in clip[:12]:  # the speaker looks to his left at the start of the shot
        face = faces.detect_faces(frame, retry_upsampled=False)[0]
        yaw = landmarks.head_yaw(face.landmarks, 640, 480)
        mirror = faces.detect_faces(cv2.flip(frame, 1), retry_upsampled=False)[0]
        mirrored = landmarks.head_yaw(mirror.landmarks, 640, 480)
        assert yaw is not None and mirrored is not None
        if yaw > 20:
            turned += 1
            assert mirrored < -10, (yaw, mirrored)
    assert turned >= 6


def test_garbage_frames_are_refused(face_models: faces.FaceModels) -> None:
    analyser = FrameAnalyser()
    for garbage in (np.zeros((480, 640), dtype=np.float64), np.zeros((3,), dtype=np.uint8)):
        with pytest.raises(FaceError) as caught:
            analyser.analyse(garbage, 0.0, want_embedding=True)  # type: ignore[arg-type]
        assert caught.value.code == "unreadable_image"
    blank = analyser.analyse(np.zeros((480, 640, 3), dtype=np.uint8), 0.0, want_embedding=True)
    assert blank.face is None and not blank.observation.face


async def test_the_queue_of_one_keeps_the_newest_frame() -> None:
    queue = LatestFrame()
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(5)]
    for i, frame in enumerate(frames):
        queue.put(frame, float(i))
    frame, t = await queue.get()
    assert t == 4.0 and frame[0, 0, 0] == 4
    assert (queue.received, queue.dropped) == (5, 4)
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing waiting: get() waits for the next put
    queue.put(frames[1], 9.0)
    assert (await waiting)[1] == 9.0
    assert queue.dropped == 4
    queue.close()
    with pytest.raises(PipelineClosedError):
        await queue.get()
    with pytest.raises(PipelineClosedError):
        queue.put(frames[0], 10.0)


async def test_the_pipeline_drops_frames_rather_than_fall_behind(
    clip: list[np.ndarray], face_models: faces.FaceModels
) -> None:
    threads: set[int] = set()
    loop = asyncio.get_running_loop()
    progress = asyncio.Event()

    class Recording(FrameAnalyser):
        def analyse(self, frame: np.ndarray, t: float, *, want_embedding: bool):  # type: ignore[no-untyped-def]
            threads.add(threading.get_ident())
            try:
                return super().analyse(frame, t, want_embedding=want_embedding)
            finally:
                loop.call_soon_threadsafe(progress.set)

    session = LivenessSession((Challenge.TURN_RIGHT, Challenge.TURN_LEFT), started_at=0.0)
    pipeline = FramePipeline(session, analyser=Recording())
    worker = asyncio.create_task(pipeline.run())
    # a camera three times faster than the analysis: three frames per analysed one
    for start in range(0, len(clip) - 2, 3):
        progress.clear()
        for i in range(start, start + 3):
            pipeline.push(clip[i], i / (3 * FPS))
        await progress.wait()
        if worker.done():
            break
    pipeline.close()
    decision = await worker
    queue = pipeline.queue
    assert queue.dropped > 0
    # every frame was either analysed, dropped, or is the one still waiting
    assert queue.received - queue.dropped - pipeline.stats.analysed in (0, 1)
    assert pipeline.stats.analysed > 5
    assert threading.get_ident() not in threads  # never on the event loop's thread
    assert decision.verdict in (Verdict.IN_PROGRESS, Verdict.PASSED)
