"""JSON batching (``POST /{version}/$batch``): payload checks, ``dependsOn`` order, sub-request URLs,
response order.

As Graph documents ("Combine multiple HTTP requests using JSON batching"): at most 20 requests; ids
are unique strings — compared case-insensitively, so two ids that differ only by case are duplicates
(400 for the whole batch); ``dependsOn`` orders requests and a failed dependency gives ``424``; a
sub-request with a body needs its own ``Content-Type`` header. A sub-request's headers are only its
own ``headers`` object: the envelope's headers (``Prefer`` included) do not travel into it — Graph's
batching page defines ``headers`` per request and says nothing of inheritance, so the emulator takes the
least convenient reading — while the envelope's ``Authorization`` authenticates every sub-request
(an expired token fails the envelope with 401 as a whole). Responses always come in an order other
than the request order.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from graph_emulator.answers import Answer, odata_error
from graph_emulator.common import Json
from graph_emulator.routing import VERSIONS, Ctx

MAX_BATCH = 20
GRAPH_HOSTS = ("graph.microsoft.com",)


def _invalid(message: str, inner: str, crid: str | None) -> Answer:
    return odata_error(400, f"Invalid batch payload: {message}", inner, crid)


def parse_requests(raw: bytes, crid: str | None) -> tuple[list[Json], list[Json]] | Answer:
    """The batch's request items as sent and in an order that respects ``dependsOn``, or the 400
    Graph gives."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return _invalid("the body is not JSON.", "invalidBatch", crid)
    reqs = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(reqs, list) or not reqs:
        return _invalid("'requests' must be a non-empty array.", "invalidBatch", crid)
    if len(reqs) > MAX_BATCH:
        return _invalid(f"at most {MAX_BATCH} requests per batch, got {len(reqs)}.", "invalidBatchSize", crid)
    for r in reqs:
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r["id"]:
            return _invalid("every request needs a string 'id'.", "invalidBatch", crid)
        if not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
            return _invalid(f"request '{r['id']}' needs 'method' and 'url'.", "invalidBatch", crid)
    dup = [i for i, n in Counter(r["id"].casefold() for r in reqs).items() if n > 1]
    if dup:
        return _invalid(
            f"duplicate request id '{dup[0]}' (ids are compared ignoring case).", "duplicateId", crid
        )
    by_id = {r["id"]: r for r in reqs}
    for r in reqs:
        deps = r.get("dependsOn") or []
        if not isinstance(deps, list) or any(d not in by_id or d == r["id"] for d in deps):
            return _invalid(f"request '{r['id']}' depends on an unknown request.", "invalidDependsOn", crid)
    order = _topological(reqs)
    if order is None:
        return _invalid("dependsOn forms a cycle.", "invalidDependsOn", crid)
    return reqs, order


def _topological(reqs: list[Json]) -> list[Json] | None:
    """Requests in an order that respects dependsOn (stable otherwise); None on a cycle."""
    done: set[str] = set()
    out: list[Json] = []
    pending = list(reqs)
    while pending:
        progressed = False
        for r in list(pending):
            if all(d in done for d in r.get("dependsOn") or []):
                out.append(r)
                done.add(r["id"])
                pending.remove(r)
                progressed = True
        if not progressed:
            return None
    return out


def sub_url(ctx: Ctx, url: str) -> tuple[str | None, str, str | None]:
    """(path under the version root, query string, error) for a batch sub-request url."""
    if re.match(r"^https?://", url, re.I):
        parsed = urllib.parse.urlsplit(url)
        own = urllib.parse.urlsplit(ctx.base).netloc
        if parsed.netloc.lower() not in (*GRAPH_HOSTS, own.lower()):
            return None, "", f"The url '{url}' is not on the Graph host."
        parts = parsed.path.split("/", 2)
        if len(parts) < 3 or parts[1] not in VERSIONS:
            return None, "", f"The url '{url}' has no version root (/v1.0 or /beta)."
        return "/" + parts[2], parsed.query, None
    path, _, query = url.partition("?")
    path = "/" + path.lstrip("/")
    if path.split("/")[1] in VERSIONS or path == "/$batch":
        return None, "", f"The url '{url}' must be relative to the version root."
    return path, query, None


# run_one(method, rest, query, headers, body) -> Answer: one sub-request through throttle and faults
RunOne = Callable[[str, str, str, dict[str, str], Any], Answer]
# count(method, rest, status): a sub-request answered before reaching run_one (stats)
Count = Callable[[str, str, int], None]


def run(ctx: Ctx, order: list[Json], run_one: RunOne, count: Count) -> dict[str, Answer]:
    """Answer every request of a checked batch, in ``order``; keyed by request id."""
    results: dict[str, Answer] = {}
    for r in order:
        headers = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
        crid = headers.get("client-request-id")
        failed = [d for d in r.get("dependsOn") or [] if not 200 <= results[d].status < 300]
        method = r["method"].upper()
        rest, query, err = sub_url(ctx, r["url"])
        if failed:
            ans = odata_error(
                424, f"The request depends on request '{failed[0]}', which failed.", "failedDependency", crid
            )
            count(method, rest or "<unknown>", 424)
        elif err:
            ans = odata_error(400, err, "invalidUrl", crid)
            count(method, "<unknown>", 400)
        elif r.get("body") is not None and "content-type" not in headers:
            ans = odata_error(
                400, "Content-Type header is required when a request has a body.", "missingContentType", crid
            )
            count(method, rest or "<unknown>", 400)
        else:
            ans = run_one(method, rest or "/", query, headers, r.get("body"))
        results[r["id"]] = ans
    return results


def envelope(reqs: list[Json], results: dict[str, Answer], seed: int, batch_no: int) -> list[Json]:
    """The sub-responses in an order other than the request order (seeded: reproducible)."""
    ids = [r["id"] for r in reqs]
    rng = random.Random(f"{seed}:{batch_no}")
    out_ids = list(ids)
    rng.shuffle(out_ids)
    if out_ids == ids and len(ids) > 1:
        out_ids = out_ids[1:] + out_ids[:1]
    responses = []
    for rid in out_ids:
        a = results[rid]
        item: Json = {
            "id": rid,
            "status": a.status,
            "headers": {"Content-Type": "application/json", **a.headers},
        }
        if a.body is not None:
            item["body"] = a.body
        responses.append(item)
    return responses


def answer(responses: list[Json]) -> Answer:
    return Answer(200, {"responses": responses}, {"request-id": str(uuid.uuid4())})
