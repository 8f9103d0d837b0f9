"""Collections as Graph serves them: ``$filter``, ``$select``, ``$expand``, ``$top`` and opaque nextLinks.

Choices where Graph is vague (least convenient legal behaviour): small pages (the emulator's
``page_size``; ``$top`` only lowers it) and nextLinks whose ``$skiptoken`` holds the whole query, so a
client must follow them as given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graph_emulator import state as st
from graph_emulator.answers import Answer
from graph_emulator.common import Json
from graph_emulator.odata import (
    QueryError,
    decode_skiptoken,
    encode_skiptoken,
    getter,
    parse_filter,
    parse_list,
    parse_top,
)
from graph_emulator.routing import Call

FIELDS = {
    "class": set(st.render_class({"id": ""})),
    "user": set(st.render_user({"id": ""})) | {"externalId"},
    "assignment": set(st.render_assignment({"id": ""}, "")),
    "submission": set(st.render_submission({"id": ""})) | {"outcomes", "resources", "submittedResources"},
    "outcome": {
        "id",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "points",
        "publishedPoints",
        "feedback",
        "publishedFeedback",
        "@odata.type",
    },
}
EXPANDABLE = {"outcomes", "resources", "submittedResources", "*"}
_CONTEXT = {
    "class": "classes",
    "user": "users",
    "assignment": "assignments",
    "submission": "submissions",
    "outcome": "outcomes",
}
# How a submission's expanded outcomes are rendered (the caller knows the tenant).
OutcomeRenderer = Callable[[Json], list[Json]]


def _user_external_id(u: Json) -> Any:
    for role in ("student", "teacher"):
        if isinstance(u.get(role), dict) and u[role].get("externalId"):
            return u[role]["externalId"]
    return None


_ALIASES: dict[str, dict[str, Callable[[Json], Any]]] = {"user": {"externalId": _user_external_id}}


def page(call: Call, kind: str, items: list[Json], page_size: int, outcomes: OutcomeRenderer) -> Answer:
    """One page of ``items`` (already rendered; submissions carry their tenant dict as ``_raw``)."""
    params = call.params
    if "$skiptoken" in params:
        s = decode_skiptoken(params["$skiptoken"])
        flt, sel, exp, top, offset = s.get("f"), s.get("s"), s.get("e"), s.get("t"), s["o"]
    else:
        flt, sel, exp = params.get("$filter"), params.get("$select"), params.get("$expand")
        top, offset = parse_top(params.get("$top")), 0
    if flt:
        pred = parse_filter(flt, FIELDS[kind])
        aliases = _ALIASES.get(kind)
        items = [it for it in items if pred(getter(it, aliases))]
    size = min(top or page_size, page_size)
    chunk = [shape(it, kind, sel, exp, outcomes) for it in items[offset : offset + size]]
    base = call.ctx.base
    body: Json = {"@odata.context": f"{base}/{call.version}/$metadata#{_CONTEXT[kind]}", "value": chunk}
    if offset + size < len(items):
        token = encode_skiptoken({"f": flt, "s": sel, "e": exp, "t": top, "o": offset + size})
        body["@odata.nextLink"] = f"{base}/{call.version}{call.rest}?$skiptoken={token}"
    return Answer(200, body)


def shape(item: Json, kind: str, select: str | None, expand: str | None, outcomes: OutcomeRenderer) -> Json:
    """Apply ``$expand`` (submissions only) and ``$select`` to one rendered item."""
    item = dict(item)
    expanded = parse_list(expand)
    for e in expanded:
        if kind != "submission" or e not in EXPANDABLE:
            raise QueryError(f"Could not find a navigation property named '{e}' to expand.", "invalidExpand")
    sub_raw = item.pop("_raw", None)
    if kind == "submission" and expanded:
        every = "*" in expanded
        if "outcomes" in expanded or every:
            item["outcomes"] = outcomes(sub_raw)
        if "resources" in expanded or every:
            item["resources"] = []
        if "submittedResources" in expanded or every:
            item["submittedResources"] = []
    fields = parse_list(select)
    if fields:
        for f in fields:
            if f not in FIELDS[kind]:
                raise QueryError(f"Could not find a property named '{f}' on this type.", "invalidSelect")
        keep = {"id", "@odata.type", *fields, *(e for e in expanded if e != "*")}
        if "*" in expanded:
            keep |= {"outcomes", "resources", "submittedResources"}
        item = {k: v for k, v in item.items() if k in keep}
    return item
