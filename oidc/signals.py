"""In-process signals sent by the authorization server (mirrors authlib's Flask ``signals``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

CLIENT_AUTHENTICATED = "after_authenticate_client"
TOKEN_REVOKED = "after_revoke_token"

_receivers: defaultdict[str, list[Callable[..., None]]] = defaultdict(list)


def connect(name: str, receiver: Callable[..., None]) -> None:
    _receivers[name].append(receiver)


def disconnect(name: str, receiver: Callable[..., None]) -> None:
    if receiver in _receivers[name]:
        _receivers[name].remove(receiver)


def send(name: str, *args: Any, **kwargs: Any) -> None:
    for receiver in list(_receivers.get(name, ())):
        receiver(*args, **kwargs)
