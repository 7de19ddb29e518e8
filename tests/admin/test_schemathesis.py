"""schemathesis against /openapi.json of the served app, with a valid admin token: generated
requests for every operation must never get a server error, and every response must match the
document (status code, content type, schema). Path parameters mostly name real resources of one
tenant, so that operations are exercised beyond "not found"."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.admin.conftest import Admin, AdminFactory

EXAMPLES = 25


@pytest.fixture
def fuzzed(make_admin: AdminFactory) -> tuple[Admin, dict[str, str]]:
    """A platform admin, and a tenant with one of each resource for the path parameters."""
    platform = make_admin(scopes=("admin", "admin:platform"))
    target = make_admin()
    user = target.post("/users", {"attributes": {"email": "fuzz@example.com"}}).json()["id"]
    ids = {
        "tenant_id": target.tenant.id,
        "user_id": user,
        "client_id": target.client.client.client_id,
        "group_id": target.post("/groups", {"display_name": "G", "members": [user]}).json()["id"],
        "invitation_id": target.post(
            "/invitations", {"email": "inv@example.com", "acr": "urn:eid:loa:basic", "send_mail": False}
        ).json()["id"],
        "token_id": target.post("/scim-tokens", {"name": "fuzz"}).json()["id"],
    }
    return platform, ids


def test_admin_api_conforms(fuzzed: tuple[Admin, dict[str, str]]) -> None:
    """Every operation of the document, ``EXAMPLES`` generated cases each (schemathesis' Python
    API driven by Hypothesis directly: its pytest plugin does not run under this pytest)."""
    platform, ids = fuzzed
    document = platform.http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 33

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            for name, value in list(case.path_parameters.items()):
                # three in four cases name the real resource; the rest keep the generated value
                if name in ids and hashlib.sha256(str(value).encode()).digest()[0] % 4:
                    case.path_parameters[name] = ids[name]
            response = case.call(
                base_url=platform.app.issuer,
                headers={"Authorization": f"Bearer {platform.token}"},
                verify=str(platform.app.ca),
            )
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=checks)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; all failures reported
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    # the cases reached the operations, not only their error answers
    succeeded = [label for label, statuses in seen.items() if any(200 <= s < 300 for s in statuses)]
    assert len(succeeded) >= 25, {label: sorted(statuses) for label, statuses in seen.items()}
