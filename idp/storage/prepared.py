"""Statements built once, run on SQLite's driver directly; through SQLAlchemy elsewhere.

Running a Core statement costs SQLAlchemy about 30 µs when the statement object was built once
(110 µs when built per call), against 5 µs for the same SQL on the ``sqlite3`` cursor; a sign-in
request runs ten or so. A :class:`Prepared` statement is compiled once per dialect; on SQLite it
runs on the DBAPI connection of the SQLAlchemy ``Connection`` it is given (so inside that
connection's transaction) with SQLAlchemy's own bind and result processors for each column type
(JSON, Boolean), and driver errors become SQLAlchemy's exceptions as they would through
``Connection.execute``. On PostgreSQL it runs on the asyncpg dialect's DBAPI cursor the same way
(inside ``run_sync``; the cursor begins the connection's transaction as SQLAlchemy's own
execution would): 106 µs a statement there against 172 µs through ``Connection.execute``, and
each sign-in runs some forty (bench/README.md). Result processors on PostgreSQL are chosen by the
column types the cursor reports the first time, as SQLAlchemy chooses them. Statements run this
way skip SQLAlchemy's execution events and ``echo`` logging.

Only statements whose parameters are plain values qualify: no expanding ``IN`` lists, no
SQL-expression parameters; :class:`Prepared` checks this when it compiles. A plain
``table.insert()`` names every column: one left out of the parameters is NULL if the column is
nullable and has no default, and a ``ValueError`` otherwise (on every database alike: column
defaults are SQLAlchemy's to fill in, and this path does not). :func:`insert_rows` appends
complete rows the same way, with one ``executemany``.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Executable, Insert, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]
_Processor = Callable[[Any], Any] | None


@dataclass(slots=True, frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]  # the parameters in positional order
    defaults: Mapping[str, Any]  # values the statement itself carries (LIMIT 1, literals)
    bind: tuple[_Processor, ...]
    keys: tuple[str, ...]  # result columns
    result: tuple[_Processor, ...]
    convert: bool  # any result processor at all


def _values(plan: _Plan, params: Mapping[str, Any]) -> list[Any]:
    values = []
    for name, process in zip(plan.names, plan.bind, strict=True):
        value = params[name] if name in params else plan.defaults[name]
        values.append(value if process is None or value is None else process(value))
    return values


def _described(
    plan: _Plan, statement: Executable, dialect: Dialect, description: Sequence[Sequence[Any]] | None
) -> _Plan:
    """``plan`` with the result processors SQLAlchemy chooses for the column types a cursor
    reported (asyncpg's numeric types choose by the type's OID, and refuse to choose without)."""
    columns = list(getattr(statement, "selected_columns", {}).values())
    if not columns or not description:
        return plan
    result = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, described[1])
        for column, described in zip(columns, description, strict=True)
    )
    return _Plan(
        plan.sql, plan.names, plan.defaults, plan.bind, plan.keys, result, any(p is not None for p in result)
    )


def _plan(statement: Executable, dialect: Dialect, *, with_results: bool = True) -> _Plan:
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    defaults: dict[str, Any] = {}
    bind: list[_Processor] = []
    for name in names:
        param = compiled.binds[name]
        if not param.required:
            defaults[name] = param.value
        bind.append(param.type.dialect_impl(dialect).bind_processor(dialect))
    keys: list[str] = []
    result: list[_Processor] = []
    for key, column in getattr(statement, "selected_columns", {}).items():
        keys.append(key)
        result.append(
            column.type.dialect_impl(dialect).result_processor(dialect, None) if with_results else None
        )
    return _Plan(
        compiled.string,
        names,
        defaults,
        tuple(bind),
        tuple(keys),
        tuple(result),
        any(p is not None for p in result),
    )


def _insert_columns(statement: Insert) -> tuple[frozenset[str], frozenset[str]]:
    """An INSERT's columns that must be given, and those that are NULL when left out (nullable,
    without a default)."""
    optional = frozenset(
        c.name
        for c in statement.table.c
        if c.nullable and c.default is None and c.server_default is None and not c.primary_key
    )
    return frozenset(c.name for c in statement.table.c) - optional, optional


def on_driver(conn: Connection, sql: str, values: Sequence[Any], *, many: bool = False) -> Any:
    """Run ``sql`` on the DBAPI connection of ``conn`` (``executemany`` over ``values`` when
    ``many``); the driver's errors become SQLAlchemy's, as through ``Connection.execute``."""
    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        return driver.executemany(sql, values) if many else driver.execute(sql, values)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            sql, values, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect, ismulti=many
        ) from exc


class Prepared:
    """One statement, compiled once; see the module docstring."""

    __slots__ = ("_asyncpg", "_insert", "_sqlite", "statement")

    def __init__(self, statement: Executable) -> None:
        assert isinstance(statement, ClauseElement)
        generic = statement.compile()
        assert isinstance(generic, SQLCompiler)
        for name, param in generic.binds.items():  # the same rule on every database
            if param.expanding or param.literal_execute or param.callable is not None:
                raise ValueError(f"{name}: only plain parameters can be prepared")
        self.statement = statement
        self._sqlite: _Plan | None = None
        self._asyncpg: _Plan | None = None  # its result processors once a cursor described them
        self._insert = _insert_columns(statement) if isinstance(statement, Insert) else None

    def _cursor(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Plan, Any] | None:
        """Run on SQLite's cursor or on asyncpg's DBAPI cursor; None on any other database."""
        dialect = conn.dialect
        if dialect.name == "sqlite":
            plan = self._sqlite
            if plan is None:
                plan = self._sqlite = _plan(self.statement, dialect)
            return plan, on_driver(conn, plan.sql, _values(plan, params))
        if dialect.name != "postgresql" or dialect.driver != "asyncpg":
            return None
        plan = self._asyncpg or _plan(self.statement, dialect, with_results=False)
        values = _values(plan, params)
        driver = conn.connection.dbapi_connection
        assert driver is not None
        cursor = driver.cursor()
        try:
            cursor.execute(plan.sql, values)
        except dialect.loaded_dbapi.Error as exc:
            # a lost connection leaves the pool, as it would through Connection.execute
            lost = dialect.is_disconnect(exc, driver, cursor)
            cursor.close()
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                plan.sql,
                values,
                exc,
                dialect.loaded_dbapi.Error,
                dialect=dialect,
                connection_invalidated=lost,
            ) from exc
        if self._asyncpg is None:
            plan = self._asyncpg = _described(plan, self.statement, dialect, cursor.description)
        return plan, cursor

    def _complete(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """An INSERT's ``params`` with the nullable columns left out as NULL; ValueError when
        another column is left out (SQLAlchemy would fill in its default, this does not)."""
        if self._insert is None:
            return params
        required, optional = self._insert
        missing = required - params.keys()
        if missing:
            raise ValueError(f"no value for {', '.join(sorted(missing))}")
        return {**dict.fromkeys(optional - params.keys()), **params}

    @staticmethod
    def _row(plan: _Plan, raw: tuple[Any, ...]) -> Row:
        if not plan.convert:
            return dict(zip(plan.keys, raw, strict=True))
        return {
            key: value if process is None or value is None else process(value)
            for key, value, process in zip(plan.keys, raw, plan.result, strict=True)
        }

    def first(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row as a dict of column name to value, or None."""
        params = params or {}
        ran = self._cursor(conn, params)
        if ran is None:
            found = conn.execute(self.statement, dict(params)).mappings().first()
            return None if found is None else dict(found)
        plan, cursor = ran
        raw = cursor.fetchone()
        cursor.close()
        return None if raw is None else self._row(plan, raw)

    def all(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Row]:
        params = params or {}
        ran = self._cursor(conn, params)
        if ran is None:
            return [dict(r) for r in conn.execute(self.statement, dict(params)).mappings()]
        plan, cursor = ran
        rows = [self._row(plan, raw) for raw in cursor.fetchall()]
        cursor.close()
        return rows

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, params)
        return None if row is None else next(iter(row.values()))

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it touched."""
        params = self._complete(params or {})
        ran = self._cursor(conn, params)
        if ran is None:
            return int(conn.execute(self.statement, dict(params)).rowcount)
        cursor = ran[1]
        count = int(cursor.rowcount)
        cursor.close()
        return count


def prefixed(prefix: str, columns: Iterable[Any]) -> tuple[Any, ...]:
    """``columns`` labelled ``prefix`` + their name: a table's row read beside another's (an eID
    with its attributes) in one statement, under names of its own; :func:`unprefixed` reads it back."""
    return tuple(column.label(prefix + column.key) for column in columns)


def unprefixed(row: Mapping[str, Any], prefix: str) -> Row:
    """The values of :func:`prefixed` columns in ``row``, under their own names."""
    start = len(prefix)
    return {key[start:]: value for key, value in row.items() if key.startswith(prefix)}


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert complete rows; on SQLite straight to the driver (see :func:`_sqlite_executemany`)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite" and all(len(r) == len(table.c) for r in rows):
        _sqlite_executemany(conn, table, rows)
    else:
        conn.execute(table.insert(), rows)


@functools.cache
def _sqlite_insert_plan(
    table: Table,
) -> tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]], tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The INSERT of every column, a getter of a row's values in column order, and the columns
    whose values the driver cannot take as they are (JSON as text, booleans as 0 or 1)."""
    names = tuple(c.name for c in table.c)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    getter = operator.itemgetter(*names)
    values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
        getter if len(names) > 1 else lambda row: (getter(row),)
    )
    fixes: list[tuple[int, Callable[[Any], Any]]] = []
    for index, column in enumerate(table.c):
        if isinstance(column.type, JSON):
            fixes.append((index, _json_text))
        elif isinstance(column.type, Boolean):
            fixes.append((index, int))
    return sql, values, tuple(fixes)


_JSON_TEXTS: dict[tuple[str, ...], str] = {}


def _json_text(value: Any) -> str:
    """JSON text of a column value. Short lists of strings (a token's scopes: the same few on
    every row) are encoded once and then looked up, which costs a tenth of encoding them."""
    if type(value) is list and len(value) <= 8 and all(type(item) is str for item in value):
        key = tuple(value)
        text = _JSON_TEXTS.get(key)
        if text is None:
            text = json.dumps(value)
            if len(_JSON_TEXTS) < 1024:
                _JSON_TEXTS[key] = text
        return text
    return json.dumps(value)


def _sqlite_executemany(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Append-only rows straight to the driver: SQLAlchemy's per-row parameter processing is the
    writer thread's largest cost on the token endpoint, and these rows need none of it."""
    sql, values, fixes = _sqlite_insert_plan(table)
    if not fixes:
        on_driver(conn, sql, [values(r) for r in rows], many=True)
        return
    params = []
    for row in rows:
        value = list(values(row))
        for index, fix in fixes:
            if value[index] is not None:
                value[index] = fix(value[index])
        params.append(value)
    on_driver(conn, sql, params, many=True)
