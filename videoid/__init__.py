"""Identity proofing by WebRTC video identification (document, face, liveness, agent review).

The session (wired into the app under ``/videoid/…``): :mod:`videoid.records` (the stored state
machine), :mod:`videoid.webrtc` (aiortc: offer/answer, receiving, recording),
:mod:`videoid.session` (the guided capture steps over the frames; :mod:`videoid.capture` what
they establish, :mod:`videoid.document_steps` the document's), :mod:`videoid.tilt`,
:mod:`videoid.decision` (the automated decision), :mod:`videoid.outcome` (report, approval),
:mod:`videoid.closing` (the decision, evidence and outcome in one unit of work),
:mod:`videoid.evidence` (sealed at rest, retention), :mod:`videoid.review` and :mod:`videoid.agents`
(agent review's domain functions), :mod:`videoid.live_view` (the conducting agent's live view of
an agent-led session), :mod:`videoid.policy` (the tenant's mode, documents, retention) and
:mod:`videoid.service` (all of it for one process). The parts underneath: identity-document reading
(:mod:`videoid.document`: MRZ by OCR with ICAO 9303 check digits, document checks, portrait
cut-out), face detection and matching (:mod:`videoid.faces`, threshold from
:mod:`videoid.calibration`), active liveness (:mod:`videoid.landmarks`, :mod:`videoid.liveness`),
the per-session frame pipeline (:mod:`videoid.tracking`, :mod:`videoid.frames`) and the operator
commands ``idp videoid read-document`` and ``compare-faces`` (:mod:`videoid.commands`).
"""
