"""Every template with a context that renders it, and the page states that show each of its strings.

``PAGES``: template → (minimal page-specific context, a string it must show in each language).
``VARIANTS``: more contexts per template, chosen so that together with ``PAGES`` they reach every
branch that shows a translatable string (``test_catalogues`` checks that they do).
"""

from __future__ import annotations

from pathlib import Path

from idp.web.account_routes import event_label
from idp.web.i18n import Pages
from idp.web.security_notice import Notice

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"
LOCALE_DIR = TEMPLATES_DIR / "locale"

LANGUAGES = ["sl", "en", "hr", "sr-Latn"]
TRANSLATED = ["sl", "hr", "sr-Latn"]

_INVITATION: dict[str, object] = {
    "id": "inv-1",
    "phone_number": "+38640123456",
    "return_url": "https://portal.example/back",
    "given_name": "Ana",
    "family_name": "Novak",
    "email": "ana@example.com",
    "country": "SI",
    "enrols_existing": False,
    "proves_password": False,
}
_ENROLMENT: dict[str, object] = {
    "enrolment_id": "e1",
    "qr_svg": "<svg></svg>",
    "manual_key": "JBSWY3DPEHPK3PXP",
    "provisioning_uri": "otpauth://totp/eID:ana?secret=JBSWY3DPEHPK3PXP",
}
_CODE_PAGE: dict[str, object] = {
    "request_id": "r1",
    "method": "totp",
    "methods": ["totp", "sms", "recovery"],
    "phone": "+386 40 *** 456",
}
_PASSKEY: dict[str, object] = {"options": "{}", "challenge_id": "c1"}
_ONBOARDING: dict[str, object] = {"invitation": _INVITATION, "step": "phone", "phone": "+386 40 123 456"}


def _attribute(value: str, method: str | None = "sms") -> dict[str, object]:
    return {"value": value, "verified_at": 1_700_000_000 if method else None, "verified_method": method}


_PERSON: dict[str, object] = {
    "attributes": {  # out of order: the page shows names first, then contact details, then the rest
        "national_id": _attribute("2801990505123", None),
        "phone_number": _attribute("+38640123456"),
        "family_name": _attribute("Novak", "videoid"),
        "email": _attribute("ana@example.com", "invitation_link"),
        "given_name": _attribute("Ana", "videoid"),
        "country": _attribute("SI", None),
        "birthdate": _attribute("1990-01-31", "videoid"),
        "nationality": _attribute("SVN", "videoid"),
        "document_type": _attribute("ID", "videoid"),
        "document_number": _attribute("IA1234567", "videoid"),
        "document_issuer": _attribute("SVN", "videoid"),
        "document_expiry": _attribute("2031-05-20", "videoid"),
        "x_custom": _attribute("value", "scim"),
    }
}
_ENROLLED: dict[str, object] = {
    "password": True,
    "app": True,
    "recovery_codes_left": 7,
    "passkeys": [{"name": "Laptop"}, {"name": "Phone"}],
    "locked": False,
}
# every event type account.html names, each shown as a success and one refused
_EVENT_TYPES = [
    "session.authenticated",
    "login.failed",
    "login.factor_proven",
    "session.ended",
    "eid.signed_out_everywhere",
    "password.changed",
    "eid.phone_changed",
    "eid.attribute_verified",
    "eid.created",
    "eid.proofed",
    "eid.proofing_revoked",
    "otp.totp.enrolled",
    "otp.sms.sent",
    "recovery_codes.generated",
    "recovery_codes.shown",
    "passkey.registered",
    "email_link.sent",
    "eid.locked",
    "tenant.created",
]
_EVENTS = [
    {
        "occurred_at": "2026-01-02T03:04:05Z",
        "event_type": t,
        "client_ip": "192.0.2.7",
        "success": t != "login.failed",
    }
    for t in _EVENT_TYPES
]
_SMS_NOTICE_FAILED = {
    "occurred_at": "2026-01-02T03:04:05Z",
    "event_type": "security_notice.delivery_failed",
    "client_ip": None,
    "success": False,
    "details": {"channel": "sms", "notice": "phone_changed"},
}
_ACCOUNT: dict[str, object] = {
    "person": _PERSON,
    "enrolled": _ENROLLED,
    "phone": "+386 40 *** 456",
    "phone_number": "+386 40 123 456",
    "events": [(e, event_label(str(e["event_type"]))) for e in _EVENTS]
    + [(_SMS_NOTICE_FAILED, event_label("security_notice.delivery_failed", {"channel": "sms"}))],
    "done": None,
}
_RESET_CODE: dict[str, object] = {
    "step": "code",
    "token": "t1",
    "method": "totp",
    "methods": ["totp", "sms", "recovery"],
    "phone": "+386 40 *** 456",
    "challenge_id": None,
}

_AGENT_REPORT_DOCUMENT: dict[str, object] = {
    "format": "TD3",
    "document_code": "P",
    "issuing_state": "HRV",
    "surname": "NOVAK",
    "given_names": "ANA",
    "document_number": "007007007",
    "nationality": "HRV",
    "birth_date": "1985-03-14",
    "expiry_date": "2020-09-30",
    "expired": True,
    "checks": [{"name": "document_number", "valid": True}, {"name": "composite", "valid": False}],
    "problems": [],
    "reads": 2,
    "names_confirmed": True,
    "unconfirmed_fields": [],
}
_AGENT_SESSION: dict[str, object] = {
    "session_id": "s" * 32,
    "mode": "reviewed",
    "stills": ["face", "document_front", "document_back"],
    "report": {},
    "document": _AGENT_REPORT_DOCUMENT,
    "face": {"distance": 0.41, "threshold": 0.55},
    "liveness": {"verdict": "passed", "challenges": ["blink"], "passed": ["blink"]},
    "sms": {"matched": True},
    "tilt": {"passed": False},
    "automated": {"approved": True, "reasons": []},
    "steps": {},
    "person": {"given_name": "Ana", "family_name": "Novak"},
    "earlier_rejection": False,
    "checklist": ("security_features_seen", "document_number_read_out", "sms_code_matched"),
    "reasons": [
        "document_forged",
        "document_expired",
        "face_mismatch",
        "liveness_doubt",
        "person_coerced",
        "other",
    ],
    "lapse_minutes": 30,
    "error": None,
    "form": {"checklist": {}, "reason": "", "note": ""},
}

PAGES: dict[str, tuple[dict[str, object], dict[str, str]]] = {
    "base.html": (
        {},
        {"sl": "Preskoči na vsebino", "en": "Skip to content", "hr": "Promijeni", "sr-Latn": "Promeni"},
    ),
    "index.html": (
        {},
        {
            "sl": "ponudnik identitete za elektronsko podpisovanje",
            "en": "identity provider for electronic signing",
            "hr": "pružatelj identiteta za elektroničko potpisivanje",
            "sr-Latn": "provajder identiteta za elektronsko potpisivanje",
        },
    ),
    "login_email.html": (
        {},
        {
            "sl": "Pošlji mi povezavo za prijavo",
            "en": "Send me a sign-in link",
            "hr": "Pošalji mi poveznicu za prijavu",
            "sr-Latn": "Pošalji mi link za prijavu",
        },
    ),
    "login_password.html": (
        {"request_id": "r1", "email": "a***@example.com"},
        {
            "sl": "Vnesite geslo",
            "en": "Enter your password",
            "hr": "Unesite lozinku",
            "sr-Latn": "Unesite lozinku",
        },
    ),
    "login_unavailable.html": (
        {"request_id": "r1", "email": "a***@example.com"},
        {
            "sl": "Vaš eID še ni pripravljen",
            "en": "Your eID is not set up",
            "hr": "Vaš eID još nije postavljen",
            "sr-Latn": "Vaš eID još nije podešen",
        },
    ),
    "login_code.html": (
        dict(_CODE_PAGE),
        {
            "sl": "Vnesite enkratno kodo",
            "en": "Enter your one-time code",
            "hr": "Upotrijebi kod za oporavak",
            "sr-Latn": "Koristi kod za oporavak",
        },
    ),
    "email_sent.html": (
        {"email": "ana@example.com", "minutes": 15},
        {
            "sl": "Povezava velja 15 minut.",
            "en": "The link is valid for 15 minutes.",
            "hr": "Poveznica vrijedi 15 minuta.",
            "sr-Latn": "Link važi 15 minuta.",
        },
    ),
    "email_link_confirm.html": (
        {"token": "t", "email": "a***@example.com"},
        {
            "sl": "Nadaljujte prijavo kot",
            "en": "Continue signing in as",
            "hr": "programi za provjeru e-pošte",
            "sr-Latn": "programi za proveru e-pošte",
        },
    ),
    "link_invalid.html": (
        {"reason": "expired"},
        {
            "sl": "Ta povezava za prijavo je potekla.",
            "en": "This sign-in link has expired.",
            "hr": "Ova je poveznica za prijavu istekla.",
            "sr-Latn": "Ovaj link za prijavu je istekao.",
        },
    ),
    "logout_confirm.html": (
        {},
        {
            "sl": "Se želite odjaviti iz storitve eID?",
            "en": "Sign out of eID?",
            "hr": "Želite li se odjaviti iz usluge eID?",
            "sr-Latn": "Želite li da se odjavite sa usluge eID?",
        },
    ),
    "logged_out.html": (
        {},
        {
            "sl": "računalnik, ki si ga delite z drugimi",
            "en": "You are signed out",
            "hr": "zajedničkim računalom",
            "sr-Latn": "zajednički računar",
        },
    ),
    "error.html": (
        {"status": 404, "title_key": "not_found"},
        {
            "sl": "Strani ni mogoče najti",
            "en": "Page not found",
            "hr": "Pogreška 404",
            "sr-Latn": "Greška 404",
        },
    ),
    "invite.html": (
        {"step": "welcome", "invitation": _INVITATION, "tenant_name": "Acme", "advanced": True},
        {
            "sl": "Acme vas vabi, da ustvarite svoj eID",
            "en": "Acme invites you to create your eID",
            "hr": "Acme vas poziva da izradite svoj eID",
            "sr-Latn": "Acme vas poziva da napravite svoj eID",
        },
    ),
    "onboarding.html": (
        dict(_ONBOARDING, step_number=1, step_count=6),
        {
            "sl": "Potrdite številko mobilnega telefona",
            "en": "Confirm your mobile number",
            "hr": "Potvrdite broj mobitela",
            "sr-Latn": "Potvrdite broj mobilnog telefona",
        },
    ),
    "emails/login_link.txt": (
        {"link": "https://idp.test/l?t=1", "minutes": 2},
        {
            "sl": "Povezava velja 2 minuti",
            "en": "The link is valid for 2 minutes",
            "hr": "Poveznica vrijedi 2 minute",
            "sr-Latn": "Link važi 2 minuta",
        },
    ),
    "emails/login_link.html": (
        {"link": "https://idp.test/l?t=1", "minutes": 3},
        {
            "sl": "Povezava velja 3 minute",
            "en": "The link is valid for 3 minutes",
            "hr": "Poveznica vrijedi 3 minute",
            "sr-Latn": "Link važi 3 minuta",
        },
    ),
    "emails/invitation.txt": (
        {"link": "https://idp.test/invite?token=t", "tenant_name": "Acme", "days": 7},
        {
            "sl": "Povabilo velja 7 dni in deluje samo enkrat.",
            "en": "The invitation is valid for 7 days and works only once.",
            "hr": "Pozivnica vrijedi 7 dana i radi samo jednom.",
            "sr-Latn": "Pozivnica važi 7 dana i radi samo jednom.",
        },
    ),
    "emails/invitation.html": (
        {"link": "https://idp.test/invite?token=t", "tenant_name": "Acme", "days": 2, "given_name": "Ana"},
        {
            "sl": "Povabilo velja 2 dneva in deluje samo enkrat.",
            "en": "The invitation is valid for 2 days and works only once.",
            "hr": "Pozivnica vrijedi 2 dana i radi samo jednom.",
            "sr-Latn": "Pozivnica važi 2 dana i radi samo jednom.",
        },
    ),
    "agent.html": (
        {"waiting": [], "takeable": 0, "running": [], "mine": None, "mine_live": False, "notice": None},
        {
            "sl": "Preglej naslednjo sejo",
            "en": "Review the next session",
            "hr": "Pregledaj sljedeću sesiju",
            "sr-Latn": "Pregledaj sledeću sesiju",
        },
    ),
    "agent_session.html": (
        dict(_AGENT_SESSION),
        {
            "sl": "Kontrolni seznam",
            "en": "Checklist",
            "hr": "Kontrolni popis",
            "sr-Latn": "Kontrolna lista",
        },
    ),
    # the agent's live view: its live texts wait in a <template> for agent_live.js
    "agent_live.html": (
        {"session_id": "s" * 32, "ice_servers": "[]", "live": {"status": "capturing"}},
        {
            "sl": "Video identifikacija v živo",
            "en": "Live video identification",
            "hr": "Video identifikacija uživo",
            "sr-Latn": "Video identifikacija uživo",
        },
    ),
    "account.html": (
        dict(_ACCOUNT),
        {
            "sl": "Vaš račun eID",
            "en": "Your eID account",
            "hr": "Vaš eID račun",
            "sr-Latn": "Vaš eID nalog",
        },
    ),
    "account_signin.html": (
        {},
        {
            "sl": "odprite stran računa prek povezave",
            "en": "open the account page from the link",
            "hr": "otvorite stranicu računa putem poveznice",
            "sr-Latn": "otvorite stranicu naloga preko linka",
        },
    ),
    "account_change.html": (
        {"step": "password"},
        {
            "sl": "Spremenite geslo",
            "en": "Change your password",
            "hr": "Promijenite lozinku",
            "sr-Latn": "Promenite lozinku",
        },
    ),
    "reset.html": (
        {"step": "request", "request_id": "r1"},
        {
            "sl": "Pošlji mi povezavo",
            "en": "Send me a link",
            "hr": "Pošalji mi poveznicu",
            "sr-Latn": "Pošalji mi link",
        },
    ),
    "emails/password_reset.txt": (
        {"link": "https://idp.test/reset/verify?token=t", "minutes": 15},
        {
            "sl": "vaše geslo ostane nespremenjeno",
            "en": "your password stays as it is",
            "hr": "vaša lozinka ostaje nepromijenjena",
            "sr-Latn": "vaša lozinka ostaje nepromenjena",
        },
    ),
    "emails/password_reset.html": (
        {"link": "https://idp.test/reset/verify?token=t", "minutes": 21},
        {
            "sl": "Povezava velja 21 minut in deluje samo enkrat.",
            "en": "The link is valid for 21 minutes and works only once.",
            "hr": "Poveznica vrijedi 21 minutu i radi samo jednom.",
            "sr-Latn": "Link važi 21 minut i radi samo jednom.",
        },
    ),
    "emails/security_notice.txt": (
        {
            "notice": "password_changed",
            "when": "t",
            "account_link": "https://idp.test/account",
            "organisation": "Acme",
        },
        {
            "sl": "Če ste to bili vi, vam ni treba storiti ničesar več.",
            "en": "If it was you, there is nothing else to do.",
            "hr": "Ako ste to bili vi, ne morate učiniti ništa više.",
            "sr-Latn": "Ako ste to bili vi, ne morate ništa više da uradite.",
        },
    ),
    "emails/security_notice.html": (
        {"notice": "locked", "when": "t", "account_link": "https://idp.test/account", "organisation": "Acme"},
        {
            "sl": "dokler ga skrbnik organizacije Acme ne odklene",
            "en": "until an administrator of Acme unlocks it",
            "hr": "dok ga administrator organizacije Acme ne otključa",
            "sr-Latn": "dok ga administrator organizacije Acme ne otključa",
        },
    ),
    "videoid_offer.html": (
        {"request_id": "r1", "client_name": "Portal", "email": "a***@example.com"},
        {
            "sl": "Potrdite svojo identiteto z videom",
            "en": "Confirm your identity by video",
            "hr": "Potvrdite svoj identitet videom",
            "sr-Latn": "Potvrdite svoj identitet video-snimkom",
        },
    ),
    "videoid_start.html": (
        {"request_id": "r1", "error": None},
        {
            "sl": "Strinjam se in nadaljujem",
            "en": "Agree and continue",
            "hr": "Slažem se i nastavljam",
            "sr-Latn": "Slažem se i nastavljam",
        },
    ),
    # the capture page: its live texts wait in a <template> for videoid.js
    "videoid.html": (
        {
            "session_id": "s1",
            "ice_servers": "[]",
            "challenges": ["turn_left", "blink"],
            "microphone": True,
            "agent_voice": True,
        },
        {
            "sl": "Preverjanje kamere",
            "en": "Camera check",
            "hr": "Provjera kamere",
            "sr-Latn": "Provera kamere",
        },
    ),
    "videoid_result.html": (
        {"outcome": "approved", "reasons": [], "next_url": "/login?request_id=r1", "returning": True},
        {
            "sl": "Vaša identiteta je potrjena",
            "en": "Your identity is confirmed",
            "hr": "Vaš je identitet potvrđen",
            "sr-Latn": "Vaš identitet je potvrđen",
        },
    ),
}

_CODE_ERRORS = [
    {"error": "invalid", "attempts_left": 2},
    {"error": "malformed"},
    {"error": "expired"},
    {"error": "replayed"},
    {"error": "exhausted"},
    {"error": "unknown"},
    {"error": "throttled", "retry_after": 30},
    {"error": "sms_throttled", "retry_after": 30},
    {"error": "sms_failed"},
    {"error": "locked"},
    {"error": "unexpected"},
]
_PASSWORD_ERRORS = [
    "wrong_credentials",
    "invalid_email",
    "throttled",
    "inactive",
    "unfinished",
    "locked",
    "unexpected",
]
_ERROR_KEYS = [
    "bad_request",
    "not_found",
    "forbidden",
    "too_many_requests",
    "invalid_request",
    "unregistered_redirect_uri",
    "unknown_client",
    "request_expired",
    "csrf",
    "videoid_not_eligible",
    "internal",
    "videoid_not_eligible",
    "agent_only",
    "agent_sign_in",
]
_SECURITY_NOTICES = [str(notice) for notice in Notice]
_PASSWORD_STEP_ERRORS = [
    "mismatch",
    "too_short",
    "too_long",
    "common",
    "repetitive",
    "contains_identifier",
    "other",
]

VARIANTS: list[tuple[str, dict[str, object]]] = [
    *(
        ("videoid_start.html", {"request_id": "", "error": e})
        for e in ("consent_required", "not_eligible", "x")
    ),
    *(
        (
            "videoid_result.html",
            {"outcome": o, "reasons": ["face_mismatch"], "next_url": "/", "returning": True},
        )
        for o in ("awaiting_review", "abandoned", "rejected")
    ),
    *(
        ("agent.html", {"waiting": [], "takeable": 2, "running": [], "mine": None, "notice": n})
        for n in ("empty", "approved", "rejected", "returned", "gone", "released")
    ),
    (
        "agent.html",
        {
            "waiting": [
                {
                    "id": "a" * 32,
                    "mode": mode,
                    "minutes": 3,
                    "votes": votes,
                    "assigned": assigned,
                    "own": own,
                    "voted": voted,
                }
                for mode, votes, assigned, own, voted in (
                    ("reviewed", 0, False, True, False),
                    ("agent_led", 0, True, False, False),
                    ("reviewed", 1, False, False, True),
                    ("reviewed", 1, False, False, False),
                    ("reviewed", 0, False, False, False),
                )
            ],
            "takeable": 1,
            "running": [
                {"id": "b" * 32, "status": "capturing", "step": "face", "frames": {"fps": 15.0}, **who}
                for who in (
                    {"mine": True, "conducted": True},
                    {"mine": False, "conducted": True},
                    {"mine": False, "conducted": False},
                )
            ],
            "mine": "/agent/sessions/" + "c" * 32,
            "notice": None,
        },
    ),
    (
        "agent.html",
        {
            "waiting": [],
            "takeable": 0,
            "running": [],
            "mine": "/agent/sessions/" + "c" * 32 + "/live",
            "mine_live": True,
            "notice": None,
        },
    ),
    (
        "agent_session.html",
        {**_AGENT_SESSION, "stills": [], "document": {}, "automated": {}, "liveness": None},
    ),
    (
        "agent_session.html",
        {
            **_AGENT_SESSION,
            "mode": "agent_led",
            "report": {"recording": {"audio": False}},
            "earlier_rejection": True,
            "automated": {"approved": False, "reasons": ["x"]},
            "document": {**_AGENT_REPORT_DOCUMENT, "problems": ["document_expired"]},
        },
    ),
    (  # the reads of the document never agreed on the names
        "agent_session.html",
        {
            **_AGENT_SESSION,
            "document": {**_AGENT_REPORT_DOCUMENT, "names_confirmed": False, "unconfirmed_fields": ["names"]},
        },
    ),
    (  # an agent-led session of a person without a microphone: the agent's voice alone
        "agent_session.html",
        {
            **_AGENT_SESSION,
            "mode": "agent_led",
            "report": {"recording": {"audio": False, "agent_voice": True}},
        },
    ),
    *(
        ("agent_session.html", {**_AGENT_SESSION, "error": e})
        for e in (
            "checklist_incomplete",
            "invalid_reason",
            "note_required",
            "invalid_note",
            "invalid_decision",
        )
    ),
    ("login_email.html", {"client_name": "Portal", "passkey": _PASSKEY, "passkey_error": True}),
    *(("login_email.html", {"error": error}) for error in ("invalid_email", "rate_limited", "unexpected")),
    *(
        ("login_email.html", {"offer_email_link": False, "password_error": error, "retry_after": 30})
        for error in _PASSWORD_ERRORS
    ),
    ("login_password.html", {"request_id": "r1", "email": "a***@example.com", "passkey": _PASSKEY}),
    *(
        (
            "login_password.html",
            {"request_id": "r1", "email": "a***@example.com", "error": error, "retry_after": 1},
        )
        for error in _PASSWORD_ERRORS
    ),
    ("login_unavailable.html", {"request_id": "r1", "email": "a***@example.com", "client_name": "Portal"}),
    ("login_code.html", dict(_CODE_PAGE, method="sms")),
    ("login_code.html", dict(_CODE_PAGE, method="totp", account_change=True)),
    ("login_password.html", {"request_id": "r1", "email": "a***@example.com", "account_change": True}),
    ("login_code.html", dict(_CODE_PAGE, method="sms", challenge_id="c1")),
    ("login_code.html", dict(_CODE_PAGE, method="recovery")),
    ("login_code.html", dict(_CODE_PAGE, method="recovery", error="malformed")),
    ("login_code.html", dict(_CODE_PAGE, method="sms", challenge_id="c1", error="replayed")),
    *(("login_code.html", dict(_CODE_PAGE, **error)) for error in _CODE_ERRORS),
    ("email_link_confirm.html", {"token": "t", "email": "a***@example.com", "client_name": "Portal"}),
    *(("link_invalid.html", {"reason": reason}) for reason in ("used", "other_browser", "unknown")),
    ("link_invalid.html", {"reason": "used", "request_id": "r1"}),
    ("logout_confirm.html", {"client_name": "Portal"}),
    ("logged_out.html", {"client_name": "Portal", "return_url": "https://portal.example/"}),
    ("logged_out.html", {"return_url": "https://portal.example/"}),
    *(("error.html", {"status": 400, "title_key": key, "detail": "x"}) for key in _ERROR_KEYS),
    ("error.html", {"status": 429, "title_key": "too_many_requests", "retry_after": 300}),
    ("error.html", {"status": 429, "title_key": "too_many_requests", "retry_after": 21}),
    (
        "invite.html",
        {"step": "welcome", "invitation": _INVITATION, "tenant_name": "Acme", "client_name": "Portal"},
    ),
    (
        "invite.html",
        {"step": "existing", "invitation": _INVITATION, "tenant_name": "Acme", "email": "a@x.si"},
    ),
    (
        "invite.html",
        {"step": "existing", "invitation": _INVITATION, "tenant_name": "Acme", "client_name": "Portal"},
    ),
    (
        "invite.html",
        {"step": "existing", "invitation": dict(_INVITATION, return_url=None), "tenant_name": "A"},
    ),
    (
        "invite.html",
        {
            "step": "enrol",
            "invitation": _INVITATION,
            "tenant_name": "Acme",
            "email": "a@x.si",
            "client_name": "P",
        },
    ),
    ("invite.html", {"step": "enrol", "invitation": _INVITATION, "tenant_name": "Acme", "email": "a@x.si"}),
    (
        "invite.html",
        {
            "step": "enrol",
            "invitation": _INVITATION,
            "email": "a@x.si",
            "client_name": "P",
            "proves_password": True,
        },
    ),
    ("invite.html", {"step": "enrol", "invitation": _INVITATION, "email": "a@x.si", "proves_password": True}),
    ("invite.html", {"step": "done", "invitation": _INVITATION, "account_path": "/account?tenant=t1"}),
    (
        "invite.html",
        {
            "step": "existing",
            "invitation": dict(_INVITATION, return_url=None),
            "account_path": "/account?tenant=t1",
        },
    ),
    *(
        ("invite.html", {"step": "problem", "reason": "used", "invitation": invitation, "account_path": "/a"})
        for invitation in (_INVITATION, dict(_INVITATION, return_url=None))
    ),
    (
        "invite.html",
        {"step": "problem", "reason": "used", "invitation": _INVITATION, "client_name": "Portal"},
    ),
    *(
        ("invite.html", {"step": "invalid", "reason": reason})
        for reason in ("expired", "used", "revoked", "other_browser", "eid_erased", "unknown")
    ),
    ("onboarding.html", dict(_ONBOARDING, challenge_id="c1", error="invalid", attempts_left=1)),
    ("onboarding.html", dict(_ONBOARDING, step="details", error="unconfirmed")),
    ("onboarding.html", dict(_ONBOARDING, step="factor", error="choose")),
    ("onboarding.html", dict(_ONBOARDING, step="app", enrolment=_ENROLMENT)),
    *(
        ("onboarding.html", dict(_ONBOARDING, step="password", error=error))
        for error in _PASSWORD_STEP_ERRORS
    ),
    ("onboarding.html", dict(_ONBOARDING, step="recovery")),
    (
        "onboarding.html",
        dict(
            _ONBOARDING, step="recovery", codes=["AAAA-BBBB", "CCCC-DDDD"], recovery_set="s1", replaced=True
        ),
    ),
    (
        "onboarding.html",
        dict(
            _ONBOARDING,
            step="recovery",
            codes=["AAAA-BBBB"],
            codes_for="ana@example.com",
            codes_made="2026-12-08 10:00 UTC",
            recovery_set="s1",
        ),
    ),
    ("onboarding.html", dict(_ONBOARDING, step="recovery", error="stale")),
    ("onboarding.html", dict(_ONBOARDING, step="finish")),
    *(
        (
            "onboarding.html",
            dict(
                _ONBOARDING, step="password", error=error, invitation=dict(_INVITATION, proves_password=True)
            ),
        )
        for error in (None, "wrong_credentials", "throttled", "locked")
    ),
    ("onboarding.html", dict(_ONBOARDING, step="finish", invitation=dict(_INVITATION, enrols_existing=True))),
    (
        "emails/login_link.txt",
        {
            "link": "https://idp.test/l",
            "minutes": 1,
            "client_name": "Portal",
            "ip": "192.0.2.1",
            "requested_at": "t",
        },
    ),
    ("emails/login_link.html", {"link": "https://idp.test/l", "minutes": 5, "client_name": "Portal"}),
    (
        "emails/login_link.html",
        {"link": "https://idp.test/l", "minutes": 5, "ip": "192.0.2.1", "requested_at": "t"},
    ),
    (
        "emails/invitation.txt",
        {"link": "https://idp.test/i", "tenant_name": "Acme", "days": 1, "given_name": "Ana"},
    ),
    ("emails/invitation.html", {"link": "https://idp.test/i", "tenant_name": "Acme", "days": 5}),
    (
        "emails/invitation.txt",
        {"link": "https://idp.test/i", "tenant_name": "Acme", "days": 2, "existing": True},
    ),
    (
        "emails/invitation.html",
        {"link": "https://idp.test/i", "tenant_name": "Acme", "days": 2, "existing": True},
    ),
    # the account page, its changes, and password reset
    *(
        ("account.html", dict(_ACCOUNT, done=done))
        for done in ("password", "phone", "app", "passkey_added", "passkey_removed", "recovery")
    ),
    (  # an eID made by an email-link sign-in: its address confirmed by the link
        "account.html",
        dict(_ACCOUNT, person={"attributes": {"email": _attribute("ana@example.com", "email_link")}}),
    ),
    (
        "account.html",
        dict(
            _ACCOUNT,
            enrolled={
                "password": False,
                "app": False,
                "recovery_codes_left": 1,
                "passkeys": [],
                "locked": True,
            },
            phone=None,
            events=[],
        ),
    ),
    ("account_signin.html", {"unknown": True}),
    *(("account_change.html", {"step": "password", "error": error}) for error in _PASSWORD_STEP_ERRORS),
    ("account_change.html", {"step": "phone", "phone_value": "+386"}),
    ("account_change.html", {"step": "phone", "phone_value": "040", "error": "invalid_phone"}),
    ("account_change.html", {"step": "phone", "phone_value": "+38640", "error": "sms_failed"}),
    ("account_change.html", {"step": "phone", "challenge_id": "c1", "to": "+386 41 *** 789"}),
    (
        "account_change.html",
        {"step": "phone", "challenge_id": "c1", "to": "+386 41 123 789", "resend_phone": "+38641123789"},
    ),
    ("account_change.html", {"step": "app", "has_app": True}),
    ("account_change.html", {"step": "app", "has_app": False}),
    ("account_change.html", {"step": "app", "enrolment": _ENROLMENT, "error": "invalid", "attempts_left": 2}),
    ("account_change.html", {"step": "recovery", "left": 3}),
    ("account_change.html", {"step": "recovery", "codes": ["AAAA-BBBB", "CCCC-DDDD"], "recovery_set": "s1"}),
    ("account_change.html", {"step": "recovery", "left": 3, "error": "stale"}),
    (
        "account_change.html",
        {
            "step": "passkeys",
            "options_json": "{}",
            "passkey_challenge": "c1",
            "passkeys": [
                {"name": "Laptop", "credential_id": "k1", "backup_eligible": True},
                {"name": "Key", "credential_id": "k2", "backup_eligible": False},
            ],
        },
    ),
    *(
        ("account_change.html", {"step": "passkeys", "options_json": "{}", "passkeys": [], "error": error})
        for error in (
            "cancelled",
            "user_not_verified",
            "already_registered",
            "unknown_credential",
            "last_advanced_method",
            "other",
        )
    ),
    (  # the confirmation that removes a passkey: one used to sign in, synced
        "account_change.html",
        {
            "step": "passkey_remove",
            "passkey": {"name": "Laptop", "credential_id": "k1", "backup_eligible": True},
            "added_on": "2026-01-02",
            "last_used_on": "2026-02-03",
        },
    ),
    (  # one never used, and the eID's only way to the advanced level: it cannot go
        "account_change.html",
        {
            "step": "passkey_remove",
            "passkey": {"name": "Key", "credential_id": "k2", "backup_eligible": False},
            "added_on": "2026-01-02",
            "only_way": True,
        },
    ),
    ("account_change.html", {"step": "block"}),
    ("account_change.html", {"step": "block", "error": "not_confirmed"}),
    ("account_change.html", {"step": "blocked"}),
    ("account_change.html", {"step": "needs_setup"}),
    *(("reset.html", {"step": "request", "error": error}) for error in ("invalid_email", "rate_limited")),
    ("reset.html", {"step": "sent", "email": "a***@example.com", "minutes": 15}),
    ("reset.html", dict(_RESET_CODE)),
    ("reset.html", dict(_RESET_CODE, method="sms")),
    ("reset.html", dict(_RESET_CODE, method="sms", challenge_id="c1", error="sms_failed")),
    ("reset.html", dict(_RESET_CODE, method="recovery", error="unknown")),
    ("reset.html", dict(_RESET_CODE, methods=["sms"], method="sms", challenge_id="c1")),
    *(("reset.html", {"step": "password", "error": error}) for error in _PASSWORD_STEP_ERRORS),
    ("reset.html", {"step": "done", "request_id": "r1"}),
    ("reset.html", {"step": "done", "request_id": None}),
    ("reset.html", {"step": "no_second_factor"}),
    ("reset.html", {"step": "no_second_factor", "has_password": False}),
    ("reset.html", {"step": "invalid", "sign_in_url": "/account?tenant=t1"}),
    ("reset.html", {"step": "invalid"}),
    (
        "emails/password_reset.txt",
        {
            "link": "https://idp.test/r",
            "minutes": 1,
            "ip": "192.0.2.1",
            "requested_at": "2026-01-02 03:04 UTC",
        },
    ),
    ("emails/password_reset.html", {"link": "https://idp.test/r", "minutes": 2, "ip": "192.0.2.1"}),
    ("emails/password_reset.html", {"link": "https://idp.test/r", "minutes": 3, "requested_at": "t"}),
    *(
        (
            f"emails/security_notice.{kind}",
            {
                "notice": notice,
                "when": "2026-01-02 03:04 UTC",
                "ip": "192.0.2.1" if kind == "txt" else None,
                "phone": "+386 40 *** 456",
                "account_link": "https://idp.test/account?tenant=t1",
                "organisation": "Acme",
            },
        )
        for kind in ("txt", "html")
        for notice in _SECURITY_NOTICES
    ),
    *(  # a passkey added or removed, by its name
        (
            f"emails/security_notice.{kind}",
            {
                "notice": notice,
                "when": "2026-01-02 03:04 UTC",
                "passkey": "Laptop",
                "account_link": "https://idp.test/account?tenant=t1",
                "organisation": "Acme",
            },
        )
        for kind in ("txt", "html")
        for notice in ("passkey_added", "passkey_removed")
    ),
    # video identification: consent refusals, the outcomes, leaving for the application or not
    *(
        ("videoid_start.html", {"request_id": "", "error": error})
        for error in ("consent_required", "not_eligible", "unavailable")
    ),
    *(
        (
            "videoid_result.html",
            {"outcome": outcome, "reasons": ["face_mismatch"], "next_url": "/", "returning": False},
        )
        for outcome in ("awaiting_review", "abandoned", "rejected")
    ),
]

COMMON: dict[str, object] = {
    "languages": LANGUAGES,
    "csrf_token": "csrf-value",
    "current_path": "/login?request_id=r1",
    "branding": {},
}


def all_pages() -> Pages:
    return Pages(languages=LANGUAGES)


def as_read(text: str) -> str:
    """A page's text with its no-break spaces as spaces (idp.web.page_gettext glues a one-letter
    word to the next one in sl, hr and sr), for looking for a phrase as a reader sees it."""
    return text.replace("\u00a0", " ")


def render(pages: Pages, name: str, language: str, **context: object) -> str:
    """Render ``name`` with its ``PAGES`` context, overridden by ``context``."""
    return pages.render(name, language=language, **{**COMMON, **PAGES[name][0], **context})
