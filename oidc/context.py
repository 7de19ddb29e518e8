"""What one request's grant may ask for, loaded before authlib runs, and what it asks to write.

authlib's hooks are synchronous. The async endpoint loads everything a grant could query
(client, code, refresh token, subject) into a :class:`GrantContext`, sets it as the current
context, runs the grant, and afterwards writes what the hooks collected in one unit of work.
No hook touches the database or blocks the event loop.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from idp.sessions import Session
from oidc.models import CodeRecord, OAuthClient, Subject, TokenRecord


@dataclass(slots=True)
class GrantContext:
    client: OAuthClient | None = None
    code: CodeRecord | None = None
    token: TokenRecord | None = None
    subject: Subject | None = None
    grant_id: str | None = None
    tenant_id: str | None = None
    session: Session | None = None
    acr: str | None = None  # the acr value to issue, in the spelling the client asked for
    assertion_seen: bool = False
    # what the hooks collected
    issued: list[dict[str, Any]] = field(default_factory=list)
    new_code: dict[str, Any] | None = None
    assertion_jti: tuple[str, str, float] | None = None  # client_id, jti, exp of a private_key_jwt
    revoked: TokenRecord | None = None
    end_session: bool = False
    # token exchange (oidc.token_exchange): what the verified subject token proved, or why not
    exchanged: dict[str, Any] | None = None  # client_id, acr, amr, auth_time
    exchange_error: str | None = None


current: ContextVar[GrantContext] = ContextVar("oidc_grant_context")
