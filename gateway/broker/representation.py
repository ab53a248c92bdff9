"""Stored entities rendered for a request, ETSI GS CIM 009 V1.8.1 clause 4.5.

- normalized (4.5.1): every attribute with its ``type`` and members;
- concise (4.5.3): no redundant ``type``; a plain Property is its value, a plain
  GeoProperty its geometry;
- keyValues, also called simplified (4.5.4): each attribute is its value.

Names are compacted with the request's ``@context``; ``createdAt`` and
``modifiedAt`` appear only with ``options=sysAttrs`` (4.8).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from gateway.broker.entities import ATTRIBUTE_TYPES
from gateway.broker.ldcontext import ActiveContext

__all__ = ["Format", "render_entity"]

Format = Literal["normalized", "concise", "keyValues"]

_SYSTEM = ("createdAt", "modifiedAt")
_META = frozenset({"type", "datasetId", "observedAt", "unitCode", "objectType", "createdAt",
                   "modifiedAt", "instanceId", "lang", *ATTRIBUTE_TYPES.values()})


def render_entity(
    entity: dict[str, Any],
    ctx: ActiveContext,
    *,
    fmt: Format = "normalized",
    attrs: Collection[str] | None = None,
    sys_attrs: bool = False,
) -> dict[str, Any]:
    """``entity`` (stored form) as the request asked; ``attrs`` are expanded names."""
    out: dict[str, Any] = {"id": entity["id"], "type": ctx.compact(entity["type"])}
    if sys_attrs and fmt != "keyValues":
        for name in _SYSTEM:
            if name in entity:
                out[name] = entity[name]
    for iri, attribute in entity["attrs"].items():
        if attrs is not None and iri not in attrs:
            continue
        out[ctx.compact(iri)] = _attribute(attribute, ctx, fmt, sys_attrs)
    return out


def _attribute(attribute: dict[str, Any], ctx: ActiveContext, fmt: Format, sys_attrs: bool) -> Any:
    kind = attribute["type"]
    content = ATTRIBUTE_TYPES[kind]
    if fmt == "keyValues":
        return _content_value(attribute, ctx, flatten=True)
    rendered: dict[str, Any] = {"type": kind}
    extras = False
    for member, item in attribute.items():
        if member == "type":
            continue
        if member in _SYSTEM:
            if sys_attrs:
                rendered[member] = item
            continue
        if member in _META:
            if member == content:
                rendered[member] = _content_value(attribute, ctx, flatten=False)
            else:
                rendered[member] = ctx.compact(item) if member == "objectType" else item
                extras = True
        else:
            rendered[ctx.compact(member)] = _attribute(item, ctx, fmt, sys_attrs)
            extras = True
    if fmt == "normalized":
        return rendered
    del rendered["type"]
    if kind in ("Property", "GeoProperty") and not extras and not sys_attrs:
        value = rendered[content]
        # A JSON object value that could be read as an attribute keeps its wrapper.
        if kind == "GeoProperty" or not (isinstance(value, dict | list)):
            return value
    return rendered


def _content_value(attribute: dict[str, Any], ctx: ActiveContext, *, flatten: bool) -> Any:
    kind = attribute["type"]
    value = attribute[ATTRIBUTE_TYPES[kind]]
    if kind == "VocabProperty":
        return [ctx.compact(v) for v in value] if isinstance(value, list) else ctx.compact(value)
    if kind == "ListRelationship" and flatten:
        return [item.get("object") if isinstance(item, dict) else item for item in value]
    return value
