"""Decoding Graph's JSON fast, and never differently from the stdlib.

Decoding ``$batch`` answers was the largest CPU cost of planning a big file (a submission listed
with ``$expand=outcomes`` is ~1.4 KB of JSON). Three layers, each falling back to the one below:

1. :func:`loads` — any JSON body: ``msgspec`` first; whatever msgspec refuses goes to
   ``json.loads``, which accepts what it always accepted (``NaN``, ``Infinity``, ``1e400``, a UTF-8
   BOM, UTF-16/32, lone surrogates) or raises the ``ValueError`` it always raised. Everything
   msgspec accepts, ``json.loads`` reads to the same value (tests/graph/test_decode_unit.py checks
   it), so the result never depends on which of the two read it.
2. :func:`envelope_answers` — a ``$batch`` answer as typed items whose ``body`` stays raw bytes
   (:class:`msgspec.Raw`), decoded per sub-request. An envelope of any other shape returns
   ``None`` and the caller reads it with :func:`loads` exactly as before.
3. :func:`submissions_page` — a typed page decoder for the submissions listing
   (``$expand=outcomes``): only the fields resolve reads, as :class:`Submission` structs (an
   outcome's feedback text typed, its rubric lists kept raw and decoded only when present). A body
   that does not fit (not an object, no ``value`` list, an item or recipient or outcome that is not
   an object, an outcome list that is not a list, a number out of range...) raises
   :class:`msgspec.DecodeError`, and the client decodes that body generically instead: that page
   then reads exactly as it did before (dicts, read by ``gradesync.graph.odata``).

Only the structure is typed: every leaf value (ids, status, points, dates, ``@odata.type``) is kept
as decoded (``Any``), so the tolerant readers still decide what a string or boolean ``points``, an
unknown outcome type, or a missing field means. The decoders hold no state between calls (msgspec's
decoders are safe to share between the client's worker threads).

The structs are ``gc=False`` (not tracked by the cyclic garbage collector) and outcomes are tuples
(which the collector untracks once they hold only untracked objects): resolve keeps a slice of
listings alive while it reads them, and the collector walking millions of tracked dicts was half the
cost of decoding them. That is safe because a decoded struct holds only decoded JSON values and is
never changed afterwards, so it can never be part of a reference cycle.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import msgspec

__all__ = [
    "FALLBACK_ERRORS",
    "Feedback",
    "Outcome",
    "Recipient",
    "Submission",
    "TypedPage",
    "envelope_answers",
    "loads",
    "submissions_page",
]

_NULL = msgspec.Raw(b"null")
# What makes a fast decoder hand over to the next one down. ValidationError is a DecodeError;
# RecursionError: msgspec and json both nest as deep as the interpreter's recursion limit allows.
FALLBACK_ERRORS = (msgspec.DecodeError, RecursionError)


def loads(content: bytes | msgspec.Raw) -> Any:
    """JSON or raise ``ValueError``; an empty body is ``None``. The same value ``json.loads`` gives."""
    if isinstance(content, bytes) and not content.strip():
        return None
    try:
        return msgspec.json.decode(content)
    except FALLBACK_ERRORS:
        return json.loads(bytes(content))  # the stdlib's wider grammar, or its ValueError


class _Answer(msgspec.Struct, gc=False):
    """One sub-response of a ``$batch`` answer; ``body`` still raw (decoded per sub-request)."""

    id: Any = None
    status: Any = None
    headers: Any = None
    body: msgspec.Raw = _NULL


class _Envelope(msgspec.Struct, gc=False):
    responses: list[_Answer]


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def envelope_answers(content: bytes) -> list[dict[str, Any]] | None:
    """The ``responses`` of a ``$batch`` answer as dicts (``id``, ``status``, ``headers``, ``body``)
    whose ``body`` is a :class:`msgspec.Raw`; ``None`` when the answer is not an object with a
    ``responses`` list of objects (the caller then decodes it whole, as before)."""
    try:
        envelope = _ENVELOPE.decode(content)
    except FALLBACK_ERRORS:
        return None
    return [
        {"id": a.id, "status": a.status, "headers": a.headers, "body": a.body} for a in envelope.responses
    ]


# ---------------------------------------------------------------- the submissions listing


class Recipient(msgspec.Struct, gc=False):
    """``recipient``; ``groupId`` is UNSET when the key is absent (its presence marks a group)."""

    odata_type: Any = msgspec.field(default=None, name="@odata.type")
    userId: Any = None
    groupId: Any = msgspec.UNSET


class _Text(msgspec.Struct, gc=False):
    content: Any = None


class Feedback(msgspec.Struct, gc=False):
    """An ``educationFeedback``: only its ``text`` is read (who and when are skipped)."""

    text: _Text | None = None

    @property
    def words(self) -> str:
        """The text, stripped ("" for none), as ``odata.feedback_text`` reads the dict."""
        content = self.text.content if self.text is not None else None
        return content.strip() if isinstance(content, str) else ""


class Outcome(msgspec.Struct, gc=False):
    """One expanded outcome. The feedback is typed (``null`` for most), the rubric's lists stay raw
    (absent or ``null`` for most) and are decoded only when present (:meth:`field`)."""

    odata_type: Any = msgspec.field(default=None, name="@odata.type")
    id: Any = None
    points: Any = None
    lastModifiedDateTime: Any = None
    feedback: Feedback | None = None
    publishedFeedback: Feedback | None = None
    rubricQualitySelectedLevels: msgspec.Raw = _NULL
    rubricQualityFeedback: msgspec.Raw = _NULL
    publishedRubricQualitySelectedLevels: msgspec.Raw = _NULL
    publishedRubricQualityFeedback: msgspec.Raw = _NULL

    def field(self, name: str) -> Any:
        """A raw field, decoded (``None`` for ``null``)."""
        raw = getattr(self, name)
        return None if raw == _NULL else loads(raw)

    def text(self, name: str) -> str:
        """The text of the ``feedback`` or ``publishedFeedback`` field, stripped ("" for none)."""
        found: Feedback | None = getattr(self, name)
        return "" if found is None else found.words


class Submission(msgspec.Struct, gc=False):
    id: Any = None
    status: Any = None
    recipient: Recipient | None = None
    outcomes: tuple[Outcome, ...] | None = None  # a tuple of untracked structs: untracked too


class _SubmissionsPage(msgspec.Struct, gc=False):
    value: list[Submission]  # required: a body without it (an entity) is read generically
    next_link: Any = msgspec.field(default=None, name="@odata.nextLink")


class TypedPage(NamedTuple):
    """A page decoded by a typed page decoder: its items and its ``@odata.nextLink`` (as decoded)."""

    items: list[Any]
    next_link: Any


_SUBMISSIONS_PAGE = msgspec.json.Decoder(_SubmissionsPage)


def submissions_page(content: bytes | msgspec.Raw) -> TypedPage:
    """A submissions listing page as :class:`Submission` items; raises one of
    :data:`FALLBACK_ERRORS` for a body of any other shape (read generically then)."""
    page = _SUBMISSIONS_PAGE.decode(content)
    return TypedPage(page.value, page.next_link)
