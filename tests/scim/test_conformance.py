"""scim2-tester against the served app: every check runs, none reports ERROR or CRITICAL.

The tester discovers the server from /ServiceProviderConfig, /Schemas and /ResourceTypes and
then creates, reads, searches, replaces, patches and deletes Users and Groups with random
values for every attribute the published schemas declare writable. A check skipped for lack of
support would mean the discovery endpoints promise something the server does not do.
"""

from __future__ import annotations

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.scim.conftest import Scim


def test_scim2_tester_finds_no_error(scim: Scim) -> None:
    http = httpx2.Client(
        base_url=scim.base,
        verify=scim.app.ssl_context(),
        timeout=30,
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    with http:
        client = SyncSCIMClient(http)
        results = check_server(client)
    assert len(results) > 40, f"only {len(results)} checks ran"
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    skipped = [r for r in results if r.status == Status.SKIPPED]
    assert not failed, "\n".join(f"{r.title} [{r.resource_type}]: {r.reason}" for r in failed)
    assert not skipped, "\n".join(f"{r.title}: {r.reason}" for r in skipped)
    titles = {r.title for r in results}
    for expected in (
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_replace_attribute",
        "check_remove_attribute",
        "search_with_attributes",
        "random_url",
    ):
        assert expected in titles
