"""SCIM filters (RFC 7644 §3.4.2.2) and sorting (§3.4.2.3) as SQLAlchemy Core expressions.

A parsed filter (:mod:`idp.scim.filter_syntax`) is translated, never evaluated in Python. Each
attribute resolves to one of three kinds of target:

* :class:`Column` - a column of the resource's own row (``userName``, ``active``, ``meta.*``);
* :class:`Values` - the leaf values in ``scim_values`` (every other User attribute): a test is
  ``EXISTS`` over the resource's rows for that attribute, and ``attr[...]`` correlates its tests
  on one value (``item``) of the multi-valued attribute;
* :class:`Related` - rows of another table (group members, a User's groups, eID attributes).

Strings compare without regard to case unless the attribute is ``caseExact`` (RFC 7643 §2.2);
``gt``/``ge``/``lt``/``le`` on booleans, and ``co``/``sw``/``ew`` on anything but strings, are
``invalidFilter`` as §3.4.2.2 says. ``ne`` and ``eq null`` match resources without the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, true
from sqlalchemy.sql.expression import FromClause

from idp.scim import filter_syntax as fs
from idp.scim.errors import InvalidFilterError, InvalidValueError
from idp.scim.schema import AttrInfo
from idp.storage import tables

STRING_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
ORDER_OPS = frozenset({"gt", "ge", "lt", "le"})


@dataclass(slots=True, frozen=True)
class Column:
    expr: Any  # a column, or for booleans a boolean expression
    type: str
    case_exact: bool
    epoch: bool = False  # a dateTime stored as UTC epoch seconds


@dataclass(slots=True, frozen=True)
class Values:
    attr: str
    sub: str  # "" for a simple attribute
    info: AttrInfo  # of the leaf
    parent: AttrInfo | None = None  # of the multi-valued attribute, for attr[...]


@dataclass(slots=True, frozen=True)
class Related:
    """Rows of ``source`` joined to the owner by ``correlate``; ``subs`` names their columns."""

    source: FromClause
    correlate: Callable[[Any], ColumnElement[bool]]
    subs: dict[str, Column]
    default_sub: str = "value"


Target = Column | Values | Related
Resolver = Callable[[fs.AttrRef], Target]


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise InvalidFilterError(f"a dateTime is compared with a string, got {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidFilterError(f"not an xsd:dateTime: {value!r}") from exc


def _check(op: str, kind: str, value: Any) -> None:
    if kind == "boolean":
        if op in ORDER_OPS or op in ("co", "sw", "ew"):
            raise InvalidFilterError(f"{op!r} cannot compare a boolean attribute")
        if not isinstance(value, bool) and value is not None:
            raise InvalidFilterError(f"a boolean attribute is compared with true or false, got {value!r}")
    elif kind in ("binary",) and op != "eq":
        raise InvalidFilterError(f"{op!r} cannot compare a binary attribute")
    elif kind == "dateTime" and op in ("co", "sw", "ew"):
        raise InvalidFilterError(f"{op!r} cannot compare a dateTime attribute")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _compare(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return col == value  # type: ignore[no-any-return]
    if op == "ne":
        return col != value  # type: ignore[no-any-return]
    if op == "co":
        return col.contains(value, autoescape=True)  # type: ignore[no-any-return]
    if op == "sw":
        return col.startswith(value, autoescape=True)  # type: ignore[no-any-return]
    if op == "ew":
        return col.endswith(value, autoescape=True)  # type: ignore[no-any-return]
    if op == "gt":
        return col > value  # type: ignore[no-any-return]
    if op == "ge":
        return col >= value  # type: ignore[no-any-return]
    if op == "lt":
        return col < value  # type: ignore[no-any-return]
    return col <= value  # type: ignore[no-any-return]


def _column_test(target: Column, op: str, value: Any) -> ColumnElement[bool]:
    """A test on one scalar: ``op`` is never ``ne`` here (it is NOT eq, see :func:`_leaf`)."""
    _check(op, target.type, value)
    if target.type == "boolean":
        return target.expr if value else not_(target.expr)  # type: ignore[no-any-return]
    if target.epoch:
        return _compare(target.expr, op, _epoch(value))
    text = _text(value)
    if target.case_exact:
        return _compare(target.expr, op, text)
    return _compare(func.lower(target.expr), op, text.lower())


def _values_row(
    target: Values, owner: Any, op: str | None, value: Any, item: Any = None
) -> ColumnElement[bool]:
    v = tables.scim_values.alias()
    where = [v.c.owner_id == owner, v.c.attr == target.attr]
    if item is not None:
        where.append(v.c.item == item)
    if target.sub or op is not None:
        where.append(v.c.sub == target.sub)
    if op is None:
        where.append(v.c.value != "")
    else:
        _check(op, target.info.type, value)
        if target.info.type == "boolean":
            where.append(v.c.value == _text(value))
        elif target.info.case_exact:
            where.append(_compare(v.c.value, op, _text(value)))
        else:
            where.append(_compare(v.c.value_ci, op, _text(value).lower()))
    return exists().where(*where).correlate_except(v)


def _present(target: Target, owner: Any) -> ColumnElement[bool]:
    if isinstance(target, Column):
        if target.type == "boolean":
            return true()
        return and_(target.expr.is_not(None), target.expr != "")
    if isinstance(target, Values):
        return _values_row(target, owner, None, None)
    return exists().select_from(target.source).where(target.correlate(owner)).correlate_except(target.source)


class Compiler:
    """Translate one parsed filter for one kind of resource whose id column is ``owner``."""

    def __init__(self, resolve: Resolver, owner: Any) -> None:
        self.resolve = resolve
        self.owner = owner

    def __call__(self, node: fs.Node) -> ColumnElement[bool]:
        return self._node(node)

    def _node(self, node: fs.Node) -> ColumnElement[bool]:
        if isinstance(node, fs.And):
            return and_(self._node(node.left), self._node(node.right))
        if isinstance(node, fs.Or):
            return or_(self._node(node.left), self._node(node.right))
        if isinstance(node, fs.Not):
            return not_(self._node(node.inner))
        if isinstance(node, fs.ValuePath):
            return self._value_path(node)
        return self._leaf(self.resolve(node.attr), node)

    def _leaf(self, target: Target, node: fs.Compare | fs.Present) -> ColumnElement[bool]:
        if isinstance(node, fs.Present):
            return _present(target, self.owner)
        op, value = node.op, node.value
        if value is None:
            if op not in ("eq", "ne"):
                raise InvalidFilterError(f"null can only be compared with eq or ne, not {op!r}")
            present = _present(target, self.owner)
            return not_(present) if op == "eq" else present
        if op == "ne":
            return not_(self._leaf(target, fs.Compare(node.attr, "eq", value)))
        if isinstance(target, Column):
            return _column_test(target, op, value)
        if isinstance(target, Values):
            return _values_row(target, self.owner, op, value)
        column = target.subs[target.default_sub]
        return (
            exists()
            .select_from(target.source)
            .where(target.correlate(self.owner), _column_test(column, op, value))
            .correlate_except(target.source)
        )

    def _value_path(self, node: fs.ValuePath) -> ColumnElement[bool]:
        if node.attr.sub is not None:
            raise InvalidFilterError(
                f"{node.attr} names a sub-attribute; a value filter needs a multi-valued attribute"
            )
        parent = self.resolve(node.attr)
        if isinstance(parent, Values):
            item = tables.scim_values.alias()
            inner = _InnerValues(self, parent, item.c.item)(node.inner)
            found = exists().where(item.c.owner_id == self.owner, item.c.attr == parent.attr, inner)
            return found.correlate_except(item)
        if isinstance(parent, Related):
            inner = _InnerRelated(parent)(node.inner)
            found = exists().select_from(parent.source).where(parent.correlate(self.owner), inner)
            return found.correlate_except(parent.source)
        raise InvalidFilterError(f"{node.attr} is not a multi-valued attribute")


class _InnerValues:
    """Tests inside ``attr[...]`` on one value (``item``) of a ``scim_values`` attribute."""

    def __init__(self, outer: Compiler, parent: Values, item: Any) -> None:
        self.outer, self.parent, self.item = outer, parent, item

    def __call__(self, node: fs.Node) -> ColumnElement[bool]:
        if isinstance(node, fs.And):
            return and_(self(node.left), self(node.right))
        if isinstance(node, fs.Or):
            return or_(self(node.left), self(node.right))
        if isinstance(node, fs.Not):
            return not_(self(node.inner))
        if isinstance(node, fs.ValuePath):
            raise InvalidFilterError("value filters cannot be nested")
        parent = self.parent.parent or self.parent.info
        info = parent.subs.get(node.attr.name.lower())
        if node.attr.uri or node.attr.sub or info is None:
            raise InvalidFilterError(f"{parent.name} has no sub-attribute {node.attr}")
        target = Values(self.parent.attr, node.attr.name.lower(), info)
        owner = self.outer.owner
        present = _values_row(target, owner, None, None, self.item)
        if isinstance(node, fs.Present):
            return present
        if node.value is None:
            return not_(present) if node.op == "eq" else present
        if node.op == "ne":
            return not_(_values_row(target, owner, "eq", node.value, self.item))
        return _values_row(target, owner, node.op, node.value, self.item)


class _InnerRelated:
    """Tests inside ``attr[...]`` on one related row."""

    def __init__(self, parent: Related) -> None:
        self.parent = parent

    def __call__(self, node: fs.Node) -> ColumnElement[bool]:
        if isinstance(node, fs.And):
            return and_(self(node.left), self(node.right))
        if isinstance(node, fs.Or):
            return or_(self(node.left), self(node.right))
        if isinstance(node, fs.Not):
            return not_(self(node.inner))
        if isinstance(node, fs.ValuePath):
            raise InvalidFilterError("value filters cannot be nested")
        column = self.parent.subs.get(node.attr.name.lower())
        if node.attr.uri or node.attr.sub or column is None:
            raise InvalidFilterError(f"no sub-attribute {node.attr} here")
        if isinstance(node, fs.Present):
            return and_(column.expr.is_not(None), column.expr != "")
        if node.value is None:
            return column.expr.is_(None) if node.op == "eq" else column.expr.is_not(None)  # type: ignore[no-any-return]
        if node.op == "ne":
            return not_(_column_test(column, "eq", node.value))
        return _column_test(column, node.op, node.value)


def compile_filter(text: str, resolve: Resolver, owner: Any) -> ColumnElement[bool]:
    """``filter`` query parameter → WHERE clause; raises :class:`InvalidFilterError`."""
    return Compiler(resolve, owner)(fs.parse(text))


def sort_key(attribute: str, resolve: Resolver, owner: Any) -> Any:
    """``sortBy`` → an ORDER BY expression (§3.4.2.3); multi-valued attributes sort by their least value."""
    ref = _parse_path(attribute)
    target = resolve(ref)
    if isinstance(target, Column):
        if target.type == "string" and not target.case_exact:
            return func.lower(target.expr)
        return target.expr
    if isinstance(target, Values):
        v = tables.scim_values.alias()
        return (
            select(func.min(v.c.value_ci))
            .where(v.c.owner_id == owner, v.c.attr == target.attr, v.c.sub == target.sub)
            .scalar_subquery()
        )
    column = target.subs[target.default_sub]
    return (
        select(func.min(func.lower(column.expr)))
        .select_from(target.source)
        .where(target.correlate(owner))
        .scalar_subquery()
    )


def _parse_path(attribute: str) -> fs.AttrRef:
    try:
        node = fs.parse(f"{attribute} pr") if attribute.strip() and "[" not in attribute else None
    except InvalidFilterError:
        node = None
    if not isinstance(node, fs.Present):
        raise InvalidValueError(f"sortBy must name an attribute, got {attribute!r}")
    return node.attr
