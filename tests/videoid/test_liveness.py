"""The liveness state machine on synthetic observation sequences (15 observations a second)."""

from __future__ import annotations

import collections
from collections.abc import Iterable

import numpy as np
import pytest

from videoid.liveness import (
    Challenge,
    Decision,
    LivenessSession,
    Observation,
    Policy,
    Reason,
    Verdict,
    choose_challenges,
)

DT = 1 / 15
RNG = np.random.default_rng(11)
BASE_SHAPE = RNG.normal(0, 0.5, (68, 2))
PERSON = RNG.normal(0, 0.09, 128)
OTHER = RNG.normal(0, 0.09, 128)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def frames(self, seconds: float) -> Iterable[float]:
        for _ in range(round(seconds / DT)):
            self.t += DT
            yield self.t


def live(t: float, *, yaw: float = 0.0, ear: float = 0.3, embedding: np.ndarray | None = None) -> Observation:
    """A live face: landmarks that move a little, a fresh camera frame every time."""
    return Observation(
        t=t,
        face=True,
        yaw=yaw + RNG.normal(0, 1.5),
        ear=ear + RNG.normal(0, 0.01),
        shape=BASE_SHAPE + RNG.normal(0, 0.05, BASE_SHAPE.shape),
        embedding=embedding,
        frame_digest=RNG.bytes(16),
    )


def same_person() -> np.ndarray:
    return PERSON + RNG.normal(0, 0.01, 128)


def feed(session: LivenessSession, observations: Iterable[Observation]) -> Decision:
    decision = session.decision
    for obs in observations:
        decision = session.observe(obs)
        if decision.verdict is not Verdict.IN_PROGRESS:
            break
    return decision


def frontal(clock: Clock, seconds: float = 0.5, *, first_embedding: bool = False) -> list[Observation]:
    """Frontal frames; with ``first_embedding`` the first of them carry the descriptors that
    form the face template."""
    obs = [live(t) for t in clock.frames(seconds)]
    if first_embedding:
        for i in range(Policy().template_descriptors):
            obs[i] = live(obs[i].t, embedding=same_person())
    return obs


def turn(clock: Clock, sign: float) -> list[Observation]:
    """A head turn: out to 35 degrees and back over a second (+ = the person's left)."""
    ramp = [0, 8, 16, 24, 30, 35, 35, 35, 30, 22, 14, 6, 0, 0, 0]
    return [live(t, yaw=sign * a) for t, a in zip(clock.frames(1.0), ramp, strict=True)]


def blink(clock: Clock) -> list[Observation]:
    ears = [0.3, 0.3, 0.3, 0.3, 0.22, 0.08, 0.06, 0.15, 0.28, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    return [live(t, ear=e) for t, e in zip(clock.frames(1.0), ears, strict=True)]


def act(clock: Clock, challenge: Challenge) -> list[Observation]:
    if challenge is Challenge.BLINK:
        return blink(clock)
    return turn(clock, +1 if challenge is Challenge.TURN_LEFT else -1)


def closing(clock: Clock) -> list[Observation]:
    return [live(t, embedding=same_person()) for t in clock.frames(DT)]


@pytest.mark.parametrize(
    "challenges",
    [
        (Challenge.TURN_LEFT, Challenge.BLINK),
        (Challenge.BLINK, Challenge.TURN_RIGHT),
        (Challenge.TURN_RIGHT, Challenge.TURN_LEFT),
        (Challenge.TURN_LEFT, Challenge.TURN_RIGHT, Challenge.BLINK),
    ],
)
def test_a_live_person_doing_the_challenges_passes(challenges: tuple[Challenge, ...]) -> None:
    clock = Clock()
    session = LivenessSession(challenges, started_at=0.0)
    assert session.wants_embedding
    observations = frontal(clock, first_embedding=True)
    for challenge in challenges:
        observations += act(clock, challenge)
    decision = feed(session, observations)
    assert decision.verdict is Verdict.IN_PROGRESS  # all done, but the closing descriptor is missing
    assert decision.passed == challenges
    assert session.current is None and session.wants_embedding
    decision = feed(session, closing(clock))
    assert decision.verdict is Verdict.PASSED, decision
    assert decision.reason is None
    assert decision.identity_distance is not None and decision.identity_distance < 0.6
    assert decision.motion > Policy().static_motion
    assert not session.wants_embedding


def test_the_wrong_turn_does_not_count_and_times_out() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT], started_at=0.0)
    observations = frontal(clock, first_embedding=True)
    while clock.t < 16:
        observations += turn(clock, -1)  # the person's right, again and again
    decision = feed(session, observations)
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.TIMEOUT  # it moved: not a photo
    assert decision.message == "'turn_left' was not done within 15 s"
    assert decision.passed == ()


def test_a_turn_counts_only_after_the_face_was_frontal() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT], started_at=0.0)
    # already turned when the step starts: holding it is not a turn
    feed(session, [live(t, yaw=35) for t in clock.frames(2)])
    assert session.decision.passed == ()
    feed(session, frontal(clock) + turn(clock, +1))
    assert session.decision.passed == (Challenge.TURN_LEFT,)


def test_one_odd_yaw_is_not_a_turn() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_RIGHT], started_at=0.0)
    spikes = [live(t, yaw=-40 if i % 5 == 0 else 0) for i, t in enumerate(clock.frames(3))]
    assert feed(session, spikes).passed == ()


def test_a_long_eye_closure_is_not_a_blink() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    observations = frontal(clock) + [live(t, ear=0.05) for t in clock.frames(2)] + frontal(clock)
    assert feed(session, observations).passed == ()
    assert feed(session, blink(clock)).passed == (Challenge.BLINK,)


def test_a_replayed_still_fails_on_identical_frames() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    digest = b"\x01" * 16
    shape = BASE_SHAPE + RNG.normal(0, 0.05, BASE_SHAPE.shape)
    observations = [Observation(t, True, 0.0, 0.3, shape, None, digest) for t in clock.frames(2)]
    decision = feed(session, observations)
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.REPLAYED_FRAMES
    assert decision.message == "10 identical frames in a row"


def test_a_few_repeated_frames_are_tolerated() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    observations = []
    for i, t in enumerate(clock.frames(3)):
        obs = live(t)
        observations.append(Observation(t, True, obs.yaw, obs.ear, obs.shape, None, bytes([i // 5]) * 16))
    assert feed(session, observations).verdict is Verdict.IN_PROGRESS


def test_frozen_landmarks_fail_as_a_still_image() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT], started_at=0.0)
    # fresh frames (a camera's noise changes the digest) but the landmarks never move
    observations = [Observation(t, True, 0.0, 0.3, BASE_SHAPE, None, RNG.bytes(16)) for t in clock.frames(3)]
    failed_at = next(o.t for o in observations if session.observe(o).verdict is Verdict.FAILED)
    assert 2.0 <= failed_at - observations[0].t < 2.0 + 2 * DT  # as soon as the window is full
    decision = session.decision
    assert decision.reason is Reason.STATIC_FACE
    assert "did not move for 2.0 s" in decision.message


def test_a_photo_held_to_the_camera_fails_as_static_at_the_timeout() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    # detector jitter on a photo: landmarks wobble a little, nothing else happens
    observations = [
        Observation(
            t, True, RNG.normal(0, 2), 0.3 + RNG.normal(0, 0.005), BASE_SHAPE + RNG.normal(0, 0.01, (68, 2))
        )
        for t in clock.frames(16)
    ]
    decision = feed(session, observations)
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.STATIC_FACE
    assert decision.motion < Policy().static_motion
    assert "no blink and no natural motion" in decision.message


def test_a_different_face_fails() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT, Challenge.BLINK], started_at=0.0)
    observations = frontal(clock, first_embedding=True) + turn(clock, +1)
    observations += [live(t, embedding=OTHER) for t in clock.frames(2 * DT)]  # two descriptors
    decision = feed(session, observations)
    assert decision.verdict is Verdict.FAILED
    assert decision.reason is Reason.FACE_CHANGED
    assert decision.identity_distance is not None and decision.identity_distance > 0.6


def test_one_smeared_descriptor_is_set_aside_and_checked_again() -> None:
    """A single far descriptor (a frame the codec smeared) does not fail the person; the next
    good frame's descriptor is asked for at once, and the session cannot pass before it."""
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT], started_at=0.0)
    feed(session, frontal(clock, first_embedding=True))
    decision = feed(session, [live(t, embedding=OTHER) for t in clock.frames(DT)])
    assert decision.verdict is Verdict.IN_PROGRESS
    assert session.wants_embedding
    decision = feed(session, turn(clock, +1))
    assert session.current is None and decision.verdict is Verdict.IN_PROGRESS  # still unconfirmed
    decision = feed(session, [live(t, embedding=same_person()) for t in clock.frames(DT)])
    assert decision.verdict is Verdict.PASSED, decision


def test_a_poor_first_frame_does_not_fail_the_person() -> None:
    """The session's first descriptor far from the person's next ones (the stream's first
    frames, a blurred one): it is left out of the template instead of failing the session."""
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT], started_at=0.0)
    poor = PERSON + RNG.normal(0, 0.07, 128)  # about 0.8 from the person's other frames
    assert np.linalg.norm(poor - PERSON) > 0.6
    observations = frontal(clock)
    observations[0] = live(observations[0].t, embedding=poor)
    for i in range(1, 1 + Policy().template_descriptors):
        observations[i] = live(observations[i].t, embedding=same_person())
    decision = feed(session, observations + turn(clock, +1) + closing(clock))
    assert decision.verdict is Verdict.PASSED, decision
    assert decision.restarts == 0
    assert session.anchored_at == observations[1].t


def test_the_template_waits_for_descriptors_that_agree() -> None:
    """Until the template's descriptors agree, the session asks for one on every good frame and
    cannot pass."""
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    assert session.wants_embedding and session.anchored_at is None
    feed(session, [live(t, embedding=same_person()) for t in clock.frames(2 * DT)])
    assert session.wants_embedding and session.anchored_at is None
    decision = feed(session, blink(clock))
    assert decision.verdict is Verdict.IN_PROGRESS and session.current is None
    decision = feed(session, closing(clock))  # the template's third descriptor
    assert decision.verdict is Verdict.IN_PROGRESS and session.anchored_at is not None
    decision = feed(session, closing(clock))  # and the closing one, compared with it
    assert decision.verdict is Verdict.PASSED, decision


def test_another_face_while_the_template_forms_starts_it_again() -> None:
    """A face that gives way to another before the template formed: the template is the new
    face's, the anchor moves to it, and a step done before it is done again."""
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT, Challenge.BLINK], started_at=0.0)
    observations = [live(t, embedding=OTHER) for t in clock.frames(DT)] + frontal(clock) + turn(clock, +1)
    feed(session, observations)
    assert session.current is Challenge.BLINK  # done before the template formed
    after = [live(t, embedding=same_person()) for t in clock.frames(Policy().template_descriptors * DT)]
    decision = feed(session, after)
    assert session.anchored_at == after[0].t
    assert decision.restarts == 1 and decision.passed == ()
    assert session.current is Challenge.TURN_LEFT
    decision = feed(session, frontal(clock) + turn(clock, +1) + blink(clock) + closing(clock))
    assert decision.verdict is Verdict.PASSED, decision


def test_leaving_the_frame_restarts_the_step_and_asks_for_a_new_descriptor() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.TURN_LEFT, Challenge.BLINK], started_at=0.0)
    feed(session, frontal(clock, first_embedding=True) + turn(clock, +1))
    assert session.current is Challenge.BLINK
    assert not session.wants_embedding
    # eyes closed, then the face leaves for a second: the half-done blink is forgotten
    feed(session, frontal(clock) + [live(t, ear=0.05) for t in clock.frames(0.2)])
    feed(session, [Observation(t, face=False) for t in clock.frames(1.0)])
    decision = feed(session, [live(t, ear=0.3) for t in clock.frames(0.5)])
    assert decision.restarts == 1
    assert decision.passed == (Challenge.TURN_LEFT,)  # the done step stays done
    assert session.current is Challenge.BLINK
    assert session.wants_embedding  # whoever came back is checked


def test_a_missed_detection_is_not_leaving() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    observations = (
        frontal(clock) + [Observation(t, face=False) for t in clock.frames(2 * DT)] + frontal(clock)
    )
    assert feed(session, observations).restarts == 0


def test_the_session_times_out() -> None:
    clock = Clock()
    policy = Policy(session_timeout=5, step_timeout=4)
    session = LivenessSession([Challenge.TURN_LEFT, Challenge.TURN_RIGHT], started_at=0.0, policy=policy)
    feed(session, frontal(clock, 3) + turn(clock, +1))
    decision = feed(session, frontal(clock, 3))
    assert decision.verdict is Verdict.FAILED and decision.reason is Reason.TIMEOUT
    assert decision.message == "the session took longer than 5 s"


def test_a_final_decision_does_not_change() -> None:
    clock = Clock()
    session = LivenessSession([Challenge.BLINK], started_at=0.0)
    frozen = [Observation(t, True, 0.0, 0.3, BASE_SHAPE) for t in clock.frames(3)]
    first = feed(session, frozen)
    assert first.verdict is Verdict.FAILED
    assert feed(session, blink(clock) + closing(clock)) == first


def test_time_must_not_go_back() -> None:
    session = LivenessSession([Challenge.BLINK], started_at=10.0)
    session.observe(Observation(11.0, face=False))
    with pytest.raises(ValueError, match="time order"):
        session.observe(Observation(10.5, face=False))


def test_challenges_are_distinct_and_every_order_occurs() -> None:
    orders = collections.Counter(choose_challenges() for _ in range(600))
    assert all(len(set(o)) == 2 for o in orders)
    assert len(orders) == 6  # 3 x 2 ordered pairs, each ~100 times
    assert set(choose_challenges(3)) == set(Challenge)
    for wrong in (0, 4):
        with pytest.raises(ValueError, match=r"count must be 1\.\.3"):
            choose_challenges(wrong)
    with pytest.raises(ValueError, match="at least one challenge"):
        LivenessSession([], started_at=0.0)
