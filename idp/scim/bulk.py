"""Bulk operations (RFC 7644 §3.7): ordered, with ``bulkId`` references and ``failOnErrors``.

Each operation runs in its own transaction through ``execute`` (supplied by the web layer),
so one failing operation leaves the others committed, as §3.7 requires. An operation whose
data refers to a ``bulkId:…`` not created yet waits until it is (§3.7.2); references that can
never resolve fail with status 409, as the RFC's example in §3.7.3 does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from idp.scim.errors import InvalidSyntaxError, InvalidValueError, ScimError, TooManyError
from idp.scim.schema import MAX_BULK_OPERATIONS

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
BULK_ID = re.compile(r"bulkId:([A-Za-z0-9._~-]{1,64})")
_PATH = re.compile(r"^/(Users|Groups)(?:/([A-Za-z0-9-]{1,64}))?$")


@dataclass(slots=True, frozen=True)
class Outcome:
    status: int
    resource: dict[str, Any] | None = None  # the created/updated resource, or the Error body
    location: str | None = None
    version: str | None = None


Execute = Callable[[str, str, Any, "str | None"], Awaitable[Outcome]]


@dataclass(slots=True)
class _Op:
    method: str
    path: str
    bulk_id: str | None
    data: Any
    version: str | None


def parse(body: Any) -> tuple[list[_Op], int | None]:
    """Check a BulkRequest; return its operations and ``failOnErrors``."""
    schemas = body.get("schemas") if isinstance(body, dict) else None
    if not isinstance(schemas, list) or BULK_REQUEST not in schemas:
        raise InvalidSyntaxError(f"a Bulk request must carry schemas [{BULK_REQUEST!r}]")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntaxError("a Bulk request needs a non-empty Operations list")
    if len(ops) > MAX_BULK_OPERATIONS:
        raise TooManyError(f"at most {MAX_BULK_OPERATIONS} operations per Bulk request")
    fail_on = body.get("failOnErrors")
    if fail_on is not None and (isinstance(fail_on, bool) or not isinstance(fail_on, int) or fail_on < 1):
        raise InvalidSyntaxError("failOnErrors must be a positive integer")
    out, seen = [], set()
    for raw in ops:
        if not isinstance(raw, dict):
            raise InvalidSyntaxError("each Bulk operation must be an object")
        method = str(raw.get("method", "")).upper()
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise InvalidSyntaxError(
                f"Bulk method must be POST, PUT, PATCH or DELETE, got {raw.get('method')!r}"
            )
        path = raw.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidSyntaxError("each Bulk operation needs a path such as /Users or /Users/{id}")
        bulk_id = raw.get("bulkId")
        if method == "POST":
            if not isinstance(bulk_id, str) or not bulk_id or bulk_id in seen:
                raise InvalidSyntaxError("each POST in a Bulk request needs a unique bulkId")
            seen.add(bulk_id)
        version = raw.get("version")
        out.append(_Op(method, path, bulk_id if isinstance(bulk_id, str) else None, raw.get("data"), version))
    return out, fail_on


def _substitute(value: Any, ids: dict[str, str]) -> tuple[Any, set[str]]:
    text = json.dumps(value)
    missing = {m for m in BULK_ID.findall(text) if m not in ids}
    if missing:
        return value, missing
    return json.loads(BULK_ID.sub(lambda m: ids[m.group(1)], text)), set()


async def run(body: Any, execute: Execute) -> dict[str, Any]:
    """Run a Bulk request; return the BulkResponse body."""
    ops, fail_on = parse(body)
    defined = {op.bulk_id for op in ops if op.method == "POST"}
    ran: set[str | None] = set()  # bulkIds whose POST has run, whether it worked or not
    ids: dict[str, str] = {}
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    pending = list(range(len(ops)))
    while pending:
        waiting: list[int] = []
        for index in pending:
            if fail_on is not None and errors >= fail_on:
                return _response(results)  # §3.7.3: stop after failOnErrors errors
            op = ops[index]
            (data, path), missing = _resolve(op, ids)
            if missing and all(m in defined and m not in ran for m in missing):
                waiting.append(index)  # its bulkId's POST comes later in the request
                continue
            outcome = await _one(op, path, data, missing, execute)
            ran.add(op.bulk_id)
            if outcome.status >= 400:
                errors += 1
            elif op.method == "POST" and op.bulk_id and outcome.resource:
                ids[op.bulk_id] = str(outcome.resource.get("id"))
            results[index] = _entry(op, outcome)
        if len(waiting) == len(pending):  # nothing could run: the references form a cycle
            for index in waiting:
                err = InvalidValueError("the bulkId references of this operation form a cycle")
                results[index] = _entry(ops[index], _error_outcome(err, 409))
            break
        pending = waiting
    return _response(results)


def _response(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [BULK_RESPONSE], "Operations": [results[i] for i in sorted(results)]}


def _resolve(op: _Op, ids: dict[str, str]) -> tuple[tuple[Any, str], set[str]]:
    data, missing_data = _substitute(op.data, ids)
    path, missing_path = _substitute(op.path, ids)
    return (data, path), missing_data | missing_path


async def _one(op: _Op, path: str, data: Any, missing: set[str], execute: Execute) -> Outcome:
    if missing:
        return _error_outcome(InvalidValueError(f"unknown bulkId {sorted(missing)[0]!r}"), 409)
    match = _PATH.match(path)
    if match is None or (op.method == "POST") == bool(match.group(2)):
        return _error_outcome(InvalidValueError(f"{op.method} cannot target {path!r}"), 400)
    try:
        return await execute(op.method, path, data, op.version)
    except ScimError as exc:
        return _error_outcome(exc, exc.status)


def _error_outcome(exc: ScimError, status: int) -> Outcome:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": str(exc),
    }
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    return Outcome(status, body)


def _entry(op: _Op, outcome: Outcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"method": op.method, "status": str(outcome.status)}
    if op.bulk_id:
        entry["bulkId"] = op.bulk_id
    if outcome.location:
        entry["location"] = outcome.location
    if outcome.version:
        entry["version"] = outcome.version
    if outcome.status >= 400 and outcome.resource is not None:
        entry["response"] = outcome.resource
    return entry
