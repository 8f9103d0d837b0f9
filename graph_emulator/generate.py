"""A deterministic tenant generator with the variety real schools have.

``generate_tenant(classes=4, students=30, assignments=5, seed=1)`` gives, for any size:

- students with an SIS id (``student.externalId`` such as ``"000123"`` — leading zeros) and without
  one, with and without a ``studentNumber``, with a ``mail`` equal to or different from the UPN, or none;
- one teacher per class; every class after the first shares two students with the previous one, so
  some students are in two classes;
- assignment names repeated in every class (``"Unit 1 Quiz"``), graded ones (``maxPoints`` 10, 20, 50
  or 100) and an ungraded ``"Reading Log"`` (``grading: null``); the first class also has a draft
  (no submissions) and a group assignment (group-recipient submissions) when it has ≥ 4 assignments;
- submissions working, submitted, returned (``publishedPoints`` set, sometimes different from
  ``points`` after a regrade), excused and reassigned; graded submissions with ``points: null``.
- points outcomes as Graph v1.0 has them (``points_outcomes="always"``, the default): every
  submission of a points-graded assignment has a feedback outcome and an ``educationPointsOutcome``
  (``points: null`` until graded; "List outcomes" in Graph's v1.0 reference), so grading is a PATCH.
  ``points_outcomes="some"`` is the older shape (about one graded submission in eight, and every
  excused one, has no points outcome: the create path, POST ``.../outcomes``). Both draw the same
  random numbers, so the two shapes of one seed differ only by those added outcomes (whose ids are
  derived from the submission id, not drawn).

It is fast enough for 2,000 classes × 30 students × 20 assignments (1.2 M submissions) in seconds.
"""

from __future__ import annotations

import random
from typing import Any

from graph_emulator.common import FORMAT, derived_id

Json = dict[str, Any]

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Isla",
    "Jamal",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olu",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavi",
    "Yara",
    "Zane",
    "Ana",
    "Luis",
    "Mei",
    "Omar",
    "Zoe",
    "Ivan",
    "Nia",
    "Theo",
    "Lena",
    "Raj",
    "Sofia",
    "Kofi",
    "Ines",
    "Marco",
]
LAST = [
    "Ito",
    "Garcia",
    "Nguyen",
    "Smith",
    "Okafor",
    "Muller",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Silva",
    "Chen",
    "Johansson",
    "Patel",
    "Kim",
    "Dubois",
    "Novak",
    "Alvarez",
    "Brown",
    "O'Neil",
    "Schmidt",
    "Tanaka",
    "Costa",
    "Ahmed",
    "Jensen",
    "Moreau",
    "Hughes",
    "Park",
    "Lopez",
    "Singh",
    "Walsh",
]
SUBJECTS = (
    "Algebra I",
    "Biology",
    "World History",
    "English 9",
    "Chemistry",
    "Geometry",
    "Spanish I",
    "Physics",
    "Art",
    "Music",
    "Economics",
    "Computer Science",
)
ASSIGNMENT_NAMES = (
    "Unit 1 Quiz",
    "Reading Log",
    "Lab Report 1",
    "Essay 1",
    "Unit 1 Test",
    "Homework 1",
    "Unit 2 Quiz",
    "Project Proposal",
    "Homework 2",
    "Unit 2 Test",
    "Lab Report 2",
    "Essay 2",
    "Unit 3 Quiz",
    "Homework 3",
    "Midterm Exam",
    "Unit 3 Test",
    "Presentation",
    "Homework 4",
    "Unit 4 Quiz",
    "Final Project",
)
MAX_POINTS = (10, 20, 50, 100)
DOMAIN = "contoso.edu"


class _Ids:
    """GUID-looking ids from a seeded generator (fast: no uuid objects)."""

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def __call__(self) -> str:
        h = "%032x" % self._bits(128)  # noqa: UP031 - fastest way to a fixed-width hex string
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _ts(day: int, minute: int = 0) -> str:
    month, d = divmod(day, 28)
    return f"2024-{9 + month % 4:02d}-{d + 1:02d}T{8 + minute // 60 % 10:02d}:{minute % 60:02d}:00Z"


POINTS_OUTCOME_SHAPES = ("always", "some")


def generate_tenant(
    classes: int = 4,
    students: int = 30,
    assignments: int = 5,
    seed: int = 1,
    *,
    lazy: bool | None = None,
    points_outcomes: str = "always",
) -> Json:
    """A tenant dict (format in :mod:`graph_emulator.state`); same arguments → same tenant.

    With ``lazy`` (default: when there would be more than 100,000 submissions) assignments carry a
    ``"generated"`` recipe instead of ``"submissions"``; the emulator expands a recipe the first time
    the assignment's submissions are touched, always to the same submissions, so a 1.2 M-submission
    tenant costs only what a run reads. :func:`materialize_tenant` expands them all.
    """
    if classes < 1 or students < 1 or assignments < 1:
        raise ValueError("classes, students and assignments must each be at least 1")
    if points_outcomes not in POINTS_OUTCOME_SHAPES:
        raise ValueError(f"points_outcomes must be one of {POINTS_OUTCOME_SHAPES}, not {points_outcomes!r}")
    if lazy is None:
        lazy = classes * students * assignments > 100_000
    gen = _Generator(random.Random(seed), lazy=lazy, points_outcomes=points_outcomes)
    prev_students: list[str] = []
    tenant_classes = []
    for ci in range(classes):
        cls = gen.make_class(ci, students, assignments, prev_students)
        prev_students = class_students(cls)
        tenant_classes.append(cls)
    return {"format": FORMAT, "users": gen.users, "classes": tenant_classes}


_GRADEABLE = [a for a in ASSIGNMENT_NAMES if a != "Reading Log"]


class _Generator:
    """The steps of :func:`generate_tenant`, drawing from one seeded generator in a fixed order
    (so the same arguments always give the same tenant: keep the order of draws when editing)."""

    def __init__(self, rng: random.Random, *, lazy: bool, points_outcomes: str) -> None:
        self.rng = rng
        self.new_id = _Ids(rng)
        self.lazy = lazy
        self.points_outcomes = points_outcomes
        self.users: list[Json] = []
        self.student_no = 100

    def _name(self) -> tuple[str, str, str]:
        first, last = FIRST[self.rng.randrange(len(FIRST))], LAST[self.rng.randrange(len(LAST))]
        return first, last, f"{first}.{last}".lower().replace("'", "")

    def make_student(self) -> str:
        rand = self.rng.random
        self.student_no += 1
        n = self.student_no
        first, last, slug = self._name()
        upn = f"{slug}{n}@{DOMAIN}"
        r = rand()
        mail = upn if r < 0.85 else (f"{slug}@{DOMAIN}" if r < 0.95 else None)
        has_sis = rand() >= 0.08
        uid = self.new_id()
        self.users.append(
            {
                "id": uid,
                "displayName": f"{first} {last}",
                "givenName": first,
                "surname": last,
                "userPrincipalName": upn,
                "mail": mail,
                "primaryRole": "student",
                "externalSource": "sis" if has_sis else "manual",
                "student": {
                    "externalId": f"{n:06d}" if has_sis else None,
                    "studentNumber": f"S{n:06d}" if rand() >= 0.1 else None,
                    "grade": str(9 + n % 4),
                    "graduationYear": str(2028 - n % 4),
                    "birthDate": None,
                    "gender": None,
                },
                "teacher": None,
            }
        )
        return uid

    def make_teacher(self, section: int) -> str:
        teacher = self.new_id()
        first, last, slug = self._name()
        self.users.append(
            {
                "id": teacher,
                "displayName": f"{first} {last}",
                "givenName": first,
                "surname": last,
                "userPrincipalName": f"{slug}.t{section}@{DOMAIN}",
                "mail": f"{slug}.t{section}@{DOMAIN}",
                "primaryRole": "teacher",
                "externalSource": "sis",
                "student": None,
                "teacher": {"externalId": f"T{section}", "teacherNumber": f"T{section}"},
            }
        )
        return teacher

    def make_class(self, ci: int, students: int, assignments: int, prev_students: list[str]) -> Json:
        """Class ``ci``: its teacher, its students (two shared with the previous class), assignments."""
        subject = SUBJECTS[ci % len(SUBJECTS)]
        period = ci % 8 + 1
        section = 1001 + ci
        teacher = self.make_teacher(section)
        shared = prev_students[-2:] if students > 2 else []
        members = shared + [self.make_student() for _ in range(students - len(shared))]
        asgs = [self.make_assignment(ci, ai, assignments, teacher, members) for ai in range(assignments)]
        return {
            "id": self.new_id(),
            "displayName": f"{subject} - P{period}" + (f" ({section})" if ci >= len(SUBJECTS) else ""),
            "mailNickname": f"{subject.lower().replace(' ', '')}-p{period}-{section}",
            "externalId": f"SEC-{section}",
            "externalName": subject,
            "classCode": f"{subject[:4].upper().strip()}-{section}",
            "externalSource": "sis",
            "members": [teacher, *members],
            "teachers": [teacher],
            "assignments": asgs,
        }

    def make_assignment(self, ci: int, ai: int, assignments: int, teacher: str, members: list[str]) -> Json:
        name = _assignment_name(ai)
        status, assign_to = "assigned", "students"
        if ci == 0 and assignments >= 4 and ai == assignments - 1:
            status, name = "draft", "Unit 5 Quiz (draft)"
        elif ci == 0 and assignments >= 4 and ai == assignments - 2:
            assign_to, name = "groups", "Group Project"
        created = _ts(ai * 5)
        asg: Json = {
            "id": self.new_id(),
            "displayName": name,
            "status": status,
            "grading": None if name == "Reading Log" else {"maxPoints": MAX_POINTS[(ci + ai) % 4]},
            "assignTo": assign_to,
            "createdDateTime": created,
            "assignedDateTime": None if status == "draft" else created,
            "dueDateTime": _ts(ai * 5 + 7, 59),
        }
        if status == "draft":
            asg["submissions"] = []
            return asg
        asg["generated"] = {
            "seed": self.rng.getrandbits(48),
            "teacher": teacher,
            "index": ai,
            "points_outcomes": self.points_outcomes,
        }
        if not self.lazy:
            materialize_assignment(asg, members)
        return asg


def _assignment_name(ai: int) -> str:
    if ai == 0:
        return "Unit 1 Quiz"
    if ai == 1:
        return "Reading Log"
    name = _GRADEABLE[(ai - 1) % len(_GRADEABLE)]
    if ai - 1 >= len(_GRADEABLE):
        name = f"{name} ({ai // len(_GRADEABLE) + 1})"
    return name


def materialize_assignment(asg: Json, students: list[str]) -> list[Json]:
    """Expand an assignment's ``"generated"`` recipe into its ``"submissions"`` (idempotent)."""
    recipe = asg.pop("generated", None)
    if recipe is None:
        return asg.setdefault("submissions", [])
    rng = random.Random(recipe["seed"])
    new_id = _Ids(rng)
    grading, teacher, ai = asg.get("grading"), recipe["teacher"], recipe["index"]
    always = recipe.get("points_outcomes", "some") == "always"  # recipes older than the option: "some"
    if asg.get("assignTo") == "groups":
        subs = [
            _submission(
                new_id,
                rng,
                grading,
                {"groupId": new_id(), "userIds": students[i : i + 4]},
                teacher,
                ai,
                always,
            )
            for i in range(0, len(students), 4)
        ]
    else:
        subs = [_submission(new_id, rng, grading, {"userId": uid}, teacher, ai, always) for uid in students]
    asg["submissions"] = subs
    return subs


def class_students(cls: Json) -> list[str]:
    """The members of a class that are not its teachers, in order."""
    teachers = set(cls.get("teachers", []))
    return [m for m in cls.get("members", []) if m not in teachers]


def materialize_tenant(tenant: Json) -> Json:
    """Expand every ``"generated"`` recipe in place; returns the tenant."""
    for cls in tenant["classes"]:
        students = None
        for asg in cls.get("assignments", []):
            if "generated" in asg:
                students = students if students is not None else class_students(cls)
                materialize_assignment(asg, students)
    return tenant


def _submission(
    new_id: _Ids,
    rng: random.Random,
    grading: Json | None,
    recipient: Json,
    teacher: str,
    ai: int,
    always: bool,
) -> Json:
    r = rng.random()
    status = (
        "working"
        if r < 0.35
        else "submitted"
        if r < 0.65
        else "returned"
        if r < 0.93
        else ("excused" if r < 0.97 else "reassigned")
    )
    day = ai * 5 + 8
    sub: Json = {
        "id": new_id(),
        "status": status,
        "recipient": recipient,
        "submittedDateTime": _ts(day) if status != "working" else None,
        "returnedDateTime": _ts(day + 2, 30) if status in ("returned", "reassigned") else None,
        "excusedDateTime": _ts(day + 1) if status == "excused" else None,
    }
    when = _ts(day + 1, 15)
    feedback = {
        "id": new_id(),
        "type": "feedback",
        "feedback": "Good work" if rng.random() < 0.2 else None,
        "publishedFeedback": None,
        "lastModifiedBy": teacher,
        "lastModifiedDateTime": when,
    }
    outcomes = [feedback]
    if grading is not None and status != "excused" and rng.random() < 0.88:
        maxp = grading["maxPoints"]
        points = None if rng.random() < 0.15 else round(rng.random() * maxp * 2) / 2
        published = None
        if status in ("returned", "reassigned") and points is not None:
            published = points if rng.random() < 0.85 else max(0.0, points - 1.0)
        outcomes.append(
            {
                "id": new_id(),
                "type": "points",
                "points": points,
                "publishedPoints": published,
                "gradedBy": teacher if points is not None else None,
                "gradedDateTime": when if points is not None else None,
                "lastModifiedBy": teacher,
                "lastModifiedDateTime": when,
            }
        )
    elif grading is not None and always:  # v1.0: the points outcome exists before anyone grades
        outcomes.append(
            {
                "id": derived_id(sub["id"], "points"),
                "type": "points",
                "points": None,
                "publishedPoints": None,
                "gradedBy": None,
                "gradedDateTime": None,
                "lastModifiedBy": teacher,
                "lastModifiedDateTime": when,
            }
        )
    sub["outcomes"] = outcomes
    return sub


def parse_generate_spec(spec: str) -> dict[str, Any]:
    """``"classes=4,students=30,assignments=5,seed=1[,points_outcomes=some]"`` → keyword arguments of
    :func:`generate_tenant`."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = (x.strip() for x in part.partition("="))
        if sep and key == "points_outcomes":
            out[key] = value
            continue
        if not sep or key not in ("classes", "students", "assignments", "seed"):
            raise ValueError(
                f"bad --generate part {part!r}: use classes=N,students=M,assignments=K[,seed=S]"
                "[,points_outcomes=always|some]"
            )
        out[key] = int(value)
    return out
