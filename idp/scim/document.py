"""SCIM resources as plain JSON documents: canonical attribute names, JSON types, index rows.

Clients spell attribute names in any case (RFC 7643 §2.1) and Microsoft Entra ID sends
booleans as ``"True"``/``"False"`` strings, URN-prefixed top-level keys, and a manager as a
bare id. :func:`canonical` turns all of that into the one form scim2-models validates and this
server stores. :func:`index_rows` flattens a document into ``scim_values`` rows for filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from idp import value_rules
from idp.scim.errors import InvalidSyntaxError, InvalidValueError
from idp.scim.schema import ENTERPRISE, AttrInfo

MAX_VALUE = 2048
MAX_ITEMS = 100
# sub-attributes clients send that this server derives instead of storing (Okta and Entra ID send
# a member's display name; RFC 7643 §4.2 makes it optional)
IGNORED = frozenset({("members", "display")})


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidValueError(f"{where} must be a boolean, got {value!r}")


def _scalar(info: AttrInfo, value: Any, where: str) -> Any:
    if value is None:
        return None
    if info.type == "boolean":
        return _bool(value, where)
    if info.type in ("integer",):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(value, dict | list):
        raise InvalidValueError(f"{where} must be a single value, got {type(value).__name__}")
    if isinstance(value, bool):
        raise InvalidValueError(f"{where} must be a string, got {value!r}")
    text = str(value) if not isinstance(value, str) else value
    if len(text) > MAX_VALUE:
        raise InvalidValueError(f"{where} is longer than {MAX_VALUE} characters")
    if not info.multi_line:
        try:
            value_rules.one_line(text, field=where)
        except ValueError as exc:
            raise InvalidValueError(str(exc)) from None
    return text


def _complex(info: AttrInfo, value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 1 and not info.multi_valued:
        value = value[0]  # a single-valued complex attribute sent as a one-item list
    if not isinstance(value, dict):
        if info.name == "manager" and isinstance(value, str):
            value = {"value": value}  # Entra ID sends the manager's id alone
        else:
            raise InvalidValueError(f"{where} must be an object, got {value!r}")
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = info.subs.get(str(key).lower())
        if sub is None and (info.name, str(key).lower()) in IGNORED:
            continue
        if sub is None:
            raise InvalidValueError(f"{where} has no sub-attribute {key!r}")
        converted = _scalar(sub, sub_value, f"{where}.{sub.name}")
        if converted is not None and converted != "":
            out[sub.name] = converted
    return out or None


def value_of(info: AttrInfo, value: Any, where: str) -> Any:
    """One attribute's value in canonical form (None when it is empty)."""
    if info.multi_valued:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_ITEMS:
            raise InvalidValueError(f"{where} has more than {MAX_ITEMS} values")
        out = []
        for item in items:
            converted = _complex(info, item, where) if info.type == "complex" else _scalar(info, item, where)
            if converted is not None and converted not in out:
                out.append(converted)
        return out or None
    if info.type == "complex":
        return _complex(info, value, where)
    converted = _scalar(info, value, where)
    return None if converted == "" else converted


def canonical(payload: Any, catalogue: dict[str, AttrInfo], *, skip: frozenset[str]) -> dict[str, Any]:
    """The attributes of ``payload`` in canonical form, keyed by catalogue key.

    ``skip`` lists keys that are not stored as attributes (``schemas``, read-only ones).
    Extension attributes come either nested under their schema URN or URN-prefixed at the top.
    """
    if not isinstance(payload, dict):
        raise InvalidSyntaxError("the request body must be a JSON object")
    flat: dict[str, Any] = {}
    for key, value in payload.items():
        if not isinstance(key, str):
            raise InvalidSyntaxError("attribute names must be strings")
        lower = key.lower()
        if lower == ENTERPRISE.lower() and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                if str(sub_key).lower() != "schemas":
                    flat[f"{lower}:{str(sub_key).lower()}"] = sub_value
            continue
        if lower.startswith("urn:ietf:params:scim:schemas:core:2.0:"):
            lower = lower.split(":")[-1]  # a core URN prefix is optional
        flat[lower] = value
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key in skip or key == "schemas":
            continue
        if "." in key and key.split(".")[0] in catalogue:
            # a dotted name in a path-less PATCH value: "name.givenName"
            parent_key, sub_key = key.split(".", 1)
            merged = dict(out.get(parent_key) or {})
            merged[sub_key] = value
            out[parent_key] = merged
            continue
        info = catalogue.get(key)
        if info is None:
            raise InvalidValueError(f"unknown attribute {key!r}")
        out[key] = value
    return {key: value_of(catalogue[key], value, catalogue[key].name) for key, value in out.items()}


def to_json(attrs: dict[str, Any], catalogue: dict[str, AttrInfo]) -> dict[str, Any]:
    """Catalogue-keyed attributes → a SCIM JSON object (extension attributes nested)."""
    out: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    prefix = ENTERPRISE.lower() + ":"
    for key, value in attrs.items():
        if value is None:
            continue
        name = catalogue[key].name
        if key.startswith(prefix):
            ext[name] = value
        else:
            out[name] = value
    if ext:
        out[ENTERPRISE] = ext
    return out


def index_rows(attrs: dict[str, Any], catalogue: dict[str, AttrInfo]) -> Iterator[tuple[str, int, str, str]]:
    """``(attr, item, sub, value)`` for every leaf value: what filters and sorting search."""
    for key, value in attrs.items():
        if value is None:
            continue
        info = catalogue[key]
        items = value if info.multi_valued else [value]
        for i, item in enumerate(items):
            if isinstance(item, dict):
                for sub_name, sub_value in item.items():
                    yield key, i, sub_name.lower(), _text(sub_value)
            else:
                yield key, i, "", _text(item)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
