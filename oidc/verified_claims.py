"""``verified_claims`` (OpenID Connect for Identity Assurance 1.0, §5) for an eID proofed by video.

Released when the client asks for the ``verified_claims`` scope (the client must be registered
with it: ``idp client create --scope verified_claims``), in the ID token and at userinfo. The
values are the eID attributes that the video identification verified (method ``videoid``, with
the session id as evidence reference), so nothing here reads the evidence store.

- ``trust_framework``: :data:`TRUST_FRAMEWORK`, a project URN. The proofing follows ETSI TS 119
  461 (unattended remote identity proofing with a document and a face match), which is not an
  eIDAS notified eID scheme, so the registry value ``eidas`` would claim more than it is.
- ``evidence``: one item of type ``document`` (§5.1.1.1) with ``check_details``: ``vpiruv``
  (the physical document validated over unattended remote video) and ``bvr`` (the live face
  compared with the document's portrait, remotely), each with the session id as ``txn``; and
  ``document_details`` (type ``passport`` or ``idcard``, number, issuer's ICAO country code,
  expiry).
- ``claims``: ``given_name``, ``family_name``, ``birthdate``, ``nationalities`` (ICAO codes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idp.eids import EID

SCOPE = "verified_claims"
TRUST_FRAMEWORK = "urn:eid:trust_framework:etsi_ts_119_461"
METHOD = "videoid"
CLAIMS = ("given_name", "family_name", "birthdate", "nationalities")


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def document_type(code: str) -> str:
    """IDA predefined document types: ICAO document codes P… are passports, I/A/C… identity cards."""
    return "passport" if code.startswith("P") else "idcard"


def verified_claims(eid: EID) -> dict[str, Any] | None:
    """The eID's verified claims from its video identification, or None when it has none."""
    attrs = {n: a for n, a in eid.attributes.items() if a.verified_method == METHOD}
    anchor = attrs.get("family_name") or attrs.get("document_number")
    if anchor is None or anchor.verified_at is None or anchor.evidence_ref is None:
        return None
    txn, when = anchor.evidence_ref, _time(anchor.verified_at)
    claims: dict[str, Any] = {}
    for name in ("given_name", "family_name", "birthdate"):
        if name in attrs:
            claims[name] = attrs[name].value
    if "nationality" in attrs:
        claims["nationalities"] = [attrs["nationality"].value]
    details: dict[str, Any] = {}
    if "document_type" in attrs:
        details["type"] = document_type(attrs["document_type"].value)
    if "document_number" in attrs:
        details["document_number"] = attrs["document_number"].value
    if "document_issuer" in attrs:
        details["issuer"] = {"country_code": attrs["document_issuer"].value}
    if "document_expiry" in attrs:
        details["date_of_expiry"] = attrs["document_expiry"].value
    return {
        "verification": {
            "trust_framework": TRUST_FRAMEWORK,
            "time": when,
            "verification_process": txn,
            "evidence": [
                {
                    "type": "document",
                    "check_details": [
                        {"check_method": "vpiruv", "txn": txn, "time": when},
                        {"check_method": "bvr", "txn": txn, "time": when},
                    ],
                    "document_details": details,
                }
            ],
        },
        "claims": claims,
    }
