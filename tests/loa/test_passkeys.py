"""Passkeys: registration and login ceremonies with a software authenticator (soft-webauthn).

On SQLite and PostgreSQL. The authenticator makes real P-256 keys and real signatures; the
server side is py_webauthn with this project's storage of challenges, counters and flags.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from idp.eids import EID
from idp.errors import LoginError, NotFoundError
from idp.storage.database import Database
from levels_of_assurance.authenticators import passkey
from levels_of_assurance.authenticators.passkey import Passkey, PasskeyError, PasskeyLogin, PasskeyProblem
from tests.support.factors import events, person
from tests.support.soft_authenticator import SoftPasskey

RP_ID = "idp.test"
ORIGIN = "https://idp.test"
T0 = 1_800_000_000.0


@pytest.fixture
async def signer(db: Database) -> EID:
    return await person(db)


async def register(
    db: Database,
    signer: EID,
    device: SoftPasskey,
    *,
    name: str = "Phone",
    now: float = T0,
    origin: str = ORIGIN,
) -> Passkey:
    options, challenge_id = await db.write(
        lambda tx: passkey.registration_options(tx, rp_id=RP_ID, rp_name="Acme eID", eid=signer, now=now)
    )
    answer = device.register(options, origin)
    return await db.write(
        lambda tx: passkey.finish_registration(
            tx,
            challenge_id=challenge_id,
            credential_json=answer,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            name=name,
            now=now + 1,
        )
    )


async def options_for(db: Database, eid_id: str | None, *, now: float = T0 + 10) -> tuple[str, str]:
    return await db.write(lambda tx: passkey.authentication_options(tx, rp_id=RP_ID, eid_id=eid_id, now=now))


async def finish(
    db: Database, challenge_id: str, answer: str, *, now: float = T0 + 11, **kw: Any
) -> PasskeyLogin:
    return await db.write(
        lambda tx: passkey.finish_authentication(
            tx,
            challenge_id=challenge_id,
            credential_json=answer,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            now=now,
            **kw,
        )
    )


async def login(db: Database, device: SoftPasskey, eid_id: str | None, **kw: Any) -> PasskeyLogin:
    options, challenge_id = await options_for(db, eid_id)
    return await finish(db, challenge_id, device.authenticate(options, ORIGIN), **kw)


async def refused(coro: Any) -> PasskeyError:
    with pytest.raises(PasskeyError) as caught:
        await coro
    assert isinstance(caught.value, LoginError)
    return caught.value


async def test_registration_options_ask_for_a_discoverable_verified_passkey(
    db: Database, signer: EID
) -> None:
    options_json, challenge_id = await db.write(
        lambda tx: passkey.registration_options(tx, rp_id=RP_ID, rp_name="Acme eID", eid=signer, now=T0)
    )
    options = json.loads(options_json)
    assert options["rp"] == {"id": RP_ID, "name": "Acme eID"}
    assert options["user"]["name"] == signer.username and options["user"]["displayName"] == "Ana Novak"
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["attestation"] == "none" and options["excludeCredentials"] == []
    assert options["timeout"] == 300_000
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert len(challenge_id) >= 40 and challenge_id not in options_json


async def test_register_then_login_with_the_passkey(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    stored = await register(db, signer, device, name="  Ana's   phone ")
    assert stored.eid_id == signer.id and stored.name == "Ana's phone"
    assert stored.user_verified and not stored.backup_eligible and not stored.backup_state
    assert stored.transports == ("internal", "hybrid") and stored.sign_count == 0
    assert stored.aaguid == "00000000-0000-0000-0000-000000000000"

    options_json, challenge_id = await options_for(db, signer.id)
    options = json.loads(options_json)
    assert options["rpId"] == RP_ID and options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [stored.credential_id]
    result = await finish(db, challenge_id, device.authenticate(options_json, ORIGIN))
    assert result == PasskeyLogin(
        eid_id=signer.id,
        credential_id=stored.credential_id,
        user_verified=True,
        backed_up=False,
        amr=("hwk", "user", "pin", "mfa"),
    )
    [after] = await db.read(lambda conn: passkey.list_passkeys(conn, eid_id=signer.id))
    assert after.sign_count == 1 and after.last_used_at == T0 + 11
    trail = await events(db, "passkey.", tenant_id=signer.tenant_id)
    assert [e["event_type"] for e in trail] == ["passkey.registered", "passkey.used"]
    assert trail[1]["details"]["amr"] == ["hwk", "user", "pin", "mfa"]


async def test_username_less_login(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    options_json, challenge_id = await options_for(db, None)
    assert json.loads(options_json)["allowCredentials"] == []
    result = await finish(db, challenge_id, device.authenticate(options_json, ORIGIN))
    assert result.eid_id == signer.id


async def test_username_less_login_needs_the_user_handle_of_the_owner(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    other = await person(db)
    options_json, challenge_id = await options_for(db, None)
    genuine = json.loads(device.authenticate(options_json, ORIGIN))
    genuine["response"]["userHandle"] = passkey_bytes(other.id)
    error = await refused(finish(db, challenge_id, json.dumps(genuine)))
    assert error.code == PasskeyProblem.INVALID_RESPONSE and "user handle" in str(error)
    options_json, challenge_id = await options_for(db, None)
    genuine = json.loads(device.authenticate(options_json, ORIGIN))
    del genuine["response"]["userHandle"]
    assert (
        await refused(finish(db, challenge_id, json.dumps(genuine)))
    ).code == PasskeyProblem.INVALID_RESPONSE


def passkey_bytes(text: str) -> str:
    from webauthn.helpers import bytes_to_base64url

    return bytes_to_base64url(text.encode())


async def test_wrong_origin_is_refused(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    options_json, challenge_id = await options_for(db, signer.id)
    error = await refused(
        finish(db, challenge_id, device.authenticate(options_json, "https://idp.test.evil.example"))
    )
    assert error.code == PasskeyProblem.INVALID_RESPONSE and "origin" in str(error)
    with pytest.raises(PasskeyError) as caught:  # registration from a phishing page fails as well
        await register(db, signer, SoftPasskey(), origin="https://evil.example")
    assert "origin" in str(caught.value)


async def test_wrong_challenge_is_refused(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    first_options, _first_id = await options_for(db, signer.id)
    _second_options, second_id = await options_for(db, signer.id)
    error = await refused(finish(db, second_id, device.authenticate(first_options, ORIGIN)))
    assert error.code == PasskeyProblem.INVALID_RESPONSE and "challenge" in str(error)
    assert (await refused(finish(db, "no-such-challenge", "{}"))).code == PasskeyProblem.UNKNOWN_CHALLENGE
    # a registration challenge does not serve a login
    _options, registration_id = await db.write(
        lambda tx: passkey.registration_options(tx, rp_id=RP_ID, rp_name="Acme", eid=signer, now=T0)
    )
    answer = device.authenticate(first_options, ORIGIN)
    assert (await refused(finish(db, registration_id, answer))).code == PasskeyProblem.UNKNOWN_CHALLENGE


async def test_replayed_and_expired_challenges(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    options_json, challenge_id = await options_for(db, signer.id)
    answer = device.authenticate(options_json, ORIGIN)
    await finish(db, challenge_id, answer)
    assert (await refused(finish(db, challenge_id, answer))).code == PasskeyProblem.USED_CHALLENGE
    options_json, challenge_id = await options_for(db, signer.id, now=T0 + 100)
    late = device.authenticate(options_json, ORIGIN)
    error = await refused(finish(db, challenge_id, late, now=T0 + 400))
    assert error.code == PasskeyProblem.EXPIRED_CHALLENGE


async def test_a_spent_challenge_refuses_a_later_valid_answer(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)

    async def spend(challenge_id: str, ceremony: str) -> None:
        await db.write(
            lambda tx: passkey.spend_challenge(tx, challenge_id=challenge_id, ceremony=ceremony, now=T0 + 11)
        )

    options_json, challenge_id = await options_for(db, signer.id)
    answer = device.authenticate(options_json, ORIGIN)
    await spend(challenge_id, "authentication")  # as after a refused answer
    assert (await refused(finish(db, challenge_id, answer))).code == PasskeyProblem.USED_CHALLENGE
    options_json, challenge_id = await options_for(db, signer.id)
    await spend(challenge_id, "registration")  # another ceremony's spend leaves it as it is
    await spend("no-such-challenge", "authentication")
    await finish(db, challenge_id, device.authenticate(options_json, ORIGIN))


async def test_counter_going_backwards_means_a_clone(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    await login(db, device, signer.id)
    await login(db, device, signer.id)  # counter 2 stored
    device.sign_count = 0  # a copy of the key with its own counter
    error = await refused(login(db, device, signer.id))
    assert error.code == PasskeyProblem.CLONED_AUTHENTICATOR and "from 2 to 1" in str(error)
    [stored] = await db.read(lambda conn: passkey.list_passkeys(conn, eid_id=signer.id))
    assert stored.sign_count == 2


async def test_synced_passkey_without_a_counter(db: Database, signer: EID) -> None:
    device = SoftPasskey(synced=True, keeps_counter=False)
    stored = await register(db, signer, device)
    assert stored.backup_eligible and stored.backup_state
    for _ in range(3):  # zero every time is allowed: the authenticator keeps no counter
        result = await login(db, device, signer.id)
        assert result.backed_up and result.amr == ("swk", "user", "pin", "mfa")


async def test_user_verification_required(db: Database, signer: EID) -> None:
    error = await refused(register(db, signer, SoftPasskey(user_verified=False)))
    assert error.code == PasskeyProblem.USER_NOT_VERIFIED
    assert await db.read(lambda conn: passkey.list_passkeys(conn, eid_id=signer.id)) == []
    device = SoftPasskey()
    await register(db, signer, device)
    device.user_verified = False  # e.g. a touch without the PIN
    assert (await refused(login(db, device, signer.id))).code == PasskeyProblem.USER_NOT_VERIFIED
    # a caller that does not need verification gets presence only, and amr says so
    result = await login(db, device, signer.id, require_user_verification=False)
    assert (result.user_verified, result.amr) == (False, ("hwk", "user"))


async def test_unknown_or_foreign_credentials(db: Database, signer: EID) -> None:
    mine, theirs = SoftPasskey(), SoftPasskey()
    await register(db, signer, mine)
    other = await person(db)
    await register(db, other, theirs)
    # the other person's passkey against a challenge for this eID
    _options, challenge_id = await options_for(db, signer.id)
    options_json, _unused = await options_for(db, None)
    answer = theirs.authenticate(options_json, ORIGIN)
    assert (await refused(finish(db, challenge_id, answer))).code == PasskeyProblem.UNKNOWN_CREDENTIAL
    stranger = SoftPasskey()
    stranger.cred_init(RP_ID, b"nobody")
    options_json, challenge_id = await options_for(db, None)
    unknown = stranger.authenticate(options_json, ORIGIN)
    assert (await refused(finish(db, challenge_id, unknown))).code == PasskeyProblem.UNKNOWN_CREDENTIAL


async def test_second_registration_excludes_the_first(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    first = await register(db, signer, device)
    options_json, _challenge = await db.write(
        lambda tx: passkey.registration_options(tx, rp_id=RP_ID, rp_name="Acme", eid=signer, now=T0 + 5)
    )
    excluded = json.loads(options_json)["excludeCredentials"]
    assert [c["id"] for c in excluded] == [first.credential_id]
    assert excluded[0]["transports"] == ["internal", "hybrid"]
    with pytest.raises(ValueError, match="InvalidStateError"):
        device.register(options_json, ORIGIN)
    await register(db, signer, SoftPasskey(), name="Laptop", now=T0 + 6)
    names = [p.name for p in await db.read(lambda conn: passkey.list_passkeys(conn, eid_id=signer.id))]
    assert names == ["Phone", "Laptop"]


async def test_no_passkey_yet(db: Database, signer: EID) -> None:
    assert (await refused(options_for(db, signer.id))).code == PasskeyProblem.NO_PASSKEY


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "not json",
        "[]",
        "{}",
        '{"id": 1}',
        '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {}}',
        '{"id": "AA", "rawId": "%%%", "type": "public-key", "response": {"clientDataJSON": "x"}}',
        "x" * (passkey.MAX_RESPONSE + 1),
    ],
)
async def test_hostile_responses_get_a_clear_error(db: Database, signer: EID, hostile: str) -> None:
    device = SoftPasskey()
    await register(db, signer, device)
    _options, challenge_id = await options_for(db, None)
    assert (await refused(finish(db, challenge_id, hostile))).code in (
        PasskeyProblem.INVALID_RESPONSE,
        PasskeyProblem.UNKNOWN_CREDENTIAL,
    )
    _options_json, challenge_id = await db.write(
        lambda tx: passkey.registration_options(tx, rp_id=RP_ID, rp_name="Acme", eid=signer, now=T0)
    )
    error = await refused(
        db.write(
            lambda tx: passkey.finish_registration(
                tx,
                challenge_id=challenge_id,
                credential_json=hostile,
                expected_origin=ORIGIN,
                rp_id=RP_ID,
                name="x",
                now=T0,
            )
        )
    )
    assert error.code == PasskeyProblem.INVALID_RESPONSE


async def test_names_are_checked(db: Database, signer: EID) -> None:
    # blank, too long, or not one line of text (an escape, NUL, a bidi override)
    for name in ("", "   ", "x" * 65, "a\x1bb", "a\x00b", "Laptop\u202egpj.exe"):
        assert (
            await refused(register(db, signer, SoftPasskey(), name=name))
        ).code == PasskeyProblem.INVALID_NAME


async def test_remove(db: Database, signer: EID) -> None:
    device = SoftPasskey()
    stored = await register(db, signer, device)
    other = await person(db)
    with pytest.raises(NotFoundError):  # not the other person's to remove
        await db.write(
            lambda tx: passkey.remove_passkey(tx, eid_id=other.id, credential_id=stored.credential_id)
        )
    await db.write(
        lambda tx: passkey.remove_passkey(tx, eid_id=signer.id, credential_id=stored.credential_id)
    )
    assert await db.read(lambda conn: passkey.list_passkeys(conn, eid_id=signer.id)) == []
    options_json, challenge_id = await options_for(db, None)
    answer = device.authenticate(options_json, ORIGIN)
    assert (await refused(finish(db, challenge_id, answer))).code == PasskeyProblem.UNKNOWN_CREDENTIAL
    [removed] = await events(db, "passkey.removed", tenant_id=signer.tenant_id)
    assert removed["details"]["credential_id"] == stored.credential_id[:64]


def test_what_a_passkey_proves() -> None:
    assert passkey.PROVES.phishing_resistant and passkey.PROVES.factor == "possession"
    assert passkey.PROVES.amr == ("hwk",)
