"""The exception tree of the identity provider.

::

    IdPError
    ├── SettingsError            a wrong IDP_ variable; start-up stops
    ├── StorageError
    │   └── ConflictError        a uniqueness or state conflict (e.g. a code used twice)
    ├── NotFoundError            a tenant, client, eID … that does not exist
    ├── AuditChainError          `idp audit verify` found a broken link
    ├── DeliveryError            mail or SMS could not be handed over
    │   └── SMSDeliveryError     idp.delivery.sms: the SMS provider refused (bad number, outage, …)
    ├── RateLimitedError         a throttle said no; carries retry_after
    ├── LoginError               an authenticator refused, or what a person typed is unusable
    │   ├── OTPError             otp.totp: malformed, invalid, expired, replayed or exhausted code
    │   ├── InvalidPhoneError    otp.phone: not a mobile number we can send an SMS to
    │   ├── PasskeyError         levels_of_assurance.authenticators.passkey: a WebAuthn ceremony failed
    │   ├── RecoveryCodeError    levels_of_assurance.authenticators.recovery_codes: unknown or used code
    │   └── WeakPasswordError    levels_of_assurance.authenticators.password: refused by policy
    ├── DocumentError            videoid.document: an identity document could not be read
    │   ├── NotAnImageError      the bytes are not a decodable image, or it is too small
    │   ├── MRZNotFoundError     no machine-readable zone in the image
    │   └── MRZFormatError       text that is not a TD1, TD2 or TD3 MRZ (ICAO 9303)
    ├── FaceError                videoid.faces: not an image, no face, or more than one face
    └── VideoIdError             videoid: a session refused (not yours, wrong state, agent rules)

``LoginError.code`` (and ``SMSDeliveryError.code``) is a short identifier the web layer
translates; the message is English text for logs and for the person when no translation exists.

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


class InvalidPhoneError(LoginError):
    """A phone number that cannot be parsed, is not valid, or cannot be a mobile number.

    ``code`` is ``invalid_phone``; the message says which of these it was.
    """

    def __init__(self, message: str) -> None:
        super().__init__("invalid_phone", message)


class DocumentError(IdPError):
    """An identity document could not be read (video identification, ICAO Doc 9303)."""

    code = "document_unreadable"


class NotAnImageError(DocumentError):
    code = "not_an_image"


class MRZNotFoundError(DocumentError):
    code = "mrz_not_found"


class MRZFormatError(DocumentError):
    code = "mrz_invalid"


class FaceError(IdPError):
    """A face could not be taken from an image; ``code`` says why.

    ``unreadable_image`` (not an image OpenCV can decode), ``no_face`` (no face found),
    ``several_faces`` (more than one face where exactly one is required).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class VideoIdError(IdPError):
    """A video identification request refused; ``code`` says why.

    ``not_eligible`` (no verified phone, not signed in at the advanced level), ``no_consent``,
    ``wrong_state`` (the session is past that step), ``own_session`` (an agent deciding their own
    eID), ``not_assigned``, ``same_agent`` (the second agent of a rejection must be another one),
    ``invalid_offer``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
