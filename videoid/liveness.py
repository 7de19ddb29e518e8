"""Active liveness: a random challenge verified from per-frame observations (I/O-free).

Presentation attack detection in the sense of ISO/IEC 30107-1: the person is asked for a short
random sequence of actions (:func:`choose_challenges`, drawn with :mod:`secrets`) that a photo
cannot perform and a replayed recording is unlikely to contain in that order: turn the head to
their left or right (yaw from the landmarks, :func:`videoid.landmarks.head_yaw`) and blink (eye
aspect ratio, Soukupová and Čech 2016). :class:`LivenessSession` is fed one
:class:`Observation` per analysed frame and answers in progress, passed or failed with a reason:

- ``replayed_frames``: bit-identical frames in a row (a still injected as a virtual camera);
- ``static_face``: the landmarks did not move at all for a while (a still image), or the session
  ran out of time with no natural motion and no blink (a photo held to the camera);
- ``face_changed``: two descriptors in a row, taken during the session, are each further than
  :attr:`Policy.identity_threshold` from the session's face template (someone else took over);
- ``timeout``: a step or the whole session took too long.

The template is the mean of the face descriptors the session accepted. It begins with the first
:attr:`Policy.template_descriptors` descriptors of consecutive good frames that lie within the
threshold of one another: single video frames of one person (compression, motion blur, a small
face) lie up to 0.70 apart, so one poor first frame compared alone failed the person it showed
(about one session in ten on the test clip), while the mean of three lay within 0.54 of each
of that person's frames there, and stays 0.64 and more from another person's photos. A descriptor
that disagrees while the template forms starts it again from the frames that agree; the
template's first frame is then the session's anchor (:attr:`LivenessSession.anchored_at`): a
step done before it is done again, and only stills from it on stand for the face. A single far
descriptor later (a frame the codec smeared) is set aside, and the next good frame's descriptor
is asked for at once to confirm or clear it.

A face that leaves the frame (for longer than a detector's occasional miss) restarts the current
step, and the next descriptor is checked against the template before anything more counts.
"""

from __future__ import annotations

import math
import secrets
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from videoid import faces, landmarks
from videoid.faces import Embedding

Shape = npt.NDArray[np.float64]


class Challenge(StrEnum):
    TURN_LEFT = "turn_left"  # the person's own left
    TURN_RIGHT = "turn_right"
    BLINK = "blink"


class Verdict(StrEnum):
    IN_PROGRESS = "in_progress"
    PASSED = "passed"
    FAILED = "failed"


class Reason(StrEnum):
    REPLAYED_FRAMES = "replayed_frames"
    STATIC_FACE = "static_face"
    FACE_CHANGED = "face_changed"
    TIMEOUT = "timeout"


def choose_challenges(count: int = 2) -> tuple[Challenge, ...]:
    """``count`` distinct challenges in a random order (CSPRNG: the order must not be guessable)."""
    pool = list(Challenge)
    if not 1 <= count <= len(pool):
        raise ValueError(f"count must be 1..{len(pool)}, got {count}")
    chosen: list[Challenge] = []
    while len(chosen) < count:
        chosen.append(pool.pop(secrets.randbelow(len(pool))))
    return tuple(chosen)


@dataclass(slots=True, frozen=True)
class Policy:
    """Thresholds of the checks; times in seconds, angles in degrees."""

    session_timeout: float = 45.0
    step_timeout: float = 15.0
    frontal_yaw: float = 15.0  # a turn counts only after the step saw the face frontal
    turn_yaw: float = 25.0
    turn_hold: int = 2  # consecutive observations past turn_yaw (one odd solvePnP fit is noise)
    blink_closed_ratio: float = 0.65  # EAR under this share of the open level: eyes closed
    blink_open_ratio: float = 0.85  # back over this share: open again
    blink_max_closed: float = 1.0  # a blink is short; a longer closure does not count
    absence_grace: float = 0.4  # no face for longer than this restarts the step
    identical_frames: int = 10
    frozen_window: float = 2.0  # landmarks this still for this long: a still image
    frozen_motion: float = 0.002
    static_motion: float = 0.03  # RMS non-rigid motion under which a timed-out session was a photo
    # Same-session continuity, not the document match: on the calibration stills another person
    # lies 0.64 and more from the mean of three of a person's descriptors (0.66 from one), the
    # person's own other photos 0.50 at most (0.56 from one) (bench/videoid_faces.py); dlib's
    # customary 0.6. The decision against the document portrait uses faces.MATCH_THRESHOLD.
    identity_threshold: float = 0.6
    template_descriptors: int = 3  # consecutive good frames, within the threshold of one another


@dataclass(slots=True, frozen=True, eq=False)
class Observation:
    """What one analysed frame showed; ``t`` in seconds on a monotonic clock."""

    t: float
    face: bool
    yaw: float | None = None
    ear: float | None = None
    shape: Shape | None = None  # landmarks.normalised_shape of the 68 points
    embedding: Embedding | None = None
    frame_digest: bytes | None = None  # equal digests = bit-identical frames

    @classmethod
    def from_landmarks(
        cls,
        t: float,
        points: landmarks.Points,
        width: int,
        height: int,
        *,
        embedding: Embedding | None = None,
        frame_digest: bytes | None = None,
    ) -> Observation:
        return cls(
            t=t,
            face=True,
            yaw=landmarks.head_yaw(points, width, height),
            ear=landmarks.eye_aspect_ratio(points),
            shape=landmarks.normalised_shape(points),
            embedding=embedding,
            frame_digest=frame_digest,
        )


@dataclass(slots=True, frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason | None
    message: str
    challenges: tuple[Challenge, ...]
    passed: tuple[Challenge, ...]
    restarts: int
    motion: float  # RMS non-rigid landmark motion over the session
    identity_distance: float | None  # largest distance of a descriptor from the face template


class LivenessSession:
    """The state machine of one liveness check; feed it with :meth:`observe`."""

    def __init__(self, challenges: Sequence[Challenge], *, started_at: float, policy: Policy | None = None):
        if not challenges:
            raise ValueError("at least one challenge is needed")
        self.challenges = tuple(challenges)
        self.policy = policy or Policy()
        self._started = self._step_started = self._last_t = started_at
        self._step = 0
        self._restarts = 0
        self._verdict: Verdict = Verdict.IN_PROGRESS
        self._reason: Reason | None = None
        self._message = "in progress"
        self._forming: list[tuple[float, Embedding]] = []  # the template's first descriptors
        self._template_sum: Embedding | None = None
        self._template_count = 0
        self._anchored_at: float | None = None
        self._outlier = False  # the last descriptor was far from the template
        self._identity_distance: float | None = None
        self._embedding_wanted = True
        self._absent_since: float | None = None
        self._last_digest: bytes | None = None
        self._identical = 0
        self._recent: deque[tuple[float, Shape]] = deque()
        self._count = 0
        self._sum: Shape | None = None
        self._sum_sq: Shape | None = None
        self._blink_seen = False
        self._reset_step()

    # -- public -----------------------------------------------------------------------------------

    @property
    def current(self) -> Challenge | None:
        """The challenge the person is asked for now (None once all are done)."""
        return self.challenges[self._step] if self._step < len(self.challenges) else None

    @property
    def anchored_at(self) -> float | None:
        """The time of the template's first frame: what shows the face before it does not count
        (None until the template is formed)."""
        return self._anchored_at

    @property
    def wants_embedding(self) -> bool:
        """True when the next good frame's descriptor is needed (first face, face back, the end)."""
        return self._verdict is Verdict.IN_PROGRESS and self._embedding_wanted

    @property
    def decision(self) -> Decision:
        return Decision(
            verdict=self._verdict,
            reason=self._reason,
            message=self._message,
            challenges=self.challenges,
            passed=self.challenges[: self._step],
            restarts=self._restarts,
            motion=self.motion,
            identity_distance=self._identity_distance,
        )

    @property
    def motion(self) -> float:
        if self._count < 2 or self._sum is None or self._sum_sq is None:
            return 0.0
        mean = self._sum / self._count
        variance = np.maximum(self._sum_sq / self._count - mean**2, 0.0)
        return float(math.sqrt(variance.sum(axis=1).mean()))

    def observe(self, obs: Observation) -> Decision:
        """Take one frame's observation; returns the decision so far."""
        if self._verdict is not Verdict.IN_PROGRESS:
            return self.decision
        if obs.t < self._last_t:
            raise ValueError(f"observations must come in time order: {obs.t} after {self._last_t}")
        self._last_t = obs.t
        p = self.policy
        if obs.t - self._started > p.session_timeout:
            return self._time_out(f"the session took longer than {p.session_timeout:.0f} s")
        if obs.t - self._step_started > p.step_timeout:
            return self._time_out(f"'{self.current}' was not done within {p.step_timeout:.0f} s")
        if obs.frame_digest is not None:
            self._identical = self._identical + 1 if obs.frame_digest == self._last_digest else 0
            self._last_digest = obs.frame_digest
            if self._identical + 1 >= p.identical_frames:
                return self._fail(Reason.REPLAYED_FRAMES, f"{p.identical_frames} identical frames in a row")
        if not obs.face:
            self._face_absent(obs.t)
            return self.decision
        self._absent_since = None
        if obs.embedding is not None and self._check_identity(obs.t, obs.embedding):
            return self.decision
        if obs.shape is not None and self._track_shape(obs.t, obs.shape):
            return self.decision
        if obs.ear is not None:
            self._track_blink(obs.t, obs.ear)
        if self.current is Challenge.BLINK:
            if self._blinked:
                self._next_step(obs.t)
        elif self.current is not None and obs.yaw is not None:
            self._track_turn(obs.t, obs.yaw)
        if self.current is None and not self._embedding_wanted:
            self._verdict, self._message = Verdict.PASSED, "every challenge done by the same live face"
        return self.decision

    # -- steps ------------------------------------------------------------------------------------

    def _reset_step(self) -> None:
        self._frontal_seen = False
        self._hold = 0
        self._open: deque[float] = deque(maxlen=15)
        self._closed_at: float | None = None
        self._blinked = False

    def _next_step(self, t: float) -> None:
        self._step += 1
        self._step_started = t
        self._reset_step()
        if self.current is None:
            self._embedding_wanted = True  # the closing check: still the same person

    def _track_turn(self, t: float, yaw: float) -> None:
        p = self.policy
        if not self._frontal_seen:
            self._frontal_seen = abs(yaw) <= p.frontal_yaw
            return
        toward = yaw if self.current is Challenge.TURN_LEFT else -yaw
        self._hold = self._hold + 1 if toward >= p.turn_yaw else 0
        if self._hold >= p.turn_hold:
            self._next_step(t)

    def _track_blink(self, t: float, ear: float) -> None:
        p = self.policy
        if self._closed_at is None:
            if len(self._open) >= 3 and ear < p.blink_closed_ratio * statistics.median(self._open):
                self._closed_at = t
            else:
                self._open.append(ear)
            return
        if ear > p.blink_open_ratio * statistics.median(self._open):
            if t - self._closed_at <= p.blink_max_closed:
                self._blinked = self._blink_seen = True
            self._closed_at = None

    def _face_absent(self, t: float) -> None:
        if self._absent_since is None:
            self._absent_since = t
            return
        if t - self._absent_since >= self.policy.absence_grace and self.current is not None:
            if self._step_started < self._absent_since:  # once per absence
                self._restarts += 1
            self._step_started = t
            self._reset_step()
            self._recent.clear()
            self._embedding_wanted = True  # whoever comes back is checked first

    # -- checks -----------------------------------------------------------------------------------

    def _check_identity(self, t: float, embedding: Embedding) -> bool:
        """True when the session failed: this descriptor and the one before it are both further
        than the threshold from the template. One far descriptor alone (a frame the codec
        smeared) is set aside and the next good frame's descriptor is asked for at once; nothing
        passes until it has answered."""
        if self._template_sum is None:
            self._form_template(t, embedding)
            return False
        self._embedding_wanted = False
        d = faces.distance(self._template_sum / self._template_count, embedding)
        self._identity_distance = max(d, self._identity_distance or 0.0)
        if d <= self.policy.identity_threshold:
            self._template_sum = self._template_sum + embedding
            self._template_count += 1
            self._outlier = False
            return False
        if not self._outlier:
            self._outlier = True
            self._embedding_wanted = True
            return False
        self._fail(
            Reason.FACE_CHANGED,
            f"the face changed during the session (distance {d:.3f} > {self.policy.identity_threshold})",
        )
        return True

    def _form_template(self, t: float, embedding: Embedding) -> None:
        """Take ``embedding`` into the forming template: the descriptors before the last one it
        disagrees with are dropped. A dropped one moves the anchor later, and a step done before
        the new anchor is done again."""
        threshold = self.policy.identity_threshold
        distances = [faces.distance(e, embedding) for _, e in self._forming]
        far = [i for i, d in enumerate(distances) if d > threshold]
        if far:
            del self._forming[: far[-1] + 1]
        self._forming.append((t, embedding))
        kept = distances[far[-1] + 1 :] if far else distances
        if kept:
            self._identity_distance = max(max(kept), self._identity_distance or 0.0)
        if far:  # the face before is not the template's: what it did does not count
            if self._step > 0:
                self._restarts += 1
            self._step, self._step_started = 0, t
            self._reset_step()
        if len(self._forming) < self.policy.template_descriptors:
            self._embedding_wanted = True  # the next good frame's, at once
            return
        self._anchored_at = self._forming[0][0]
        self._template_sum = np.sum([e for _, e in self._forming], axis=0)
        self._template_count = len(self._forming)
        self._forming.clear()
        self._embedding_wanted = self.current is None  # the closing check, if all is done

    def _track_shape(self, t: float, shape: Shape) -> bool:
        self._count += 1
        self._sum = shape.copy() if self._sum is None else self._sum + shape
        self._sum_sq = shape**2 if self._sum_sq is None else self._sum_sq + shape**2
        p = self.policy
        self._recent.append((t, shape))
        while len(self._recent) > 2 and t - self._recent[1][0] >= p.frozen_window:
            self._recent.popleft()
        if t - self._recent[0][0] >= p.frozen_window:
            still = landmarks.shape_motion(np.array([s for _, s in self._recent]))
            if still < p.frozen_motion:
                self._fail(
                    Reason.STATIC_FACE,
                    f"the landmarks did not move for {p.frozen_window:.1f} s (motion {still:.4f}): "
                    "a still image",
                )
                return True
        return False

    def _time_out(self, message: str) -> Decision:
        if self._count >= 10 and self.motion < self.policy.static_motion and not self._blink_seen:
            return self._fail(
                Reason.STATIC_FACE,
                f"{message}, with no blink and no natural motion (motion {self.motion:.4f}): a photo",
            )
        return self._fail(Reason.TIMEOUT, message)

    def _fail(self, reason: Reason, message: str) -> Decision:
        self._verdict, self._reason, self._message = Verdict.FAILED, reason, message
        return self.decision
