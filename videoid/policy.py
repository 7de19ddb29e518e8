"""A tenant's video identification policy, kept as JSON in ``tenants.videoid``.

```json
{"mode": "automated", "accepted_types": ["P", "ID"], "accepted_countries": ["SVN", "HRV"],
 "retention_days": 1825, "keep_recording": true, "second_agent_for_rejection": false,
 "agent_group": "videoid-agents"}
```

- ``mode``: ``automated`` (the machine decides), ``reviewed`` (automated checks, then an agent
  approves or rejects) or ``agent_led`` (an agent conducts the session; its checks queue the
  session for that agent). Reviewed and agent-led sessions end in ``awaiting_review``.
- ``accepted_types`` / ``accepted_countries``: document codes and issuing states as printed in the
  MRZ (:func:`videoid.document.reader.check_document`); absent or null accepts all.
- ``retention_days``: how long the evidence is kept (default five years); the hourly retention
  job deletes it afterwards.
- ``keep_recording``: keep the session's recording (sealed, as evidence) or delete it once hashed.
- ``second_agent_for_rejection``: a rejection needs two different agents.
- ``agent_group``: the display name of the tenant's group (SCIM ``Groups``, :mod:`idp.groups`)
  whose members are the agents of the console (``/agent``).

A tenant without the column set gets :data:`DEFAULT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from idp import audit
from idp.errors import NotFoundError
from idp.storage import tables
from idp.storage.database import Tx

DAY = 24 * 3600.0
AGENT_GROUP = "videoid-agents"


class Mode(StrEnum):
    AUTOMATED = "automated"
    REVIEWED = "reviewed"  # automated with agent review
    AGENT_LED = "agent_led"


@dataclass(slots=True, frozen=True)
class TenantPolicy:
    mode: Mode = Mode.AUTOMATED
    accepted_types: frozenset[str] | None = None
    accepted_countries: frozenset[str] | None = None
    retention_days: int = 5 * 365
    keep_recording: bool = True
    second_agent_for_rejection: bool = False
    agent_group: str = AGENT_GROUP

    @property
    def retention_seconds(self) -> float:
        return self.retention_days * DAY

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = str(self.mode)
        for name in ("accepted_types", "accepted_countries"):
            data[name] = None if data[name] is None else sorted(data[name])
        return data


DEFAULT = TenantPolicy()
_KEYS = frozenset(TenantPolicy.__dataclass_fields__)


def _codes(name: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and 1 <= len(v) <= 3 for v in value):
        raise ValueError(f"{name} must be a list of MRZ codes (1-3 characters each) or null")
    return frozenset(v.upper() for v in value)


def from_json(data: Mapping[str, Any] | None) -> TenantPolicy:
    """Validate a policy document; ``ValueError`` names the wrong key."""
    if not data:
        return DEFAULT
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"unknown videoid policy keys {sorted(unknown)}; expected {sorted(_KEYS)}")
    try:
        mode = Mode(data.get("mode", DEFAULT.mode))
    except ValueError:
        raise ValueError(f"mode must be one of {[str(m) for m in Mode]}, got {data.get('mode')!r}") from None
    days = data.get("retention_days", DEFAULT.retention_days)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 36500:
        raise ValueError(f"retention_days must be a whole number of days from 1 to 36500, got {days!r}")
    flags = {}
    for name in ("keep_recording", "second_agent_for_rejection"):
        value = data.get(name, getattr(DEFAULT, name))
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        flags[name] = value
    group = data.get("agent_group", DEFAULT.agent_group)
    if not isinstance(group, str) or not group.strip() or len(group) > 256:
        raise ValueError(f"agent_group must be a group's display name (1-256 characters), got {group!r}")
    return TenantPolicy(
        mode=mode,
        agent_group=group.strip(),
        accepted_types=_codes("accepted_types", data.get("accepted_types")),
        accepted_countries=_codes("accepted_countries", data.get("accepted_countries")),
        retention_days=days,
        **flags,
    )


def load(conn: Connection, tenant_id: str) -> TenantPolicy:
    t = tables.tenants.c
    row = conn.execute(select(t.videoid).where(t.id == tenant_id)).first()
    if row is None:
        raise NotFoundError(f"no tenant {tenant_id!r}")
    return from_json(row.videoid)


def save(tx: Tx, *, tenant_id: str, policy: TenantPolicy) -> None:
    t = tables.tenants.c
    done = tx.conn.execute(update(tables.tenants).where(t.id == tenant_id).values(videoid=policy.to_json()))
    if done.rowcount != 1:
        raise NotFoundError(f"no tenant {tenant_id!r}")
    audit.record(
        tx, audit.AuditEvent("tenant.videoid_policy_changed", tenant_id=tenant_id, details=policy.to_json())
    )
