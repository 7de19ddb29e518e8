"""SCIM protocol errors (RFC 7644 §3.12): an HTTP status and, for 400s, a ``scimType``.

::

    IdPError
    └── ScimError                    status + scimType; the web layer renders the Error schema
        ├── InvalidFilterError       400 invalidFilter
        ├── InvalidSyntaxError       400 invalidSyntax
        ├── InvalidPathError         400 invalidPath
        ├── NoTargetError            400 noTarget
        ├── InvalidValueError        400 invalidValue
        ├── MutabilityError          400 mutability
        ├── TooManyError             400 tooMany
        ├── UnauthorizedError        401
        ├── ResourceNotFoundError    404
        ├── MethodNotAllowedError    405
        ├── UniquenessError          409 uniqueness
        ├── PreconditionFailedError  412
        └── PayloadTooLargeError     413
"""

from __future__ import annotations

from idp.errors import IdPError


class ScimError(IdPError):
    """An error with its RFC 7644 §3.12 status and ``scimType``."""

    status = 400
    scim_type: str | None = None
    code = "scim_error"


class InvalidFilterError(ScimError):
    scim_type = "invalidFilter"


class InvalidSyntaxError(ScimError):
    scim_type = "invalidSyntax"


class InvalidPathError(ScimError):
    scim_type = "invalidPath"


class NoTargetError(ScimError):
    scim_type = "noTarget"


class InvalidValueError(ScimError):
    scim_type = "invalidValue"


class MutabilityError(ScimError):
    scim_type = "mutability"


class TooManyError(ScimError):
    scim_type = "tooMany"


class UnauthorizedError(ScimError):
    status = 401


class ResourceNotFoundError(ScimError):
    status = 404


class UniquenessError(ScimError):
    status = 409
    scim_type = "uniqueness"


class PreconditionFailedError(ScimError):
    status = 412


class PayloadTooLargeError(ScimError):
    status = 413


class MethodNotAllowedError(ScimError):
    status = 405
