"""The person's endpoints refuse what they must, in their own JSON error format, never a 500."""

from __future__ import annotations

import re

import httpx

from idp import eids
from tests.support.flows import form_value
from tests.support.server import ServedApp
from tests.support.videoid_client import advanced_person, broken_offers, signed_in, start_session


async def test_only_an_advanced_session_may_start(videoid_app: ServedApp) -> None:
    async with httpx.AsyncClient(
        base_url=videoid_app.issuer, verify=videoid_app.ssl_context(), headers={"Accept-Language": "en"}
    ) as anonymous:
        page = await anonymous.get("/videoid/start")
        assert page.status_code == 403 and "Video identification is not available here" in page.text
        assert (await anonymous.get("/videoid/start", params={"request_id": "nope"})).status_code == 403
    person = advanced_person(videoid_app)
    async with signed_in(videoid_app, person) as browser:
        page = await browser.get("/videoid/start")
        assert page.status_code == 200
        csrf = form_value(page.text, "csrf_token")
        missing = await browser.post("/videoid/start", data={"csrf_token": csrf, "request_id": ""})
        assert missing.status_code == 400 and 'id="consent-error"' in missing.text
        forged = await browser.post("/videoid/start", data={"csrf_token": "x", "consent": "yes"})
        assert forged.status_code == 403


async def test_an_eid_without_a_verified_phone_cannot_start(videoid_app: ServedApp) -> None:
    person = advanced_person(videoid_app)
    videoid_app.write(
        lambda tx: eids.set_verified(
            tx, eid_id=person.id, values={"phone_number": "+38640999999"}, method="manual", evidence_ref=None
        )
    )
    videoid_app.write(
        lambda tx: tx.conn.execute(
            eids.tables.eid_attributes.update()
            .where(eids.tables.eid_attributes.c.eid_id == person.id)
            .values(verified_at=None)
        )
    )
    async with signed_in(videoid_app, person) as browser:
        page = await browser.get("/videoid/start")
        refused = await browser.post(
            "/videoid/start", data={"csrf_token": form_value(page.text, "csrf_token"), "consent": "yes"}
        )
        assert refused.status_code == 409 and "confirmed mobile number" in refused.text


async def test_hostile_requests_get_clear_errors(videoid_app: ServedApp) -> None:
    person = advanced_person(videoid_app)
    async with signed_in(videoid_app, person) as browser:
        session_id, csrf = await start_session(browser)
        base = f"/videoid/{session_id}"
        headers = {"X-CSRF-Token": csrf}

        async def error(response: httpx.Response, status: int, code: str) -> None:
            assert response.status_code == status, response.text
            body = response.json()
            assert body["error"] == code and body["error_description"]

        await error(await browser.get("/videoid/short/status"), 404, "not_found")
        await error(await browser.get("/videoid/" + "A" * 40 + "/status"), 404, "not_found")
        await error(await browser.post(f"{base}/offer", json={"sdp": "v=0", "type": "offer"}), 403, "csrf")
        await error(
            await browser.post(f"{base}/offer", content=b"{", headers=headers), 400, "invalid_request"
        )
        await error(
            await browser.post(
                f"{base}/offer", content=b"[", headers={**headers, "Content-Type": "application/json"}
            ),
            400,
            "invalid_request",
        )
        await error(await browser.post(f"{base}/offer", json=[1, 2], headers=headers), 400, "invalid_request")
        await error(
            await browser.post(f"{base}/offer", json={"sdp": 5}, headers=headers), 400, "invalid_offer"
        )
        await error(
            await browser.post(f"{base}/offer", json={"sdp": "hello", "type": "offer"}, headers=headers),
            400,
            "invalid_offer",
        )
        await error(
            await browser.post(
                f"{base}/offer", json={"sdp": "v=0\r\nm=audio 9", "type": "offer"}, headers=headers
            ),
            400,
            "invalid_offer",
        )
        await error(
            await browser.post(
                f"{base}/offer", json={"sdp": "v=0\r\n" + "x" * 90000, "type": "offer"}, headers=headers
            ),
            400,
            "invalid_request",
        )
        # offers that pass the first look but that aiortc cannot apply: 400, and the session stays
        # as it was (its status below)
        for offer in await broken_offers(direction="sendonly"):
            await error(
                await browser.post(f"{base}/offer", json=offer, headers=headers), 400, "invalid_offer"
            )
        await error(
            await browser.post(f"{base}/code", json={"code": "123456"}, headers=headers), 409, "wrong_state"
        )
        await error(
            await browser.post(f"{base}/code", json={"code": 123456}, headers=headers), 400, "invalid_request"
        )
        status = (await browser.get(f"{base}/status")).json()
        assert status == {"status": "consented"}
        result = await browser.get(f"{base}/result")
        assert result.status_code == 303 and result.headers["location"] == base

    # another browser (even signed in as the same person) cannot see or drive the session
    async with signed_in(videoid_app, person) as other:
        await other.get("/videoid/start")  # gets its own browser cookie
        await error(await other.get(f"{base}/status"), 403, "forbidden")
        page = await other.get(base)
        assert page.status_code == 403
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", session_id)
