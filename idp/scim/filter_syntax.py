"""SCIM filter syntax (RFC 7644 §3.4.2.2) parsed by scim2-filter-parser into a small typed tree.

scim2-filter-parser's lexer and parser do the parsing; this module corrects three things about
them before the tree is used:

* its lexer reads a number as one digit and a string without JSON escapes: the subclass reads
  JSON numbers and strings, and gives ``true``/``false``/``null`` their JSON values;
* its parser gives ``and`` and ``or`` the same precedence, left to right, where §3.4.2.2 says
  ``and`` binds tighter: chains that were not parenthesised are regrouped here (the parser wraps
  a parenthesised group in one more ``Filter`` node, so the two can be told apart);
* its errors are ``ValueError``/``SCIMParserError``: they become :class:`InvalidFilterError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Union

from scim2_filter_parser import ast as sast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser, SCIMParserError

from idp.scim.errors import InvalidFilterError

MAX_FILTER = 4096
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr"})


class _Lexer(SCIMLexer):  # type: ignore[misc]
    tokens = SCIMLexer.tokens

    NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"

    @_(r'"(?:[^"\\]|\\.)*"')  # type: ignore[name-defined,untyped-decorator]  # noqa: F821
    def COMP_VALUE(self, t: Any) -> Any:  # noqa: N802
        try:
            t.value = _Str(json.loads(t.value))
        except ValueError as exc:
            raise ValueError(f"malformed string {t.value}") from exc
        return t


class _Str(str):
    """A string literal (as opposed to an unquoted true/false/null/number)."""


@dataclass(slots=True, frozen=True)
class AttrRef:
    """``[uri:]name[.sub]`` as written; names compare case-insensitively (RFC 7643 §2.1)."""

    uri: str | None
    name: str
    sub: str | None

    def __str__(self) -> str:
        text = f"{self.uri}:{self.name}" if self.uri else self.name
        return f"{text}.{self.sub}" if self.sub else text


@dataclass(slots=True, frozen=True)
class Compare:
    attr: AttrRef
    op: str
    value: str | bool | int | float | None


@dataclass(slots=True, frozen=True)
class Present:
    attr: AttrRef


@dataclass(slots=True, frozen=True)
class And:
    left: Node
    right: Node


@dataclass(slots=True, frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(slots=True, frozen=True)
class Not:
    inner: Node


@dataclass(slots=True, frozen=True)
class ValuePath:
    """``attr[inner]``: ``inner`` applies to one value of the multi-valued ``attr``."""

    attr: AttrRef
    inner: Node


Node = Union[Compare, Present, And, Or, Not, ValuePath]  # noqa: UP007


def parse(text: str) -> Node:
    """Parse a filter; raise :class:`InvalidFilterError` saying what is wrong."""
    if not text or not text.strip():
        raise InvalidFilterError("the filter is empty")
    if len(text) > MAX_FILTER:
        raise InvalidFilterError(f"the filter is longer than {MAX_FILTER} characters")
    try:
        tree = SCIMParser().parse(_Lexer().tokenize(text))
    except (SCIMParserError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidFilterError(f"the filter {text!r} is not valid: {exc}") from exc
    if tree is None:
        raise InvalidFilterError(f"the filter {text!r} is incomplete")
    return _node(tree)


def _literal(value: Any) -> str | bool | int | float | None:
    if isinstance(value, _Str):
        return str(value)
    if value == "true":
        return True
    if value == "false":
        return False
    if value == "null":
        return None
    try:
        number = json.loads(value)
    except ValueError as exc:
        raise InvalidFilterError(f"not a JSON value: {value!r}") from exc
    if not isinstance(number, int | float):
        raise InvalidFilterError(f"not a JSON value: {value!r}")
    return number


def _attr(path: Any) -> AttrRef:
    if isinstance(path.attr_name, sast.Filter):
        raise InvalidFilterError("a value path cannot be compared here; write attr[filter] on its own")
    sub = path.sub_attr.value if path.sub_attr is not None else None
    return AttrRef(path.uri, str(path.attr_name), sub)


def _chain(node: Any) -> list[Any]:
    """Operands and operators of an unparenthesised and/or chain, in written order."""
    if (
        isinstance(node, sast.Filter)
        and not node.negated
        and node.namespace is None
        and isinstance(node.expr, sast.LogExpr)
    ):
        expr = node.expr
        return [*_chain(expr.expr1), expr.op.lower(), *_chain(expr.expr2)]
    return [node]


def _node(node: Any) -> Node:
    if isinstance(node, sast.Filter):
        if node.namespace is not None:
            inner = _node(node.expr)
            return ValuePath(_attr(node.namespace), inner)
        if isinstance(node.expr, sast.LogExpr):
            parts = _chain(node)
            result = _regroup(parts)
            return Not(result) if node.negated else result
        inner = _node(node.expr)
        return Not(inner) if node.negated else inner
    if isinstance(node, sast.AttrExpr):
        op = str(node.value).lower()
        if op not in OPERATORS:
            raise InvalidFilterError(f"the operator {op!r} is not supported")
        attr = _attr(node.attr_path)
        if op == "pr":
            return Present(attr)
        return Compare(attr, op, _literal(node.comp_value.value))
    if isinstance(node, sast.LogExpr):
        return _regroup([*_chain(node.expr1), node.op.lower(), *_chain(node.expr2)])
    raise InvalidFilterError(f"unexpected filter element {type(node).__name__}")


def _regroup(parts: list[Any]) -> Node:
    """Rebuild ``a or b and c`` with ``and`` binding tighter than ``or`` (§3.4.2.2)."""
    ors: list[Node] = []
    current: Node = _node(parts[0])
    for i in range(1, len(parts), 2):
        op, operand = parts[i], _node(parts[i + 1])
        if op == "and":
            current = And(current, operand)
        else:
            ors.append(current)
            current = operand
    ors.append(current)
    result = ors[0]
    for other in ors[1:]:
        result = Or(result, other)
    return result
