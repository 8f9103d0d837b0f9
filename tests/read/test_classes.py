"""Which Teams class an export's class value means: suggestions by what people call a class, search,
and a mapping's ``[class.values]`` turning the file's value into the Teams key.

The values are what the vendors' exports hold: Canvas's gradebook export has a ``Section`` column with
the section's *name* (Canvas Guides, "How do I export grades in the Gradebook?"); PowerSchool's
assignment scores build ``Course_Number.Section_Number``; School Data Sync gives a Teams class the SIS
section id as ``externalId`` and the section's name as ``displayName``."""

from __future__ import annotations

import shutil
from pathlib import Path

from gradesync.config import Settings
from gradesync.models import TeamsClass
from gradesync.read import PRESETS, read_inputs
from gradesync.read.classes import fold, search_classes, suggest_classes
from gradesync.read.inspect import SnapshotLookup, inspect_inputs

EXPORTS = Path(__file__).resolve().parents[2] / "sample_data" / "exports"
TENANT = [
    TeamsClass(
        "c1",
        "Algebra I - P1",
        "SEC-1001",
        "Algebra I",
        "ALGE-1001",
        term="Fall 2024",
        teachers=("Tara Rossi",),
    ),
    TeamsClass(
        "c2", "Algebra I - P2", "SEC-1005", "Algebra I", "ALGE-1005", term="Fall 2024", teachers=("Ann Lee",)
    ),
    TeamsClass(
        "c3", "Biology - P2", "SEC-1002", "Biology", "BIOL-1002", term="Spring 2025", teachers=("Sofia Kim",)
    ),
    TeamsClass("c4", "World History – P3", "SEC-1003", "World History", term="Fall 2024"),
]


def test_a_section_named_like_a_class_is_the_one_exact_suggestion():
    (first, *rest) = suggest_classes("Algebra I - P1", TENANT)
    assert (first.teams_class.id, first.exact, first.why) == ("c1", True, "same name")
    assert not any(s.exact for s in rest)  # unique: the web app preselects it for confirmation


def test_names_compare_ignoring_case_spaces_and_the_kind_of_dash():
    assert fold("World  History - p3") == fold("World History – P3")
    assert suggest_classes("world history - p3", TENANT)[0].teams_class.id == "c4"


def test_a_course_name_suggests_every_section_of_it_without_choosing():
    found = suggest_classes("Algebra I", TENANT)
    assert [s.teams_class.id for s in found[:2]] == ["c1", "c2"] and not any(s.exact for s in found)


def test_a_key_built_another_way_is_close_to_the_sis_id():
    found = suggest_classes("SEC.1002", TENANT)  # PowerSchool's Course_Number.Section_Number
    assert found[0].teams_class.id == "c3" and found[0].why == "close to its SIS id" and not found[0].exact


def test_a_file_without_a_class_is_matched_by_its_own_name():
    found = suggest_classes("", TENANT, file_name="Biology - P2 grades.csv")
    assert [s.teams_class.id for s in found] == ["c3"] and found[0].why == "named in the file's name"
    assert suggest_classes("", TENANT, file_name="grades.csv") == []


def test_search_by_teacher_term_or_sis_id():
    assert [c.id for c in search_classes("rossi", TENANT)] == ["c1"]
    assert [c.id for c in search_classes("algebra fall", TENANT)] == ["c1", "c2"]
    assert [c.id for c in search_classes("sec-1002", TENANT)] == ["c3"]
    assert search_classes("  ", TENANT) == []


def test_class_values_turn_the_section_name_into_the_teams_key(tmp_path):
    shutil.copyfile(EXPORTS / "canvas_gradebook.csv", tmp_path / "canvas.csv")
    canvas = PRESETS["canvas"].mapping
    chosen = canvas.model_copy(
        update={
            "class_": canvas.class_.model_copy(
                update={"column": "Section", "values": {"Algebra I - P1": "SEC-1001"}}
            )
        }
    )
    (tmp_path / "canvas.mapping.toml").write_text(chosen.to_toml(), encoding="utf-8")
    read = read_inputs([tmp_path / "canvas.csv"], Settings())  # the mapping beside it is used
    live = read.frame[read.frame["reason"] != "ignored_row"]
    assert set(live["class_key"].astype(str)) == {"SEC-1001"}


def test_a_bundle_takes_the_mapping_beside_it(tmp_path):
    shutil.copyfile(EXPORTS / "oneroster_gradebook.zip", tmp_path / "term1.zip")
    oneroster = PRESETS["oneroster"].mapping
    moved = oneroster.model_copy(
        update={"class_": oneroster.class_.model_copy(update={"values": {"SEC-1002": "SEC-1003"}})}
    )
    (tmp_path / "term1.mapping.toml").write_text(moved.to_toml(), encoding="utf-8")
    read = read_inputs([tmp_path / "term1.zip"], Settings())
    assert "SEC-1002" not in set(read.frame["class_key"].astype(str)) and "SEC-1003" in set(
        read.frame["class_key"].astype(str)
    )


def test_inspect_says_did_you_mean_by_name_and_names_the_column_of_class_names():
    lookup = SnapshotLookup(classes=TENANT)
    powerschool = inspect_inputs(
        [EXPORTS / "powerschool_scores.csv"], Settings(), lookup, format="powerschool"
    )
    sec = next(c for c in powerschool.files[0].classes if c.key == "SEC.1002")
    assert sec.in_teams is False and sec.did_you_mean[0] == "Biology - P2 (SEC-1002)"
    canvas = inspect_inputs([EXPORTS / "canvas_gradebook.csv"], Settings(), lookup)
    f = canvas.files[0]
    assert f.no_class and f.class_hint == "Section"
    assert all(c.in_teams is None for c in f.columns)  # no class found: assignments are not checked
