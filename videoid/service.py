"""Video identification sessions from start to decision: storage, the live capture, SMS, evidence.

One :class:`VideoIdService` per process holds the live sessions (the WebRTC connection and the
capture, :mod:`videoid.session`) in memory; a deployment with several instances routes a
session's requests to one instance (sticky sessions). Everything durable goes through the
database in units of work that write their audit event with it (:mod:`videoid.records`); the
last of them decides and seals the evidence (:mod:`videoid.closing`).

The recording: while consent holds the received video is recorded (aiortc ``MediaRecorder``,
MP4 under ``var/videoid/``); when the capture ends it is hashed (the SHA-256 goes into the
report), then, per the tenant's ``keep_recording``, sealed into the evidence store (AES-GCM with
the instance secret) or only its hash is kept. Either way the plaintext file is deleted at once.

In an agent-led session the assigned agent watches the person's video live (:meth:`watch`,
:mod:`videoid.live_view`): only once the person has consented and their video runs, and never
longer than it runs.

The liveness challenges come from ``challenges`` (default :func:`videoid.liveness.choose_challenges`,
drawn with :mod:`secrets`); tests replace it to fix the sequence their synthetic video performs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from idp import eids
from idp.errors import VideoIdError
from idp.storage.database import Database, Tx
from otp.sms import Challenge as SMSChallenge
from otp.sms import CodePurpose, PhoneVerifier
from otp.totp import OTPError
from videoid import closing, policy, records
from videoid.capture import Capture, Step
from videoid.live_view import NOT_LIVE, Viewers
from videoid.liveness import Challenge, Policy, choose_challenges
from videoid.policy import Mode
from videoid.records import Session, Status
from videoid.session import LiveSession
from videoid.webrtc import Receiver, Recording

log = logging.getLogger("videoid")


def today_utc() -> date:
    return datetime.now(UTC).date()


@dataclass(slots=True)
class Live:
    session: Session
    capture: LiveSession
    receiver: Receiver | None = None
    task: asyncio.Task[None] | None = None
    result: Capture | None = None
    sms: SMSChallenge | None = None
    recording: asyncio.Task[Recording | None] | None = None
    decided_at: float | None = None  # perf_counter when the decision was committed
    code_at: float | None = None
    sms_error: str | None = None
    sms_text: Callable[[str], str] | None = None  # the code's SMS in the person's language
    sms_locale: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class VideoIdService:
    def __init__(
        self,
        *,
        db: Database,
        secret: str,
        phones: PhoneVerifier,
        var_dir: Path,
        ice_servers: Sequence[Mapping[str, Any]] = (),
        executor: Executor | None = None,
        challenges: Callable[[], Sequence[Challenge]] = choose_challenges,
        today: Callable[[], date] = today_utc,
        liveness_policy: Policy | None = None,
        sms_text: Callable[[str], str] = lambda code: f"Your video identification code is {code}",
        record: bool = True,
    ) -> None:
        self.db = db
        self.secret = secret
        self.phones = phones
        self.var_dir = var_dir
        self.ice_servers = list(ice_servers)
        self.executor = executor
        self.challenges = challenges
        self.today = today
        self.liveness_policy = liveness_policy
        self.sms_text = sms_text
        self.record = record
        self.live: dict[str, Live] = {}
        self.viewers = Viewers(ice=self.ice_servers)

    # -- starting ---------------------------------------------------------------------------------

    async def start(
        self, *, eid_id: str, browser: str, request_id: str | None, client_ip: str | None
    ) -> Session:
        """A new session for ``eid_id`` (who must have a verified mobile number for the code)."""

        def unit(tx: Tx) -> Session:
            person = eids.get(tx.conn, eid_id)
            phone = person.attributes.get("phone_number")
            if not person.active:
                raise VideoIdError("not_eligible", "this eID is suspended or blocked")
            if phone is None or phone.verified_at is None:
                raise VideoIdError("not_eligible", "the eID has no verified mobile number for the code")
            tenant_policy = policy.load(tx.conn, person.tenant_id)
            return records.create(
                tx,
                tenant_id=person.tenant_id,
                eid_id=eid_id,
                browser=browser,
                request_id=request_id,
                mode=tenant_policy.mode,
                challenges=[str(c) for c in self.challenges()],
                retention_seconds=tenant_policy.retention_seconds,
                client_ip=client_ip,
            )

        return await self.db.write(unit)

    async def consent(self, session_id: str, *, client_ip: str | None) -> Session:
        return await self.db.write(lambda tx: records.consent(tx, session_id, client_ip=client_ip))

    async def offer(
        self,
        session: Session,
        *,
        sdp: str,
        kind: str,
        client_ip: str | None,
        sms_text: Callable[[str], str] | None = None,
        sms_locale: str | None = None,
    ) -> tuple[str, str]:
        """Answer the page's WebRTC offer and start the capture.

        ``sms_text(code)`` is the SMS that carries the code at the end, in the language of the page
        (the service's default text otherwise); ``sms_locale`` goes to the SMS provider with it."""
        if session.consent_at is None:
            raise VideoIdError("no_consent", "consent to recording and biometric processing comes first")
        if session.status is not Status.CONSENTED or session.id in self.live:
            raise VideoIdError("wrong_state", f"the session is {session.status}; start a new one")
        live = Live(
            session,
            LiveSession(
                [Challenge(c) for c in session.challenges],
                today=self.today(),
                executor=self.executor,
                liveness_policy=self.liveness_policy,
                on_step=lambda name, passed, details: self._step(session, name, passed, details),
            ),
            sms_text=sms_text,
            sms_locale=sms_locale,
        )
        path = self.var_dir / "videoid" / f"{session.id}.mp4" if self.record else None
        live.receiver = Receiver(
            on_frame=live.capture.push,
            ice=self.ice_servers,
            record_to=path,
            sound=session.mode is not Mode.AUTOMATED,  # an agent listens only in the other modes
            talk_back=session.mode is Mode.AGENT_LED,  # and talks only when leading the session live
        )
        self.live[session.id] = live
        try:
            answer = await live.receiver.answer(sdp=sdp, kind=kind)
        except VideoIdError:
            self.live.pop(session.id, None)
            await live.receiver.close()
            raise
        live.session = await self.db.write(
            lambda tx: records.transition(
                tx, session.id, Status.CAPTURING, event_type="videoid.capture_started", client_ip=client_ip
            )
        )
        live.task = asyncio.ensure_future(self._run(live))
        return answer

    async def _step(self, session: Session, name: str, passed: bool, details: dict[str, Any]) -> None:
        await self.db.write(lambda tx: records.step(tx, session.id, name, passed=passed, **details))

    # -- the capture and the code -----------------------------------------------------------------

    async def _run(self, live: Live) -> None:
        try:
            live.result = await live.capture.run()
            live.recording = asyncio.ensure_future(self._stop_recording(live))
            step = live.capture.step
            if step is Step.CLOSED:
                await self._abandon(live, "the connection ended before the capture was done")
            elif step is Step.FAILED:
                await self.finish(live, sms_matched=False)
            else:
                await self._send_code(live)
        except Exception:
            log.exception("video identification session %s failed", live.session.id)
            with contextlib.suppress(Exception):
                await self._abandon(live, "internal error")

    async def _stop_recording(self, live: Live) -> Recording | None:
        if live.receiver is None:
            return None
        return await live.receiver.close()

    async def _send_code(self, live: Live) -> None:
        session = live.session
        person = await self.db.read(lambda conn: eids.get(conn, session.eid_id))
        phone = person.value("phone_number")
        live.session = await self.db.write(
            lambda tx: records.transition(
                tx, session.id, Status.AWAITING_CODE, event_type="videoid.code_step"
            )
        )
        assert phone is not None
        try:
            live.sms = await self.phones.send(
                self.db,
                tenant_id=session.tenant_id,
                eid_id=session.eid_id,
                phone=phone,
                purpose=CodePurpose.VIDEOID,
                client_ip=None,
                message=live.sms_text or self.sms_text,
                locale=live.sms_locale,
            )
        except Exception as exc:  # a refused or failed send: the session cannot be completed
            live.sms_error = getattr(exc, "code", "delivery_failed")
            await self.finish(live, sms_matched=False)

    async def submit_code(self, session: Session, code: str, *, client_ip: str | None) -> Session:
        """The code the person read back; a wrong one may be retried (``OTPError`` with attempts left)."""
        live = self.live.get(session.id)
        if session.status is not Status.AWAITING_CODE or live is None or live.sms is None:
            raise VideoIdError("wrong_state", f"the session is {session.status}; no code is expected")
        live.code_at = time.perf_counter()
        try:
            await self.phones.check(
                self.db,
                challenge_id=live.sms.challenge_id,
                code=code,
                purpose=CodePurpose.VIDEOID,
                client_ip=client_ip,
            )
        except OTPError as exc:
            if exc.code in ("malformed", "invalid"):
                raise
            await self.finish(live, sms_matched=False)
            raise
        return await self.finish(live, sms_matched=True)

    # -- the end ----------------------------------------------------------------------------------

    async def finish(self, live: Live, *, sms_matched: bool) -> Session:
        """Decide, store the sealed evidence and the outcome (automated, or queued for review)."""
        session, capture = live.session, live.result or live.capture.capture
        today = self.today()
        recording = await live.recording if live.recording is not None else None
        recording_data = await asyncio.to_thread(closing.take_recording, recording)

        def unit(tx: Tx) -> Session:
            return closing.conclude(
                tx,
                session.id,
                capture,
                secret=self.secret,
                today=today,
                sms_matched=sms_matched,
                recording=recording,
                recording_data=recording_data,
            )

        live.session = await self.db.write(unit)
        live.decided_at = time.perf_counter()
        self.live.pop(session.id, None)  # decided: the database has it all
        return live.session

    async def _abandon(self, live: Live, why: str) -> None:
        session = live.session
        with contextlib.suppress(VideoIdError, Exception):
            live.session = await self.db.write(
                lambda tx: records.transition(
                    tx,
                    session.id,
                    Status.ABANDONED,
                    event_type="videoid.abandoned",
                    success=False,
                    reason=why,
                )
            )
        self.live.pop(session.id, None)
        if live.recording is not None:
            rec = await live.recording
            if rec is not None:
                rec.path.unlink(missing_ok=True)

    async def watch(self, session: Session, *, sdp: str, kind: str) -> tuple[str, str]:
        """Answer the agent's offer to receive the person's live video (who may watch is the
        caller's check, :func:`videoid.agents.conducted`); a second watch replaces the first."""
        if session.consent_at is None:
            raise VideoIdError("no_consent", "no video before the person's consent to recording")
        live = self.live.get(session.id)
        if live is None or live.receiver is None or not self.video_runs(session.id):
            raise VideoIdError("not_live", NOT_LIVE)
        return await self.viewers.watch(session.id, live.receiver, sdp=sdp, kind=kind)

    def video_runs(self, session_id: str) -> bool:
        """Whether this process receives the session's video now (what an agent could watch)."""
        live = self.live.get(session_id)
        return (
            live is not None
            and live.receiver is not None
            and live.receiver.has_video
            and live.session.status is Status.CAPTURING
        )

    def sound(self, session_id: str) -> dict[str, bool] | None:
        """Whether the person's microphone reaches this process, whether they speak now (a voice
        within the last :data:`videoid.sound.VOICE_RECENT` seconds), whether they can hear an
        agent (``hears_agent``: their page accepted sound) and whether an agent's microphone
        reaches them now (``agent_talking``); None without video."""
        live = self.live.get(session_id)
        if live is None or live.receiver is None or not live.receiver.has_video:
            return None
        receiver = live.receiver
        voice = receiver.voice
        return {
            "microphone": receiver.has_audio,
            "voice": receiver.sound.speaking(time.monotonic()),
            "hears_agent": voice is not None,
            "agent_talking": voice is not None and voice.talking,
        }

    # -- status and shutdown ----------------------------------------------------------------------

    def status(self, session: Session) -> dict[str, Any]:
        live = self.live.get(session.id)
        out: dict[str, Any] = {"status": str(session.status)}
        if live is not None:
            out.update(live.capture.status())
            out["status"] = str(live.session.status)
            voice = live.receiver.voice if live.receiver is not None else None
            if voice is not None:  # an agent-led session whose page hears the agent
                out["agent"] = {"talking": voice.talking}
            if live.sms is not None:
                out["sms"] = {"masked_phone": live.sms.masked_phone}
            if live.sms_error:
                out["sms_error"] = live.sms_error
            session = live.session
        if session.status.final or session.status is Status.AWAITING_REVIEW:
            out["decision"] = session.decision
            out["reasons"] = list(session.reasons)
        return out

    def forget(self, session_id: str) -> None:
        """Drop a decided session from memory (its result is in the database)."""
        self.live.pop(session_id, None)

    async def close(self) -> None:
        await self.viewers.close()
        for live in list(self.live.values()):
            live.capture.close()
            if live.receiver is not None:
                with contextlib.suppress(Exception):
                    await live.receiver.close()
            if live.task is not None:
                live.task.cancel()
        self.live.clear()
