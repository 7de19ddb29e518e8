"""Identity proofing by WebRTC video identification (document, face, liveness, agent review).

Reserved by DESIGN.md; its implementation is tracked in its own issue and not part of this
release: nothing here is wired into the application yet.
"""
