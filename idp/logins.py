"""A login in progress: the authorization request it serves, who was identified, what was proven.

An authorization request that needs a login (``auth_requests``) carries the level it asks for,
the eID once identified, and the factors proven so far. Each authenticator adds its factor;
when :func:`levels_of_assurance.policy.decide` says the level is reached the login completes:
the SSO session is created (or continued, for step-up) with the acr, amr and factors, and the
authorization request resumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from idp import eids, proofing, secrets, sessions, tenants
from idp.errors import ConflictError
from idp.storage import tables
from idp.storage.database import Tx
from idp.storage.prepared import Prepared, prefixed, unprefixed
from levels_of_assurance.ladder import Level, RequestedLevel, acr_for, parse_acr
from levels_of_assurance.policy import Decision, Factor, amr_of, decide, factors_from_json


@dataclass(slots=True, frozen=True)
class Login:
    request_id: str
    client_id: str
    client_name: str
    tenant: tenants.Tenant
    requested: RequestedLevel
    eid_id: str | None
    factors: tuple[Factor, ...]
    params: dict[str, Any]
    created_at: float

    @property
    def not_before(self) -> float | None:
        """Factors older than this do not count (``prompt=login``: only this request's)."""
        prompt = str(self.params.get("prompt") or "").split()
        return self.created_at if "login" in prompt else None


_R, _C, _T = tables.auth_requests.c, tables.clients.c, tables.tenants.c
# built once, run on the driver (idp.storage.prepared): the sign-in pages read it on every request
_COLUMNS = (
    _R.id,
    _R.client_id,
    _R.params,
    _R.browser_digest,
    _R.expires_at,
    _R.completed_at,
    _R.acr,
    _R.eid_id,
    _R.factors,
    _R.created_at,
    _C.name,
    _C.tenant_id,
    _T.slug.label("tenant_slug"),
    _T.name.label("tenant_name"),
    _T.branding.label("tenant_branding"),
    _T.status.label("tenant_status"),
    _T.login_token_unknown_users.label("tenant_login_token_unknown_users"),
)
_LOAD = Prepared(
    select(*_COLUMNS)
    .join(tables.clients, _C.client_id == _R.client_id)
    .join(tables.tenants, _T.id == _C.tenant_id)
    .where(_R.id == bindparam("request_id"))
)
# the login read with its eID in one statement (idp.web.code_routes): its columns under names of
# their own, beside the eID's, and the condition that finds both (parameter ``request_id``)
_PREFIX = "login_"
JOINED_COLUMNS = prefixed(_PREFIX, _COLUMNS)
WITH_ITS_EID = (
    (_R.id == bindparam("request_id"))
    & (_C.client_id == _R.client_id)
    & (_T.id == _C.tenant_id)
    & (tables.eids.c.id == _R.eid_id)
)


def from_joined(row: Mapping[str, Any], *, browser: str, now: float) -> Login | None:
    """:func:`from_row` of a row with :data:`JOINED_COLUMNS`."""
    return from_row(unprefixed(row, _PREFIX), browser=browser, now=now)


def load(conn: Connection, request_id: str, *, browser: str | None, now: float) -> Login | None:
    """The live login for ``request_id`` if it belongs to ``browser``; None otherwise."""
    if browser is None or not request_id:
        return None
    return from_row(_LOAD.first(conn, {"request_id": request_id}), browser=browser, now=now)


def from_row(row: Mapping[str, Any] | None, *, browser: str, now: float) -> Login | None:
    """The login of a row of its columns if it is live and belongs to ``browser``; else None."""
    if row is None or row["expires_at"] <= now or not secrets.matches(browser, row["browser_digest"]):
        return None
    tenant = tenants.Tenant(
        row["tenant_id"],
        row["tenant_slug"],
        row["tenant_name"],
        row["tenant_branding"] or {},
        row["tenant_status"],
    )
    acr = row["acr"] or acr_for(Level.BASIC)
    return Login(
        request_id=row["id"],
        client_id=row["client_id"],
        client_name=row["name"],
        tenant=tenant,
        requested=RequestedLevel(parse_acr(acr), acr),
        eid_id=row["eid_id"],
        factors=tuple(factors_from_json(row["factors"])),
        params=dict(row["params"]),
        created_at=row["created_at"],
    )


def start(
    tx: Tx,
    *,
    request_id: str,
    acr: str,
    eid_id: str | None = None,
    factors: list[Factor] | None = None,
) -> None:
    """Remember the level a new login needs and, for step-up, who it is and what still counts."""
    tx.conn.execute(
        update(tables.auth_requests)
        .where(tables.auth_requests.c.id == request_id)
        .values(acr=acr, eid_id=eid_id, factors=[f.to_json() for f in factors or []])
    )


_ADD_FACTOR = Prepared(
    update(tables.auth_requests)
    .where((_R.id == bindparam("request_id")) & _R.completed_at.is_(None))
    .values(
        eid_id=bindparam("eid_id"), factors=bindparam("factors", type_=tables.auth_requests.c.factors.type)
    )
)
_COMPLETE = Prepared(
    update(tables.auth_requests).where(_R.id == bindparam("request_id")).values(completed_at=bindparam("now"))
)


def add_factor(tx: Tx, login: Login, *, eid_id: str, factor: Factor) -> Login:
    """Record ``factor`` for ``eid_id``; a different person than the one identified starts over."""
    if login.eid_id is not None and login.eid_id != eid_id:
        kept: list[Factor] = []
    else:
        kept = [f for f in login.factors if f.method != factor.method]
    kept.append(factor)
    done = _ADD_FACTOR.run(
        tx.conn, {"request_id": login.request_id, "eid_id": eid_id, "factors": [f.to_json() for f in kept]}
    )
    if done != 1:
        raise ConflictError("this sign-in was already completed; start again from the application")
    return Login(
        login.request_id,
        login.client_id,
        login.client_name,
        login.tenant,
        login.requested,
        eid_id,
        tuple(kept),
        login.params,
        login.created_at,
    )


def decision(
    login: Login,
    *,
    identity_proofed: bool = False,
    passkey_available: bool = True,
    requested: Level | None = None,
) -> Decision:
    """What the login's factors reach against its level (or ``requested``); ``identity_proofed``
    comes from the eID's proofing record (:func:`idp.proofing.is_proofed`)."""
    return decide(
        login.factors,
        requested=login.requested.level if requested is None else requested,
        not_before=login.not_before,
        identity_proofed=identity_proofed,
        passkey_available=passkey_available,
    )


@dataclass(slots=True, frozen=True)
class Completed:
    """A login that reached its level: the new SSO session and the person it is for."""

    issued: sessions.Issued
    person: eids.EID


def complete(
    tx: Tx,
    login: Login,
    *,
    decided: Decision,
    previous: sessions.Session | None,
    ttl: float,
    client_ip: str | None,
    person: eids.EID | None = None,
) -> Completed:
    """Turn a login that reached its level into an SSO session, and close the login. ``person``
    is the login's eID when the caller read it in ``tx`` (its status as committed now: an eID
    suspended since the factor was checked must not get a session)."""
    assert decided.satisfied and decided.level is not None and login.eid_id is not None
    if person is None:
        person = eids.get(tx.conn, login.eid_id)
    if not person.active:
        raise ConflictError("this eID is suspended or blocked")
    factors = list(decided.counted)
    issued = sessions.authenticate(
        tx,
        previous=previous,
        tenant_id=login.tenant.id,
        eid_id=person.id,
        username=person.username,
        acr=acr_for(decided.level),
        amr=amr_of(factors),
        ttl=ttl,
        client_ip=client_ip,
        method="+".join(dict.fromkeys(str(f.method) for f in factors)),
        factors=factors,
    )
    _COMPLETE.run(tx.conn, {"request_id": login.request_id, "now": tx.now})
    return Completed(issued, person)


# the eID with whether it is proofed, in one statement: the proofing decides whether the level is
# reached, the eID's status whether the login may complete
_PROOFED = eids.with_attributes(eids.BY_ID, proofing.PROOFING_OF_EID.label("proofing"))


def finish_if_reached(
    tx: Tx, login: Login, *, cookie: str | None, ttl: float, client_ip: str | None
) -> tuple[Decision, Completed | None]:
    """In the transaction that recorded a factor: complete the login when its level is reached
    (one commit for the factor and the session), else say what is still missing."""
    found = eids.load_with(tx.conn, _PROOFED, {"id": login.eid_id}) if login.eid_id is not None else None
    decided = decision(login, identity_proofed=found is not None and found[1]["proofing"] is not None)
    if not decided.satisfied:
        return decided, None
    previous = sessions.load(tx.conn, cookie, now=tx.now)
    person = found[0] if found is not None else None  # None: complete() says the eID is gone
    return decided, complete(
        tx, login, decided=decided, previous=previous, ttl=ttl, client_ip=client_ip, person=person
    )
