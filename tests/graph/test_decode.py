"""Fast decoding reads every Graph answer exactly as the stdlib-and-dicts path reads it.

``gradesync.graph.decode`` decodes with msgspec (typed where resolve needs speed); anything it does
not fit must fall back to the old path for that envelope or body, never lose or misread a row.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradesync.graph.client import _body, _page_items
from gradesync.graph.decode import Submission, loads, submissions_page
from gradesync.resolve import SubmissionColumns

from .test_client_mock import batch_handler, make_client

POINTS = "#microsoft.graph.educationPointsOutcome"
URL = "/education/classes/c/assignments/a{}/submissions?$expand=outcomes"


def _stdlib(content: bytes) -> Any:
    return None if not content.strip() else json.loads(content)


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)  # NaN == NaN, and 1 is not 1.0 nor True


ODD = [
    b'{"a": NaN, "b": -Infinity}',
    b"[1e400]",
    b'["\\ud800"]',
    b"\xef\xbb\xbf{}",
    '{"é": 1}'.encode("utf-16"),
    b'{"a":1,"a":2}',
    b"[123456789012345678901234567890, -0.0, 1E2]",
    b"  ",
    b'["a\x01b"]',
    b"[1,]",
    b"{}x",
    b"[01]",
    b"\xff",
]


@pytest.mark.parametrize("content", ODD)
def test_loads_reads_and_refuses_exactly_what_json_loads_does(content: bytes) -> None:
    try:
        expected: Any = _stdlib(content)
    except ValueError:
        with pytest.raises(ValueError):
            loads(content)
        return
    assert _same(loads(content), expected)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_json)
def test_loads_gives_json_loads_value_for_any_json(value: Any) -> None:
    content = json.dumps(value).encode()
    assert _same(loads(content), json.loads(content))


# ------------------------------------------------------------------ submissions pages

_fine = st.none() | st.booleans() | st.integers(-5, 100) | st.floats(allow_nan=False, allow_infinity=False)
_fine = _fine | st.text(max_size=3)
_leaf = _fine | st.floats()  # NaN and infinities are written as NaN/Infinity: msgspec refuses those
_kind = st.sampled_from(
    [POINTS, "#Microsoft.Graph.EducationPointsOutcome", "microsoft.graph.educationPointsOutcome",
     "#microsoft.graph.educationFeedbackOutcome", "#microsoft.graph.educationFutureOutcome", None, 3,
     "#microsoft.graph.educationRubricOutcome", "#microsoft.graph.educationFeedbackResourceOutcome",
     "microsoft.graph.EducationFeedbackOutcome"]
)  # fmt: skip


def _feedback(leaf: Any) -> Any:
    """An educationFeedback as Graph sends it ({"text": {"content": ...}, ...}), or null."""
    text = st.none() | st.fixed_dictionaries({}, optional={"content": leaf, "contentType": leaf})
    return st.none() | st.fixed_dictionaries({}, optional={"text": text, "feedbackDateTime": leaf})


def _outcome(leaf: Any, odd: Any = None) -> Any:
    odd = st.nothing() if odd is None else odd
    points = leaf | st.fixed_dictionaries({"points": leaf}) | st.lists(leaf, max_size=2)
    rubric = st.none() | st.lists(st.fixed_dictionaries({"qualityId": leaf}) | leaf, max_size=2)
    feedback = _feedback(leaf) | odd
    return st.fixed_dictionaries(
        {},
        optional={
            "@odata.type": _kind,
            "id": leaf,
            "points": points,
            "lastModifiedDateTime": leaf,
            "feedback": feedback,
            "publishedFeedback": feedback,
            "rubricQualitySelectedLevels": rubric,
            "publishedRubricQualitySelectedLevels": rubric,
        },
    )


def _recipient(leaf: Any) -> Any:
    kinds = st.sampled_from(["#microsoft.graph.educationSubmissionGroupRecipient", "x", None])
    return st.fixed_dictionaries({}, optional={"@odata.type": kinds, "userId": leaf, "groupId": leaf})


def _pages(leaf: Any, odd: Any) -> Any:
    """Pages of submissions; ``odd`` adds what the typed decoder must not fit (or ``st.nothing()``)."""
    submission = st.fixed_dictionaries(
        {},
        optional={
            "id": leaf,
            "status": leaf,
            "recipient": st.none() | _recipient(leaf) | odd,
            "outcomes": st.none() | st.lists(_outcome(leaf, odd) | odd, max_size=3) | odd,
            "submittedBy": _json,
        },
    )
    return st.fixed_dictionaries(
        {"value": st.lists(submission | odd, max_size=4)}, optional={"@odata.nextLink": leaf}
    )


_FITTING = _pages(_fine, st.nothing())
_ODD = _pages(_leaf, st.booleans() | st.integers() | st.text(max_size=2))


def _columns(items: list[Any]) -> list[list[Any]]:
    cols = SubmissionColumns()
    cols.add("c", "a", items)
    return [
        cols.submission_id,
        cols.user_id,
        cols.group,
        cols.status,
        cols.outcome_id,
        cols.points,
        cols.last_modified,
        cols.work,
    ]


def _typed(content: bytes) -> tuple[list[Any], Any]:
    """The client's path for one sub-response body of a typed envelope."""
    return _page_items(_body(msgspec.Raw(content), submissions_page), "GET x")


def _assert_read_alike(page: dict[str, Any]) -> list[Any]:
    content = json.dumps(page).encode()
    expected, expected_link = _page_items(json.loads(content), "GET x")
    items, link = _typed(content)
    assert _same(link, expected_link)
    assert _same(_columns(items), _columns(expected))
    return items


@settings(max_examples=300, deadline=None)
@given(_FITTING)
def test_a_typed_submissions_page_reads_to_the_same_columns_as_its_dicts(page: dict[str, Any]) -> None:
    """Leaves of any JSON type (points as strings, booleans, lists; ids missing or numbers; unknown
    or mis-cased outcome types): the page is typed and reads to the very same columns."""
    items = _assert_read_alike(page)
    assert all(type(i) is Submission for i in items)


@settings(max_examples=200, deadline=None)
@given(_ODD)
def test_a_page_the_typed_decoder_does_not_fit_reads_as_before(page: dict[str, Any]) -> None:
    """NaN/Infinity, a recipient, outcome or item that is not an object, outcomes not a list."""
    _assert_read_alike(page)


def test_what_the_typed_decoder_does_not_fit_is_read_as_dicts() -> None:
    fits = {"value": [{"id": "s1", "outcomes": [{"@odata.type": POINTS, "id": "o", "points": "7"}]}]}
    items, _ = _typed(json.dumps(fits).encode())
    assert type(items[0]) is Submission  # a string points is a leaf: still typed, read as not graded
    assert math.isnan(_columns(items)[5][0])
    for odd in (
        {"value": [{"id": "s1", "outcomes": "none"}]},
        {"value": [5, {"id": "s2"}]},
        {"id": "entity"},
    ):
        items, _ = _typed(json.dumps(odd).encode())
        assert all(isinstance(i, dict) for i in items)  # the old path: dicts, non-objects dropped


# ------------------------------------------------------------------ through the client


def _sub(sid: str, *outcomes: dict[str, Any]) -> dict[str, Any]:
    return {"id": sid, "status": "returned", "recipient": {"userId": "u-" + sid}, "outcomes": list(outcomes)}


def _listing(client: Any, n: int) -> list[list[Any]]:
    urls = [URL.format(i) for i in range(n)]
    pages = client.get_all_many(urls, page=submissions_page)
    assert pages.errors == {}
    return [pages[u] for u in urls]


def test_an_envelope_of_odd_bodies_reads_every_row_as_before() -> None:
    """Per body: a fitting page typed; a page with an unexpected shape, a string ``points`` or an
    unknown outcome kind read by the old path; not one row lost or changed."""
    bodies = [
        {"value": [_sub("s1", {"@odata.type": POINTS, "id": "o1", "points": {"points": 9}})]},
        {"value": [_sub("s2", {"@odata.type": "#microsoft.graph.educationFutureOutcome", "points": 3},
                        {"@odata.type": POINTS, "id": "o2", "points": "8"}), 7]},
        {"value": [{**_sub("s3"), "outcomes": {"not": "a list"}}]},
    ]  # fmt: skip

    def answer(reqs: list[dict[str, Any]], n: int) -> Any:
        return {"responses": [{"id": r["id"], "status": 200, "body": bodies[int(r["id"])]} for r in reqs]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    got = _listing(client, 3)
    assert len(seen) == 1
    assert type(got[0][0]) is Submission and isinstance(got[1][0], dict) and isinstance(got[2][0], dict)
    assert [len(items) for items in got] == [1, 1, 1]  # the 7 dropped, as the old path drops it
    expected = [_page_items(b, "x")[0] for b in bodies]
    for items, old in zip(got, expected, strict=True):
        assert _same(_columns(items), _columns(old))
    outcome_ids, points = _columns(got[1])[4:6]
    assert outcome_ids == ["o2"] and math.isnan(points[0])  # the unknown kind skipped, "8" not a number


@pytest.mark.parametrize(
    "envelope",
    [
        b'{"responses": [{"id": "0", "status": 200, "body": {"value": [{"id": "s1", "outcomes": '
        b'[{"@odata.type": "#microsoft.graph.educationPointsOutcome", "id": "o", "points": NaN}]}]}}]}',
        b'{"responses": [5, {"id": "0", "status": 200, "body": {"value": [{"id": "s1"}]}}]}',
        b'\xef\xbb\xbf{"responses": [{"id": "0", "status": 200, "body": {"value": [{"id": "s1"}]}}]}',
    ],
    ids=["nan-points", "non-object-answer", "utf8-bom"],
)
def test_an_envelope_msgspec_refuses_is_read_whole_by_json_loads(envelope: bytes) -> None:
    import httpx

    client, _, _ = make_client(lambda request: httpx.Response(200, content=envelope))
    (items,) = _listing(client, 1)
    assert [i["id"] for i in items] == ["s1"] and isinstance(items[0], dict)
    assert math.isnan(_columns(items)[5][0])


def test_a_broken_page_is_still_retried_with_a_typed_decoder() -> None:
    def answer(reqs: list[dict[str, Any]], n: int) -> Any:
        body: Any = [1, 2] if n == 1 else {"value": [_sub("s1")]}
        return {"responses": [{"id": r["id"], "status": 200, "body": body} for r in reqs]}

    handle, seen = batch_handler(answer)
    client, _, _ = make_client(handle)
    (items,) = _listing(client, 1)
    assert len(seen) == 2 and client.stats.retries == 1 and type(items[0]) is Submission
