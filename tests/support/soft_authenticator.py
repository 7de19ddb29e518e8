"""A software passkey for tests: soft-webauthn's device, with the flags a real passkey sets.

``soft_webauthn.SoftWebauthnDevice`` makes real P-256 credentials and signs real assertions, but
always reports user presence only. :class:`SoftPasskey` sets the other authenticator data flags
(WebAuthn §6.1: UV user verified, BE backup eligible, BS backed up) and re-signs the assertion,
so tests can play a platform passkey (UV), a synced one (BE, BS) or a bare security key (UP
only). It also turns the server's options JSON into what the device takes and its answer into
the JSON a browser posts (``PublicKeyCredential.toJSON()``), as ``templates/static/passkey.js``
does.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from soft_webauthn import SoftWebauthnDevice
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


class SoftPasskey(SoftWebauthnDevice):  # type: ignore[misc]  # soft-webauthn ships no types
    def __init__(
        self, *, user_verified: bool = True, synced: bool = False, keeps_counter: bool = True
    ) -> None:
        super().__init__()
        self.user_verified = user_verified
        self.synced = synced  # BE and BS: a passkey in a cloud keychain
        self.keeps_counter = keeps_counter  # synced passkeys report 0 every time

    def _flags(self, base: int) -> int:
        flags = base | (UV if self.user_verified else 0)
        return flags | (BE | BS if self.synced else 0)

    def register(self, options_json: str, origin: str) -> str:
        """``navigator.credentials.create()`` with the server's options; returns the JSON to post."""
        public_key = json.loads(options_json)
        public_key["challenge"] = base64url_to_bytes(public_key["challenge"])
        public_key["user"]["id"] = base64url_to_bytes(public_key["user"]["id"])
        excluded = {base64url_to_bytes(c["id"]) for c in public_key.get("excludeCredentials", [])}
        if self.credential_id is not None and self.credential_id in excluded:
            raise ValueError("InvalidStateError: this authenticator already holds an excluded credential")
        made = self.create({"publicKey": public_key}, origin)
        attestation = cbor.decode(made["response"]["attestationObject"])
        auth_data = bytearray(attestation["authData"])
        auth_data[32] = self._flags(UP | AT)
        attestation["authData"] = bytes(auth_data)
        return json.dumps(
            {
                "id": bytes_to_base64url(made["rawId"]),
                "rawId": bytes_to_base64url(made["rawId"]),
                "type": "public-key",
                "response": {
                    "clientDataJSON": bytes_to_base64url(made["response"]["clientDataJSON"]),
                    "attestationObject": bytes_to_base64url(cbor.encode(attestation)),
                    "transports": ["internal", "hybrid"],
                },
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
            }
        )

    def authenticate(self, options_json: str, origin: str) -> str:
        """``navigator.credentials.get()`` with the server's options; returns the JSON to post."""
        public_key = json.loads(options_json)
        allowed = [base64url_to_bytes(c["id"]) for c in public_key.get("allowCredentials", [])]
        if allowed and self.credential_id not in allowed:
            raise ValueError("NotAllowedError: no allowed credential on this authenticator")
        public_key["challenge"] = base64url_to_bytes(public_key["challenge"])
        made = self.get({"publicKey": public_key}, origin)
        response = made["response"]
        if not self.keeps_counter:
            self.sign_count = 0
        counter = self.sign_count
        auth_data = response["authenticatorData"][:32] + bytes([self._flags(UP)]) + struct.pack(">I", counter)
        signed = auth_data + hashlib.sha256(response["clientDataJSON"]).digest()
        signature = self.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return self.answer(auth_data, response["clientDataJSON"], signature)

    def answer(self, auth_data: bytes, client_data: bytes, signature: bytes, **overrides: Any) -> str:
        body = {
            "id": bytes_to_base64url(self.credential_id),
            "rawId": bytes_to_base64url(self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": bytes_to_base64url(auth_data),
                "clientDataJSON": bytes_to_base64url(client_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": bytes_to_base64url(self.user_handle),
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }
        body["response"].update(overrides)
        return json.dumps(body)
