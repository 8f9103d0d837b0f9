"""Tolerant OData readers: both shapes of points, unknown types ignored, nothing crashes."""

from __future__ import annotations

import math

import pytest

from gradesync.graph import is_points_outcome, odata_type, points_of, points_outcomes, published_points_of


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ({"points": {"points": 85.0, "gradedBy": {}}}, 85.0),
        ({"points": {"points": 0}}, 0.0),
        ({"points": 97}, 97.0),  # older beta shape
        ({"points": 12.5}, 12.5),
        ({"points": None}, None),
        ({"points": {"points": None}}, None),
        ({}, None),
        ({"points": "85"}, None),
        ({"points": True}, None),
        ({"points": {"points": math.nan}}, None),
        ({"points": math.inf}, None),
        (None, None),
        ("points", None),
    ],
)
def test_points_of(outcome, expected):
    assert points_of(outcome) == expected


def test_published_points_of():
    assert published_points_of({"publishedPoints": {"points": 80}}) == 80.0
    assert published_points_of({"publishedPoints": 70}) == 70.0
    assert published_points_of({"publishedPoints": None}) is None


def test_unknown_odata_types_are_skipped_not_fatal():
    submission = {
        "outcomes": [
            {"@odata.type": "#microsoft.graph.educationFeedbackOutcome", "id": "f"},
            {"@odata.type": "#microsoft.graph.educationSomethingNewOutcome", "id": "n", "points": 3},
            {"@odata.type": "#microsoft.graph.educationPointsOutcome", "id": "p", "points": {"points": 4}},
            {"id": "no-type"},
            "garbage",
        ]
    }
    found = points_outcomes(submission)
    assert [o["id"] for o in found] == ["p"]
    assert points_of(found[0]) == 4.0
    assert is_points_outcome({"@odata.type": "microsoft.graph.educationPointsOutcome"})
    assert odata_type({"@odata.type": 5}) is None
    assert points_outcomes({"outcomes": None}) == [] and points_outcomes(None) == []
