"""Passkeys: WebAuthn Level 3 registration and authentication ceremonies on py_webauthn.

Options ask for a discoverable credential (``residentKey: required``, so username-less login
works) and for user verification (§5.4.6, ``userVerification: required``: the authenticator
checks a PIN or biometric, which makes the passkey two factors in one device). The relying
party's checks (§7.1 and §7.2) are py_webauthn's; this module adds what needs storage:

* challenges are random, stored only server-side, single use and valid ``CHALLENGE_TTL``
  seconds; the browser holds an opaque challenge id (only its digest is stored). A ceremony
  marks its challenge used in the caller's transaction; a refusal rolls that back, so the
  caller spends the challenge with :func:`spend_challenge` when it records the failure;
* the signature counter (§6.1.1): a counter that does not grow is refused as a sign of a cloned
  authenticator, unless the authenticator keeps none (both zero, as synced passkeys do);
* the backup flags (§6.1.3): BE (backup eligible: a synced, multi-device credential) is fixed at
  registration, BS (backed up) is updated at every use;
* in a username-less login the credential's owner is whoever registered it, and the returned
  user handle must name that owner (§7.2 step 6).

Successful registrations, uses and removals are audited in the caller's transaction; refusals
raise :class:`PasskeyError` and the caller records the failure event.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp import audit, eids, value_rules
from idp.storage import tables
from idp.storage.database import Tx
from levels_of_assurance.authenticators import Proves
from levels_of_assurance.authenticators.passkey_store import (
    CHALLENGE_TTL,
    Passkey,
    PasskeyError,
    PasskeyProblem,
    descriptors,
    list_passkeys,
    new_challenge,
    remove_passkey,
    spend_challenge,
    take_challenge,
    to_passkey,
)
from levels_of_assurance.ladder import AMR, Level

PROVES = Proves(
    method="passkey", amr=(AMR.HWK,), factor="possession", phishing_resistant=True, level=Level.ADVANCED
)

MAX_RESPONSE = 64 * 1024  # a ceremony's JSON is a few kB; a larger one is not a browser's
MAX_NAME = 64
_P = tables.passkey_credentials.c


@dataclass(slots=True, frozen=True)
class PasskeyLogin:
    """A successful authentication; ``amr`` are RFC 8176 values for the ID token."""

    eid_id: str
    credential_id: str
    user_verified: bool
    backed_up: bool
    amr: tuple[str, ...]


def _bounded(credential_json: str) -> str:
    if len(credential_json) > MAX_RESPONSE:
        raise PasskeyError(
            PasskeyProblem.INVALID_RESPONSE,
            f"expected at most {MAX_RESPONSE} bytes of JSON, got {len(credential_json)}",
        )
    return credential_json


def _refused(exc: Exception) -> PasskeyError:
    return PasskeyError(PasskeyProblem.INVALID_RESPONSE, f"the passkey's response was refused: {exc}")


def registration_options(tx: Tx, *, rp_id: str, rp_name: str, eid: eids.EID, now: float) -> tuple[str, str]:
    """Options for ``navigator.credentials.create()`` (§5.4) as JSON, and the challenge id.

    The user handle is the eID's id (random, no personal data, §14.6.1); the eID's passkeys are
    excluded so an authenticator cannot register twice.
    """
    challenge_id, challenge = new_challenge(tx, ceremony="registration", eid_id=eid.id, rp_id=rp_id, now=now)
    full_name = " ".join(v for v in (eid.value("given_name"), eid.value("family_name")) if v)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=eid.username,
        user_id=eid.id.encode(),
        user_display_name=full_name or eid.username,
        challenge=challenge,
        timeout=int(CHALLENGE_TTL * 1000),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=descriptors(tx.conn, eid.id),
    )
    return options_to_json(options), challenge_id


def finish_registration(
    tx: Tx,
    *,
    challenge_id: str,
    credential_json: str,
    expected_origin: str,
    rp_id: str,
    name: str,
    now: float,
) -> Passkey:
    """Verify the ``navigator.credentials.create()`` result (§7.1) and store the passkey."""
    label = " ".join(name.split())
    if not label or len(label) > MAX_NAME:
        raise PasskeyError(PasskeyProblem.INVALID_NAME, f"a passkey's name has 1 to {MAX_NAME} characters")
    try:  # it is shown on pages and named in mails: one line, as every other label (idp.value_rules)
        value_rules.one_line(label)
    except value_rules.ValueRuleError as exc:
        raise PasskeyError(PasskeyProblem.INVALID_NAME, f"a passkey's name {exc}") from exc
    row = take_challenge(tx, challenge_id=challenge_id, ceremony="registration", rp_id=rp_id, now=now)
    try:
        credential = parse_registration_credential_json(_bounded(credential_json))
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=bytes(row.challenge),
            expected_rp_id=rp_id,
            expected_origin=expected_origin,
            require_user_verification=False,  # checked below, to say so plainly
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise _refused(exc) from None
    if not verified.user_verified:
        raise PasskeyError(
            PasskeyProblem.USER_NOT_VERIFIED,
            "the authenticator did not verify you (PIN or biometrics); it is required",
        )
    credential_id = bytes_to_base64url(verified.credential_id)
    if tx.conn.execute(select(_P.eid_id).where(_P.credential_id == credential_id)).first() is not None:
        raise PasskeyError(PasskeyProblem.ALREADY_REGISTERED, "this passkey is already registered")
    values = {
        "credential_id": credential_id,
        "eid_id": row.eid_id,
        "public_key": verified.credential_public_key,
        "sign_count": verified.sign_count,
        "transports": [t.value for t in credential.response.transports or ()],
        "aaguid": verified.aaguid,
        "backup_eligible": verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        "backup_state": verified.credential_backed_up,
        "user_verified": verified.user_verified,
        "name": label,
        "created_at": now,
        "last_used_at": None,
    }
    tx.conn.execute(tables.passkey_credentials.insert().values(**values))
    tenant_id, username = eids.owner(tx.conn, row.eid_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "passkey.registered",
            tenant_id=tenant_id,
            eid_id=row.eid_id,
            username=username,
            details={
                "method": PROVES.method,
                "credential_id": credential_id[:64],
                "aaguid": verified.aaguid,
                "backup_eligible": values["backup_eligible"],
            },
        ),
    )
    return to_passkey(
        tx.conn.execute(select(tables.passkey_credentials).where(_P.credential_id == credential_id)).one()
    )


def authentication_options(tx: Tx, *, rp_id: str, eid_id: str | None, now: float) -> tuple[str, str]:
    """Options for ``navigator.credentials.get()`` (§5.5) as JSON, and the challenge id.

    With ``eid_id`` the eID's passkeys are listed in ``allowCredentials``; without it the list is
    empty and the browser offers every discoverable passkey it holds for ``rp_id``.
    """
    allow = []
    if eid_id is not None:
        allow = descriptors(tx.conn, eid_id)
        if not allow:
            raise PasskeyError(PasskeyProblem.NO_PASSKEY, "this eID has no passkey")
    challenge_id, challenge = new_challenge(
        tx, ceremony="authentication", eid_id=eid_id, rp_id=rp_id, now=now
    )
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=int(CHALLENGE_TTL * 1000),
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options), challenge_id


def finish_authentication(
    tx: Tx,
    *,
    challenge_id: str,
    credential_json: str,
    expected_origin: str,
    rp_id: str,
    require_user_verification: bool = True,
    now: float,
) -> PasskeyLogin:
    """Verify the ``navigator.credentials.get()`` result (§7.2); update counter, flags and last use.

    ``amr`` is ``hwk`` for a device-bound passkey or ``swk`` for a synced one (BE set), plus
    ``user`` (a presence test, always required) and, with user verification, ``pin`` (the
    authenticator checked a PIN, pattern or biometric: WebAuthn does not say which) and ``mfa``.
    """
    row = take_challenge(tx, challenge_id=challenge_id, ceremony="authentication", rp_id=rp_id, now=now)
    try:
        credential = parse_authentication_credential_json(_bounded(credential_json))
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise _refused(exc) from None
    credential_id = bytes_to_base64url(credential.raw_id)
    stored = tx.conn.execute(
        select(tables.passkey_credentials).where(_P.credential_id == credential_id)
    ).first()
    if stored is None or (row.eid_id is not None and stored.eid_id != row.eid_id):
        raise PasskeyError(PasskeyProblem.UNKNOWN_CREDENTIAL, "this passkey is not registered for this eID")
    handle = credential.response.user_handle
    if (handle is None and row.eid_id is None) or (handle is not None and handle != stored.eid_id.encode()):
        raise PasskeyError(
            PasskeyProblem.INVALID_RESPONSE,
            "the passkey's user handle does not name the eID that registered it",
        )
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=bytes(row.challenge),
            expected_rp_id=rp_id,
            expected_origin=expected_origin,
            credential_public_key=bytes(stored.public_key),
            credential_current_sign_count=0,  # compared below, after the signature is known good
            require_user_verification=False,  # checked below, to say so plainly
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise _refused(exc) from None
    if require_user_verification and not verified.user_verified:
        raise PasskeyError(
            PasskeyProblem.USER_NOT_VERIFIED,
            "the authenticator did not verify you (PIN or biometrics); it is required",
        )
    previous, current = int(stored.sign_count), int(verified.new_sign_count)
    if (previous or current) and current <= previous:
        raise PasskeyError(
            PasskeyProblem.CLONED_AUTHENTICATOR,
            f"the passkey's signature counter went from {previous} to {current}: "
            "the authenticator may be cloned",
        )
    tx.conn.execute(
        update(tables.passkey_credentials)
        .where(_P.credential_id == credential_id)
        .values(sign_count=current, backup_state=verified.credential_backed_up, last_used_at=now)
    )
    kind = AMR.SWK if stored.backup_eligible else AMR.HWK
    amr = (kind, AMR.USER, AMR.PIN, AMR.MFA) if verified.user_verified else (kind, AMR.USER)
    tenant_id, username = eids.owner(tx.conn, stored.eid_id)
    audit.record(
        tx,
        audit.AuditEvent(
            "passkey.used",
            tenant_id=tenant_id,
            eid_id=stored.eid_id,
            username=username,
            details={
                "method": PROVES.method,
                "credential_id": credential_id[:64],
                "user_verified": verified.user_verified,
                "backed_up": verified.credential_backed_up,
                "sign_count": current,
                "amr": [str(a) for a in amr],
            },
        ),
    )
    return PasskeyLogin(
        eid_id=stored.eid_id,
        credential_id=credential_id,
        user_verified=verified.user_verified,
        backed_up=verified.credential_backed_up,
        amr=tuple(str(a) for a in amr),
    )


__all__ = [
    "PROVES",
    "Passkey",
    "PasskeyError",
    "PasskeyLogin",
    "PasskeyProblem",
    "authentication_options",
    "finish_authentication",
    "finish_registration",
    "list_passkeys",
    "registration_options",
    "remove_passkey",
    "spend_challenge",
]
