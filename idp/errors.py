"""The exception tree of the identity provider.

::

    IdPError
    ├── SettingsError            a wrong IDP_ variable; start-up stops
    ├── StorageError
    │   └── ConflictError        a uniqueness or state conflict (e.g. a code used twice)
    ├── NotFoundError            a tenant, client, eID … that does not exist
    ├── AuditChainError          `idp audit verify` found a broken link
    ├── DeliveryError            mail or SMS could not be handed over
    ├── RateLimitedError         a throttle said no; carries retry_after
    └── LoginError               an authenticator refused (expired or used link, …)
        ├── OTPError             otp.totp: malformed, invalid or replayed code
        └── WeakPasswordError    levels_of_assurance.authenticators.password: refused by policy

Protocol errors (OAuth 2, OIDC) are authlib's own ``OAuth2Error`` subtree; the web layer maps
both trees to responses and audit events.
"""

from __future__ import annotations


class IdPError(Exception):
    """Root of every error this project raises on purpose."""

    code = "server_error"


class SettingsError(IdPError):
    code = "invalid_setting"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class StorageError(IdPError):
    code = "storage_error"


class ConflictError(StorageError):
    code = "conflict"


class NotFoundError(IdPError):
    code = "not_found"


class AuditChainError(IdPError):
    code = "audit_chain_broken"

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(f"audit event #{seq}: {message}")
        self.seq = seq


class DeliveryError(IdPError):
    code = "delivery_failed"


class RateLimitedError(IdPError):
    code = "rate_limited"

    def __init__(self, key: str, retry_after: float) -> None:
        super().__init__(f"too many attempts for {key}; retry after {retry_after:.0f} s")
        self.key = key
        self.retry_after = retry_after


class LoginError(IdPError):
    """An authenticator refused; ``code`` names why (shown to the user, translated)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
