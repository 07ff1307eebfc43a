"""Custom fields in the REST API: a typed ``custom`` object in every schema and in OpenAPI.

The ``custom`` key of a record is an object with a property per active field, typed for
OpenAPI (``"grade": {"type": "string", "enum": ["A", "B"]}``). Values are checked by the same
rules as every other write (:func:`fields.clean`), which name a bad one as ``custom.<name>``
in the 422; so the schema itself accepts any value and lets those rules answer.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields

from .fields import FieldDefinition

_OPENAPI: dict[str, dict[str, Any]] = {
    "text": {"type": "string"},
    "long_text": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "string", "format": "decimal", "example": "12.5"},
    "money": {"type": "string", "format": "decimal", "example": "1234.50"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "bool": {"type": "boolean"},
    "choice": {"type": "string"},
    "multi_choice": {"type": "array", "items": {"type": "string"}},
    "user": {"type": "integer", "description": "user id"},
    "customer": {"type": "integer", "description": "customer id"},
    "url": {"type": "string", "format": "uri"},
    "phone": {"type": "string", "example": "+8613812345678"},
    "email": {"type": "string", "format": "email"},
}
_cache: dict[str, tuple[tuple[Any, ...], type[Schema]]] = {}  # model -> its newest set


def _property(defn: FieldDefinition) -> dict[str, Any]:
    prop = dict(_OPENAPI.get(defn.kind, {"type": "string"}))
    described = " / ".join(x for x in (defn.label_zh, defn.label_en, defn.help) if x)
    prop["description"] = described + (f" ({prop['description']})" if "description" in prop else "")
    values = defn.choice_values() if defn.kind in ("choice", "multi_choice") else []
    if defn.kind == "choice":
        prop["enum"] = values
    elif defn.kind == "multi_choice":
        prop["items"] = {"type": "string", "enum": values}
    for bound, key in ((defn.min_value, "minimum"), (defn.max_value, "maximum")):
        if bound not in (None, "") and prop["type"] == "integer":
            prop[key] = int(bound)
    if defn.max_length and prop["type"] == "string":
        prop["maxLength"] = defn.max_length
    prop["nullable"] = True
    return prop


def custom_schema(model: str, defs: list[FieldDefinition]) -> type[Schema]:
    """The schema of ``model``'s custom object (one class per set of definitions, so
    OpenAPI names it once: ``CustomerCustomFields``)."""
    key = tuple((d.id, d.name, d.kind, d.updated_at) for d in defs)
    cached = _cache.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    attrs: dict[str, Any] = {
        d.name: fields.Raw(allow_none=True, metadata=_property(d)) for d in defs
    }
    attrs["Meta"] = type("Meta", (), {"unknown": INCLUDE})
    found = type(f"{model}CustomFields", (Schema,), attrs)
    _cache[model] = (key, found)
    return found


def with_custom(schema: Any, column: str, model: str, defs: list[FieldDefinition]) -> Any:
    """``schema`` (an instance FAB built) with ``column`` as the typed custom object."""
    if schema is None or column not in schema.fields:
        return schema
    nested = custom_schema(model, defs)
    base = getattr(schema, "_crm_base_class", type(schema))
    cls = type(base.__name__, (base,), {column: fields.Nested(nested, allow_none=True)})
    cls._crm_base_class = base  # type: ignore[attr-defined]
    return cls()
