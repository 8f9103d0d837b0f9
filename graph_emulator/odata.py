"""The small OData query subset the emulator understands: ``$filter`` (eq/ne, and/or, parentheses),
``$select``, ``$expand``, ``$top`` and an opaque ``$skiptoken``."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]


class QueryError(ValueError):
    """A query option Graph would refuse with 400; ``inner`` is the innerError code."""

    def __init__(self, message: str, inner: str = "invalidQuery") -> None:
        super().__init__(message)
        self.inner = inner


_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w/])"
    r"|(?P<word>[A-Za-z_@][\w/.@]*))"
)

Predicate = Callable[[Callable[[str], Any]], bool]


def _tokenize(text: str) -> list[tuple[str, Any]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(
                f"Invalid filter clause: syntax error at position {pos} in '{text}'.", "invalidFilter"
            )
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)  # type: ignore[arg-type]
        if kind == "str":
            out.append(("lit", val[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("lit", float(val) if "." in val else int(val)))
        elif kind == "word" and val in ("true", "false", "null"):
            out.append(("lit", {"true": True, "false": False, "null": None}[val]))
        else:
            out.append((kind or "", val))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_filter(text: str, fields: set[str]) -> Predicate:
    """Compile a ``$filter`` into a predicate over a getter ``get(path) -> value``."""
    toks = _tokenize(text)
    i = 0

    def peek() -> tuple[str, Any] | None:
        return toks[i] if i < len(toks) else None

    def take() -> tuple[str, Any]:
        nonlocal i
        if i >= len(toks):
            raise QueryError(f"Invalid filter clause: unexpected end of '{text}'.", "invalidFilter")
        i += 1
        return toks[i - 1]

    def expr() -> Predicate:
        left = term()
        while (t := peek()) and t == ("word", "or"):
            take()
            right = term()
            left = _or(left, right)
        return left

    def term() -> Predicate:
        left = factor()
        while (t := peek()) and t == ("word", "and"):
            take()
            right = factor()
            left = _and(left, right)
        return left

    def factor() -> Predicate:
        t = take()
        if t[0] == "lp":
            inner = expr()
            if take()[0] != "rp":
                raise QueryError(f"Invalid filter clause: missing ')' in '{text}'.", "invalidFilter")
            return inner
        if t[0] != "word":
            raise QueryError(f"Invalid filter clause: expected a property in '{text}'.", "invalidFilter")
        prop = t[1]
        if prop.split("/")[0] not in fields:
            raise QueryError(f"Could not find a property named '{prop}' on this type.", "invalidFilter")
        op = take()
        if op[0] != "word" or op[1] not in ("eq", "ne"):
            raise QueryError(
                f"Invalid filter clause: only 'eq' and 'ne' are supported here, got '{op[1]}'.",
                "invalidFilter",
            )
        lit = take()
        if lit[0] != "lit":
            raise QueryError(
                f"Invalid filter clause: expected a literal after '{prop} {op[1]}'.", "invalidFilter"
            )
        value = lit[1]
        if op[1] == "eq":
            return lambda g: _eq(g(prop), value)
        return lambda g: not _eq(g(prop), value)

    pred = expr()
    if i != len(toks):
        raise QueryError(f"Invalid filter clause: unexpected '{toks[i][1]}' in '{text}'.", "invalidFilter")
    return pred


def _or(a: Predicate, b: Predicate) -> Predicate:
    return lambda g: a(g) or b(g)


def _and(a: Predicate, b: Predicate) -> Predicate:
    return lambda g: a(g) and b(g)


def _eq(actual: Any, expected: Any) -> bool:
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    return actual == expected


def getter(obj: Json, aliases: dict[str, Callable[[Json], Any]] | None = None) -> Callable[[str], Any]:
    def get(path: str) -> Any:
        if aliases and path in aliases:
            return aliases[path](obj)
        cur: Any = obj
        for part in path.split("/"):
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part)
        return cur

    return get


def parse_top(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        top = int(value)
    except ValueError:
        raise QueryError(f"Invalid value '{value}' for $top: a positive integer is expected.") from None
    if top < 1:
        raise QueryError(f"Invalid value '{value}' for $top: a positive integer is expected.")
    return top


def parse_list(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


def encode_skiptoken(state: Json) -> str:
    raw = json.dumps(state, separators=(",", ":")).encode()
    return "RFNwdAIA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str) -> Json:
    try:
        if not token.startswith("RFNwdAIA"):
            raise ValueError
        body = token[8:]
        state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(state, dict) or not isinstance(state.get("o"), int):
            raise ValueError
    except ValueError:
        raise QueryError(
            "The $skiptoken is not valid: follow @odata.nextLink as given.", "invalidSkipToken"
        ) from None
    return state
