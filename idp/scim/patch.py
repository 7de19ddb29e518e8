"""PATCH (RFC 7644 §3.5.2) on a resource's canonical attributes, in every shape clients send.

Besides the RFC's own examples this accepts what Microsoft Entra ID and Okta send:

* ``"op": "Replace"`` / ``"Add"`` / ``"Remove"`` (any case);
* booleans as ``"True"``/``"False"`` strings (coerced by :mod:`idp.scim.document`);
* a path-less ``add``/``replace`` whose value has dotted keys (``"name.givenName"``) or
  URN-prefixed keys (``"urn:…:enterprise:2.0:User:department"``);
* ``{"op": "Remove", "path": "members", "value": [{"value": "id"}]}`` - remove those members
  only - as well as ``"path": "members[value eq \\"id\\"]"``;
* ``replace`` of ``emails[type eq "work"].value`` on a resource with no work email adds one
  (Entra ID's attribute mappings depend on it);
* Okta's ``{"op": "replace", "value": {"active": false}}``.

Value filters inside a PATCH path select values of one resource already in memory, so they
are evaluated here (not in SQL) with the same semantics as :mod:`idp.scim.filters`.
"""

from __future__ import annotations

import copy
from typing import Any

from idp.scim import filter_syntax as fs
from idp.scim.document import canonical, value_of
from idp.scim.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
)
from idp.scim.schema import ENTERPRISE, AttrInfo, attr_key

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000


def apply(
    attrs: dict[str, Any],
    body: Any,
    *,
    catalogue: dict[str, AttrInfo],
    resource: str,
    read_only: frozenset[str],
) -> dict[str, Any]:
    """Apply a PatchOp body to ``attrs`` (catalogue-keyed); return the new attributes."""
    if not isinstance(body, dict):
        raise InvalidSyntaxError("a PATCH body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise InvalidSyntaxError(f"a PATCH body must carry schemas [{PATCH_SCHEMA!r}]")
    ops = body.get("Operations", body.get("operations"))
    if not isinstance(ops, list) or not ops:
        raise InvalidSyntaxError("a PATCH body needs a non-empty Operations list")
    if len(ops) > MAX_OPERATIONS:
        raise InvalidSyntaxError(f"at most {MAX_OPERATIONS} operations in one PATCH")
    result = copy.deepcopy(attrs)
    for op in ops:
        _one(result, op, catalogue, resource, read_only)
    return result


def _one(
    attrs: dict[str, Any], op: Any, catalogue: dict[str, AttrInfo], resource: str, read_only: frozenset[str]
) -> None:
    if not isinstance(op, dict):
        raise InvalidSyntaxError("each operation must be a JSON object")
    kind = str(op.get("op", "")).lower()
    if kind not in ("add", "replace", "remove"):
        raise InvalidSyntaxError(f"op must be add, replace or remove, got {op.get('op')!r}")
    path = op.get("path")
    value = op.get("value")
    if path is None or (isinstance(path, str) and not path.strip()):
        if kind == "remove":
            raise NoTargetError("a remove operation needs a path")
        if not isinstance(value, dict):
            raise InvalidValueError("an operation without a path needs an object value")
        # read-only attributes in a path-less value (Okta sends the group's id) are ignored,
        # as §3.5.1 says for PUT
        new = canonical(value, catalogue, skip=read_only)
        for key, item in new.items():
            _set(attrs, key, catalogue[key], item, kind)
        return
    if not isinstance(path, str):
        raise InvalidPathError(f"path must be a string, got {path!r}")
    if path.strip().lower() == ENTERPRISE.lower():
        _extension(attrs, kind, value, catalogue)
        return
    key, info, where, sub = _parse_path(path, catalogue, resource)
    _guard(key, read_only)
    if where is None and sub is None:
        if kind == "remove":
            if value is not None and info.multi_valued and isinstance(value, list | dict):
                _remove_values(attrs, key, info, value)  # Entra ID: remove these members only
            else:
                attrs.pop(key, None)
            return
        _set(attrs, key, info, value_of(info, value, info.name), kind)
        return
    if where is None:
        assert sub is not None
        _sub_everywhere(attrs, key, info, sub, value, kind)
        return
    _filtered(attrs, key, info, where, sub, value, kind, path)


def _extension(attrs: dict[str, Any], kind: str, value: Any, catalogue: dict[str, AttrInfo]) -> None:
    """The whole enterprise extension as the path: its attributes at once."""
    prefix = ENTERPRISE.lower() + ":"
    if kind != "add":
        for key in [k for k in attrs if k.startswith(prefix)]:
            del attrs[key]
    if kind == "remove":
        return
    if not isinstance(value, dict):
        raise InvalidValueError(f"the value of {ENTERPRISE} must be an object")
    for key, item in canonical({ENTERPRISE: value}, catalogue, skip=frozenset()).items():
        _set(attrs, key, catalogue[key], item, kind)


def _guard(key: str, read_only: frozenset[str]) -> None:
    if key in read_only:
        raise MutabilityError(f"{key} is read-only")


def _parse_path(
    path: str, catalogue: dict[str, AttrInfo], resource: str
) -> tuple[str, AttrInfo, fs.Node | None, str | None]:
    """``attr``, ``attr.sub``, ``urn:…:attr[.sub]``, ``attr[filter]``, ``attr[filter].sub``."""
    where: fs.Node | None = None
    sub: str | None = None
    text = path.strip()
    if "[" in text:
        head, _, rest = text.partition("[")
        inner, close, tail = rest.rpartition("]")
        if not close or (tail and not tail.startswith(".")):
            raise InvalidPathError(f"malformed path {path!r}")
        try:
            where = fs.parse(inner)
        except Exception as exc:
            raise InvalidPathError(f"malformed value filter in {path!r}: {exc}") from exc
        text = head
        sub = tail[1:] or None
    uri, _, name = text.rpartition(":")
    if "." in name:
        name, _, dotted = name.partition(".")
        if sub is not None:
            raise InvalidPathError(f"malformed path {path!r}")
        sub = dotted
    key = attr_key(uri or None, name, resource=resource)
    info = catalogue.get(key)
    if info is None:
        raise InvalidPathError(f"unknown attribute in path {path!r}")
    if sub is not None and sub.lower() not in info.subs:
        raise InvalidPathError(f"{info.name} has no sub-attribute {sub!r}")
    if where is not None and not info.multi_valued:
        raise InvalidPathError(f"{info.name} is not multi-valued; {path!r} cannot filter it")
    if where is not None:
        _check_filter(where, info)
    return key, info, where, (info.subs[sub.lower()].name if sub else None)


def _check_filter(node: fs.Node, info: AttrInfo) -> None:
    if isinstance(node, fs.And | fs.Or):
        _check_filter(node.left, info)
        _check_filter(node.right, info)
    elif isinstance(node, fs.Not):
        _check_filter(node.inner, info)
    elif isinstance(node, fs.ValuePath):
        raise InvalidPathError("value filters cannot be nested")
    elif node.attr.uri or node.attr.sub or node.attr.name.lower() not in info.subs:
        raise InvalidPathError(f"{info.name} has no sub-attribute {node.attr}")


def _set(attrs: dict[str, Any], key: str, info: AttrInfo, value: Any, kind: str) -> None:
    if value is None:
        if kind == "replace":
            attrs.pop(key, None)
        return
    if kind == "add" and info.multi_valued:
        merged = list(attrs.get(key) or [])
        merged += [v for v in value if v not in merged]
        attrs[key] = _one_primary(merged)
    elif kind == "add" and info.type == "complex":
        attrs[key] = {**(attrs.get(key) or {}), **value}
    elif kind == "replace" and info.type == "complex" and not info.multi_valued:
        attrs[key] = {**(attrs.get(key) or {}), **value}
    else:
        attrs[key] = _one_primary(value) if info.multi_valued else value


def _one_primary(items: list[Any]) -> list[Any]:
    """RFC 7643 §2.4: the last value marked primary keeps it."""
    primaries = [i for i, v in enumerate(items) if isinstance(v, dict) and v.get("primary") is True]
    for i in primaries[:-1]:
        items[i] = {**items[i], "primary": False}
    return items


def _remove_values(attrs: dict[str, Any], key: str, info: AttrInfo, value: Any) -> None:
    wanted = value_of(info, value, info.name) or []
    ids = {w.get("value") for w in wanted if isinstance(w, dict)}
    kept = [
        v
        for v in attrs.get(key) or []
        if not (isinstance(v, dict) and v.get("value") in ids) and v not in wanted
    ]
    attrs[key] = kept or None
    if not kept:
        attrs.pop(key, None)


def _sub_everywhere(attrs: dict[str, Any], key: str, info: AttrInfo, sub: str, value: Any, kind: str) -> None:
    sub_info = info.subs[sub.lower()]
    if info.multi_valued:
        items = attrs.get(key) or []
        if kind == "remove":
            items = [{k: v for k, v in item.items() if k != sub} for item in items]
        else:
            converted = value_of(sub_info, value, f"{info.name}.{sub}")
            items = [{**item, sub: converted} for item in items] if items else [{sub: converted}]
        attrs[key] = [i for i in items if i] or None
    else:
        current = dict(attrs.get(key) or {})
        if kind == "remove":
            current.pop(sub, None)
        else:
            converted = value_of(sub_info, value, f"{info.name}.{sub}")
            if converted is None:
                current.pop(sub, None)
            else:
                current[sub] = converted
        attrs[key] = current or None
    if attrs.get(key) is None:
        attrs.pop(key, None)


def _filtered(
    attrs: dict[str, Any],
    key: str,
    info: AttrInfo,
    where: fs.Node,
    sub: str | None,
    value: Any,
    kind: str,
    path: str,
) -> None:
    items = list(attrs.get(key) or [])
    hits = [i for i, item in enumerate(items) if isinstance(item, dict) and matches(where, item, info)]
    if kind == "remove":
        if not hits:
            return  # already absent: removing it again changes nothing (idempotent)
        if sub is None:
            items = [item for i, item in enumerate(items) if i not in hits]
        else:
            items = [
                {k: v for k, v in item.items() if k != sub} if i in hits else item
                for i, item in enumerate(items)
            ]
        attrs[key] = [i for i in items if i] or None
        if attrs[key] is None:
            attrs.pop(key)
        return
    if not hits:
        seed = _seed(where, info)
        if seed is None:
            raise NoTargetError(f"no value matches {path!r}")
        items.append(seed)
        hits = [len(items) - 1]
    for i in hits:
        if sub is None:
            new = value_of(info, value, info.name)
            if not new:
                raise InvalidValueError(f"{path!r} needs a value")
            items[i] = {**items[i], **new[0]} if kind == "add" else new[0]
        else:
            converted = value_of(info.subs[sub.lower()], value, f"{info.name}.{sub}")
            items[i] = {**items[i], sub: converted}
    attrs[key] = _one_primary(items)


def _seed(where: fs.Node, info: AttrInfo) -> dict[str, Any] | None:
    """The value ``where`` describes when it is ``sub eq "x"`` (and-ed): what Entra ID expects to add."""
    if isinstance(where, fs.Compare) and where.op == "eq" and where.value is not None:
        sub = info.subs.get(where.attr.name.lower())
        return {sub.name: where.value} if sub else None
    if isinstance(where, fs.And):
        left, right = _seed(where.left, info), _seed(where.right, info)
        return {**left, **right} if left is not None and right is not None else None
    return None


def matches(node: fs.Node, item: dict[str, Any], info: AttrInfo) -> bool:
    """Whether one value of a multi-valued attribute satisfies a value filter."""
    if isinstance(node, fs.And):
        return matches(node.left, item, info) and matches(node.right, item, info)
    if isinstance(node, fs.Or):
        return matches(node.left, item, info) or matches(node.right, item, info)
    if isinstance(node, fs.Not):
        return not matches(node.inner, item, info)
    if isinstance(node, fs.ValuePath):
        raise InvalidPathError("value filters cannot be nested")
    sub = info.subs.get(node.attr.name.lower())
    if sub is None:
        raise InvalidPathError(f"{info.name} has no sub-attribute {node.attr}")
    actual = item.get(sub.name)
    present = actual is not None and actual != ""
    if isinstance(node, fs.Present):
        return present
    expected = node.value
    if expected is None:
        return not present if node.op == "eq" else present
    if node.op == "ne":
        return not _test(sub, actual, "eq", expected)
    return present and _test(sub, actual, node.op, expected)


def _test(sub: AttrInfo, actual: Any, op: str, expected: Any) -> bool:
    if sub.type == "boolean":
        return bool(op == "eq" and isinstance(expected, bool) and actual is expected)
    a, e = str(actual), str(expected)
    if not sub.case_exact:
        a, e = a.lower(), e.lower()
    return {
        "eq": a == e,
        "co": e in a,
        "sw": a.startswith(e),
        "ew": a.endswith(e),
        "gt": a > e,
        "ge": a >= e,
        "lt": a < e,
        "le": a <= e,
    }.get(op, False)
