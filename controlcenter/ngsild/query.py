"""The ``q`` filter of ``GET /ngsi-ld/v1/entities``: the subset of NGSI-LD's query language
(ETSI GS CIM 009, clause 4.9) that ccsim answers, parsed into a tree and evaluated on an
entity's key-values.

Grammar (``;`` is AND and binds tighter than ``|``, OR; parentheses group)::

    query      = or
    or         = and *( "|" and )
    and        = term *( ";" term )
    term       = "(" or ")" / comparison
    comparison = path [ operator value ]           ; a path alone: the attribute exists
    path       = name *( "[" name "]" )            ; members of a structured value: data[rule]
    operator   = "==" / "!=" / ">=" / ">" / "<=" / "<" / "~=" / "!~="
    value      = scalar [ ".." scalar ]            ; a range, with == and != only
               / scalar 1*( "," scalar )           ; any of a list, with == and != only
    scalar     = '"' text '"' / number / true / false / date-time (unquoted, RFC 3339)

``~=`` matches a regular expression (a quoted string) anywhere in a text value. A comparison on
an attribute the entity lacks is false, whatever the operator; on a list value (``category``) it
holds if it holds for any element (``!=``: for none). Numbers compare as numbers, date-times as
instants, texts as texts; a value of another type never matches. Not supported: sub-attribute
paths (``attr.sub``), geo-queries and language maps - they are refused with a clear error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from sim.errors import CcsimError


class QueryError(CcsimError):
    """A ``q`` the grammar does not accept (HTTP 400 BadRequestData)."""


Scalar = str | float | bool | dt.datetime
_MISSING = object()

MAX_PATTERN = 256
"""Longest regular expression a query may give (idPattern, ~=)."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def compile_pattern(text: str, where: str) -> Any:
    """A query's regular expression, compiled by RE2: matching takes time linear in the text,
    so no pattern can hang the server (Python's backtracking ``re`` can be made to run for
    hours by a dozen characters). :class:`QueryError` names ``where`` and what is wrong."""
    if len(text) > MAX_PATTERN:
        raise QueryError(f"{where}: a regular expression of at most {MAX_PATTERN} characters")
    try:
        return re2.compile(text, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise QueryError(f"{where}: bad regular expression {text!r}: {detail}") from None


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|>=|<=|!~=|~=|>|<)
      | (?P<range>\.\.)
      | (?P<punct>[;|(),\[\]])
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<number>-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?(?!\w|\.\d))
      | (?P<name>[A-Za-z_@][A-Za-z0-9_:@-]*)
      | (?P<dot>\.)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(q: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(q):
        if q[pos:].strip() == "":
            break
        match = _TOKEN.match(q, pos)
        if match is None or match.lastgroup is None:
            raise QueryError(f"q: unexpected {q[pos:].strip()[:20]!r} at character {pos + 1}")
        kind = match.lastgroup
        tokens.append(_Tok(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def _to_datetime(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


# --- the tree ---------------------------------------------------------------------------------------

Values = dict[str, Any]


class Expr:
    def holds(self, values: Values) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Or(Expr):
    parts: tuple[Expr, ...]

    def holds(self, values: Values) -> bool:
        return any(p.holds(values) for p in self.parts)


@dataclass(frozen=True)
class And(Expr):
    parts: tuple[Expr, ...]

    def holds(self, values: Values) -> bool:
        return all(p.holds(values) for p in self.parts)


@dataclass(frozen=True)
class Comparison(Expr):
    path: tuple[str, ...]
    op: str | None = None
    """None: the attribute exists."""
    values: tuple[Scalar, ...] = ()
    """One value; for == / != any of a list; a range is (low, high) with ``range`` set."""
    range: bool = False
    regex: Any = None
    """The compiled pattern of ~= / !~=."""

    def _lookup(self, values: Values) -> Any:
        value: Any = values.get(self.path[0], _MISSING)
        for member in self.path[1:]:
            value = value.get(member, _MISSING) if isinstance(value, dict) else _MISSING
        return value

    def holds(self, values: Values) -> bool:
        value = self._lookup(values)
        if value is _MISSING or value is None:
            return False
        if self.op is None:
            return True
        items = value if isinstance(value, list) else [value]
        if self.op in ("!=", "!~="):
            positive = "==" if self.op == "!=" else "~="
            return not any(self._test(positive, item) for item in items)
        return any(self._test(self.op, item) for item in items)

    def _test(self, op: str, item: Any) -> bool:
        if op == "~=":
            return isinstance(item, str) and self.regex.search(item) is not None
        if self.range:
            low, high = (_comparable(item, v) for v in self.values)
            return low is not None and high is not None and low[1] <= low[0] <= high[1]
        for target in self.values:
            pair = _comparable(item, target)
            if pair is not None and _COMPARE[op](pair[0], pair[1]):
                return True
        return False


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
}


def _comparable(item: Any, target: Scalar) -> tuple[Any, Any] | None:
    """(item, target) as values of one type that compare, or None if they do not."""
    if isinstance(target, bool):
        return (item, target) if isinstance(item, bool) else None
    if isinstance(target, float):
        if isinstance(item, int | float) and not isinstance(item, bool):
            return float(item), target
        return None
    if isinstance(target, dt.datetime):
        moment = _to_datetime(item) if isinstance(item, str) else None
        return (moment, target) if moment is not None else None
    return (item, target) if isinstance(item, str) else None


# --- the parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, q: str) -> None:
        self.q = q
        self.tokens = _tokens(q)
        self.i = 0

    def peek(self, *texts: str) -> _Tok | None:
        if self.i < len(self.tokens) and (not texts or self.tokens[self.i].text in texts):
            return self.tokens[self.i]
        return None

    def take(self) -> _Tok:
        if self.i >= len(self.tokens):
            raise QueryError(f"q: {self.q!r} ends too early")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Tok, expected: str) -> QueryError:
        return QueryError(f"q: {tok.text!r} at character {tok.pos + 1}: expected {expected}")

    def parse(self) -> Expr:
        if not self.tokens:
            raise QueryError("q: empty query")
        expr = self.or_()
        if self.i < len(self.tokens):
            raise self.fail(self.tokens[self.i], "';' (and), '|' (or) or the end of the query")
        return expr

    def or_(self) -> Expr:
        parts = [self.and_()]
        while self.peek("|"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Expr:
        parts = [self.term()]
        while self.peek(";"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def term(self) -> Expr:
        if self.peek("("):
            self.take()
            expr = self.or_()
            tok = self.take()
            if tok.text != ")":
                raise self.fail(tok, "')'")
            return expr
        return self.comparison()

    def comparison(self) -> Comparison:
        tok = self.take()
        if tok.kind != "name":
            raise self.fail(tok, "an attribute name")
        path = [tok.text]
        while self.peek("["):
            self.take()
            member = self.take()
            if member.kind != "name":
                raise self.fail(member, "a member name")
            closing = self.take()
            if closing.text != "]":
                raise self.fail(closing, "']'")
            path.append(member.text)
        dot = self.peek()
        if dot is not None and dot.kind == "dot":
            raise QueryError(
                f"q: sub-attribute paths ({tok.text}.…) are not supported; for a member of a "
                f"structured value write {tok.text}[member]"
            )
        op_tok = self.peek()
        if op_tok is None or op_tok.kind != "op":
            return Comparison(tuple(path))
        op = self.take().text
        if op in ("~=", "!~="):
            quoted = self.peek()
            if quoted is None or quoted.kind != "string":
                raise QueryError(f"q: {op} takes a regular expression in double quotes")
            pattern = self.take().text[1:-1]  # as written: its backslashes are the pattern's
            regex = compile_pattern(pattern, f"q: {op}")
            return Comparison(tuple(path), op, (pattern,), regex=regex)
        first = self.scalar()
        if self.peek(".."):
            self.take()
            if op not in ("==", "!="):
                raise QueryError(f"q: a range (a..b) goes with == or !=, not {op}")
            return Comparison(tuple(path), op, (first, self.scalar()), range=True)
        values = [first]
        while self.peek(","):
            self.take()
            values.append(self.scalar())
        if len(values) > 1 and op not in ("==", "!="):
            raise QueryError(f"q: a list of values goes with == or !=, not {op}")
        return Comparison(tuple(path), op, tuple(values))

    def scalar(self) -> Scalar:
        tok = self.take()
        if tok.kind == "string":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "number":
            return float(tok.text)
        if tok.kind == "datetime":
            moment = _to_datetime(tok.text)
            if moment is None:
                raise self.fail(tok, "a valid date-time")
            return moment
        if tok.kind == "name" and tok.text in ("true", "false"):
            return tok.text == "true"
        raise self.fail(tok, 'a value: a number, true, false, a date-time or a "quoted text"')


def parse_q(q: str) -> Expr:
    """The tree of a ``q`` expression; :class:`QueryError` names what is wrong and where."""
    return _Parser(q).parse()
