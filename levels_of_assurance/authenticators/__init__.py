"""Authenticators: one module each, declaring what it proves and doing one job."""

from __future__ import annotations

from dataclasses import dataclass

from levels_of_assurance.ladder import Level


@dataclass(slots=True, frozen=True)
class Proves:
    """What a successful use of an authenticator proves (NIST SP 800-63B §5.1 vocabulary)."""

    method: str
    amr: tuple[str, ...]
    factor: str  # possession | knowledge | inherence
    phishing_resistant: bool
    level: Level
