"""What every ``idp`` command shares: output in text or JSON, and a database for one command."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from idp.settings import Settings
from idp.storage.database import Database, Tx
from idp.value_rules import ValueRuleError

T = TypeVar("T")
# the option that gives a value the domain names otherwise (``--phone`` gives phone_number); a
# field named ``x.y`` is member ``y`` of the JSON option ``--x``
OPTIONS = {"phone_number": "--phone"}


def _out(args: argparse.Namespace, data: Any, human: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        print(human)


def _with_db(settings: Settings, fn: Callable[[Database], Any]) -> Any:
    async def run() -> Any:
        db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        try:
            return await fn(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _write(settings: Settings, unit: Callable[[Tx], T]) -> T:
    return _with_db(settings, lambda db: db.write(unit))  # type: ignore[no-any-return]


def _read(settings: Settings, fn: Callable[[Any], T]) -> T:
    return _with_db(settings, lambda db: db.read(fn))  # type: ignore[no-any-return]


def option_of(exc: ValueRuleError) -> tuple[str | None, str]:
    """The option that gave the refused value, and the message in its terms:
    ``("--slug", "--slug must not have the form of a tenant id (a UUID)")``."""
    if exc.field is None:
        return None, str(exc)
    head, _, member = exc.field.partition(".")
    option = OPTIONS.get(head, "--" + head.replace("_", "-"))
    subject = f"{option}: {member}" if member else option
    return option, f"{subject} {exc.reason}"
