"""``$filter`` and ``$orderby`` expressions: the OData subset SensorThings API 1.1 names, parsed
once per request and compiled into plain Python functions of an entity.

Supported: comparison ``eq ne gt ge lt le``, logic ``and or not``, arithmetic ``add sub mul div
mod`` and unary ``-``, parentheses; literals: strings (``'it''s'``), numbers, ``true false
null``, date-times (``2024-05-01T08:00:00Z``, with an offset or ``Z``) and dates (``2024-05-01``);
paths to properties (``result``), through to-one links (``Datastream/Thing/name``), into JSON
properties (``properties/kind``, ``unitOfMeasurement/symbol``) and through to-many links
(``Datastreams/name``: true if any of them matches); the functions of :data:`FUNCTIONS`
(strings, date parts, rounding) and the geospatial ones of :mod:`.spatial` (``geo.distance``,
``st_within``...) with their literals, ``geography'POINT(-77.03 -12.12)'``.

Time comparisons with a phenomenon time that is an interval (``start/end``, end not included):
``gt t`` and ``ge t`` compare its start, ``lt t`` holds when it ends by ``t``, ``le t`` too, and
``eq t`` only for an instant. A date compared with a date-time stands for midnight UTC of that day.

``not`` negates the comparison that follows it (``not name eq 'x'`` is ``not (name eq 'x')``),
stopping at ``and``/``or``. A ``$filter`` must be a condition: an entity is kept only when it is
exactly true (null and non-boolean values drop it); an expression that cannot be true or false
(``name``, ``result add 1``) is a 400. Integer ``div`` and ``mod`` truncate toward zero, as
OData does (``-7 div 2`` is -3, ``-7 mod 2`` is -1); dividing by zero is a 400, as is a number
out of range. An expression is limited in size (:data:`MAX_TOKENS` tokens, nested at most
:data:`MAX_DEPTH` deep) so that one request cannot tie the service up.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from controlcenter.sensorthings import spatial
from controlcenter.sensorthings.model import TYPES, Entity, EntityType, TimeInterval
from controlcenter.sensorthings.store import SensorThingsStore


class QueryError(ValueError):
    """A request the service cannot answer as asked (400, or 404 with ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


MAX_TOKENS = 1000
"""Tokens in one expression (a name, a literal, an operator, a parenthesis each)."""
MAX_DEPTH = 100
"""Nesting of one expression: parentheses, ``not``, functions, operators (a chain of ``and`` or
of ``or`` counts as its logarithm, so ``id eq 1 or id eq 2 or ...`` is limited by the tokens)."""
_MAX_NUMBER = 40
"""Characters in a number literal; an integer beyond 64 bits is read as a decimal number."""
_INT64 = 2**63


# --- tokens ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})(?![\d:T])
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*')
    | (?P<geography>(?:geography|geometry)'(?:[^']|'')*')
    | (?P<name>@?[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<punct>[()/,-])
    )""",
    re.VERBOSE | re.ASCII,
)
_BLANK = re.compile(r"\s*\Z")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str, option: str = "$filter") -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if _BLANK.match(text, pos):
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"{option}: cannot read {text[pos : pos + 20]!r} at character {pos + 1}")
        if len(tokens) == MAX_TOKENS:
            raise QueryError(
                f"{option}: the expression is too long (more than {MAX_TOKENS} names, values and "
                f"operators); split the request"
            )
        kind = match.lastgroup or ""
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def parse_datetime(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    segments: tuple[str, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Literal | Path | Call | Unary | Binary

# OData's precedence, lowest first: or, and, equality, relational, additive, multiplicative.
_BINDING = {"or": 1, "and": 2, "eq": 3, "ne": 3, "gt": 4, "ge": 4, "lt": 4, "le": 4,
            "add": 5, "sub": 5, "mul": 6, "div": 6, "mod": 6}  # fmt: skip
_UNARY = 7
_KEYWORDS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str, option: str) -> None:
        self.text = text
        self.option = option
        self.tokens = tokenize(text, option)
        self.i = 0
        self.depth = 0

    def fail(self, what: str) -> QueryError:
        token = self.peek()
        where = f"at character {token.pos + 1} ({token.text!r})" if token else "at the end"
        return QueryError(f"{self.option}: {what} {where} in {self.text!r}")

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.fail("expected more")
        self.i += 1
        return token

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            raise self.fail(f"expected '{text}'")
        self.i += 1

    def too_deep(self) -> NoReturn:
        raise QueryError(
            f"{self.option}: the expression is nested too deeply (more than {MAX_DEPTH} levels of "
            f"parentheses, not, functions or operators)"
        )

    def expression(self, binding: int = 0) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.too_deep()
        try:
            return self._expression(binding)
        finally:
            self.depth -= 1

    def _expression(self, binding: int) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token is None or token.kind != "name" or token.text not in _BINDING:
                return left
            power = _BINDING[token.text]
            if power <= binding:
                return left
            self.i += 1
            if token.text in ("and", "or"):  # a chain of them: a balanced tree, not a deep one
                items = [left, self.expression(power)]
                while (following := self.peek()) is not None and following.text == token.text:
                    self.i += 1
                    items.append(self.expression(power))
                left = _balanced(token.text, items)
            else:
                left = Binary(token.text, left, self.expression(power))

    def prefix(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "number":
            return Literal(self.number(token))
        if token.kind == "datetime":
            try:
                return Literal(parse_datetime(token.text))
            except ValueError:
                raise self.fail(f"bad date-time {token.text!r}") from None
        if token.kind == "geography":
            try:
                return Literal(spatial.parse_literal(token.text))
            except spatial.GeometryError as exc:
                raise QueryError(
                    f"{self.option}: bad geography literal {_shorten(token.text)}: {exc}; expected "
                    f"Well-Known Text in longitude latitude order (degrees, WGS 84), e.g. "
                    f"geography'POINT(-77.03 -12.12)' or geography'POLYGON((lon lat, ...))'"
                ) from None
        if token.kind == "date":
            try:
                return Literal(date.fromisoformat(token.text))
            except ValueError:
                raise self.fail(f"bad date {token.text!r}") from None
        if token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.text == "-":
            return Unary("-", self.expression(_UNARY))
        if token.kind != "name":
            self.i -= 1
            raise self.fail("expected a value")
        if token.text == "not":  # OData: notExpr = "not" RWS boolCommonExpr (up to and/or)
            return Unary("not", self.expression(_BINDING["and"]))
        if token.text in _KEYWORDS:
            return Literal(_KEYWORDS[token.text])
        following = self.peek()
        if following is not None and following.text == "(":
            return self.call(token.text)
        if token.text in ("geography", "geometry") or token.text in _BINDING:
            self.i -= 1
            raise self.fail("expected a value")
        segments = [token.text]
        while (following := self.peek()) is not None and following.text == "/":
            self.i += 1
            name = self.take()
            if name.kind != "name":
                self.i -= 1
                raise self.fail("expected a property name after '/'")
            segments.append(name.text)
        return Path(tuple(segments))

    def number(self, token: Token) -> int | float:
        text = token.text
        if len(text) > _MAX_NUMBER:
            self.i -= 1
            raise self.fail(f"number longer than {_MAX_NUMBER} characters")
        if text.isdigit() and int(text) < _INT64:
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            self.i -= 1
            raise self.fail("number out of range")
        return number

    def call(self, name: str) -> Call:
        arity = FUNCTIONS[name][0] if name in FUNCTIONS else spatial.ARITY.get(name)
        if arity is None:
            known = ", ".join(sorted([*FUNCTIONS, *spatial.ARITY]))
            raise QueryError(f"{self.option}: unknown function {name}(); supported: {known}")
        self.expect("(")
        args: list[Node] = []
        if (token := self.peek()) is not None and token.text == ")":
            self.i += 1
        else:
            while True:
                args.append(self.expression())
                token = self.take()
                if token.text == ")":
                    break
                if token.text != ",":
                    self.i -= 1
                    raise self.fail("expected ',' or ')'")
        low, high = arity
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise QueryError(f"{self.option}: {name}() takes {count} arguments, not {len(args)}")
        return Call(name, tuple(args))

    def whole(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            raise self.fail("unexpected")
        if depth(node) > MAX_DEPTH:
            self.too_deep()
        return node

    def ordering(self) -> list[tuple[Node, bool]]:
        """``expr [asc|desc], ...`` -> (expression, descending) pairs."""
        items = []
        while True:
            node = self.expression()
            descending = False
            token = self.peek()
            if token is not None and token.text in ("asc", "desc"):
                descending = token.text == "desc"
                self.i += 1
            if depth(node) > MAX_DEPTH:
                self.too_deep()
            items.append((node, descending))
            token = self.peek()
            if token is None:
                return items
            if token.text != ",":
                raise self.fail("expected ',' between orderings")
            self.i += 1


def _balanced(op: str, items: list[Node]) -> Node:
    """``items[0] op items[1] op ...`` as a tree of depth log2(n), in the same order."""
    if len(items) == 1:
        return items[0]
    half = len(items) // 2
    return Binary(op, _balanced(op, items[:half]), _balanced(op, items[half:]))


def depth(node: Node) -> int:
    """How deep the tree under ``node`` goes (without recursing: it may be a long chain)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, Unary):
            stack.append((current.operand, level + 1))
        elif isinstance(current, Call):
            stack.extend((a, level + 1) for a in current.args)
        elif isinstance(current, Binary):
            stack += [(current.left, level + 1), (current.right, level + 1)]
    return deepest


_BOOLEAN_FUNCTIONS = {"substringof", "contains", "endswith", "startswith", *spatial.BOOLEAN}


def check_condition(node: Node, text: str, option: str = "$filter") -> None:
    """A 400 unless ``node`` can be true or false: a comparison, a logical operator, a function
    like ``startswith``, ``true``/``false`` or a path (kept where its value is exactly true)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Binary) and current.op in ("and", "or"):
            stack += [current.left, current.right]
        elif isinstance(current, Unary) and current.op == "not":
            stack.append(current.operand)
        elif not (
            isinstance(current, Path)
            or (isinstance(current, Binary) and current.op in _MIRROR)
            or (isinstance(current, Call) and current.name in _BOOLEAN_FUNCTIONS)
            or (isinstance(current, Literal) and isinstance(current.value, bool))
        ):
            raise QueryError(
                f"{option}: {text!r} is not a condition: expected a comparison (eq ne gt ge lt le), "
                f"and/or/not, or a function such as startswith() that is true or false"
            )


def parse_filter(text: str, option: str = "$filter") -> Node:
    if not text.strip():
        raise QueryError(f"{option}: empty expression")
    return _Parser(text, option).whole()


def parse_orderby(text: str) -> list[tuple[Node, bool]]:
    if not text.strip():
        raise QueryError("$orderby: empty")
    return _Parser(text, "$orderby").ordering()


# --- values ---------------------------------------------------------------------------------------


class Many(list[Any]):
    """The values of a path through a to-many link: a comparison holds if it holds for any."""


def _instant(value: Any, end: bool = False) -> Any:
    if isinstance(value, TimeInterval):
        return value.end if end else value.start
    return value


def _as_time(value: Any) -> Any:
    """Strings compared with times are read as ISO 8601 (lenient with quoted date-times); a date
    is midnight UTC of that day."""
    if type(value) is date:
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            return value
    return value


def _compare(op: str, a: Any, b: Any) -> bool:
    if isinstance(a, Many):
        return any(_compare(op, x, b) for x in a)
    if isinstance(b, Many):
        return any(_compare(op, a, y) for y in b)
    if a is None or b is None:
        if op in ("eq", "ne"):
            return (a is None and b is None) == (op == "eq")
        return False
    if isinstance(a, datetime | TimeInterval):
        b = _as_time(b)
    elif isinstance(b, datetime | TimeInterval):
        a = _as_time(a)
    if isinstance(a, TimeInterval) or isinstance(b, TimeInterval):
        return _compare_times(op, a, b)
    if isinstance(a, bool) != isinstance(b, bool):
        return op == "ne"
    try:
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if op == "gt":
            return bool(a > b)
        if op == "ge":
            return bool(a >= b)
        if op == "lt":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return op == "ne"  # values of different types are never equal, nor ordered


def _compare_times(op: str, a: Any, b: Any) -> bool:
    if not isinstance(a, datetime | TimeInterval) or not isinstance(b, datetime | TimeInterval):
        return op == "ne"
    a0, a1, b0, b1 = _instant(a), _instant(a, True), _instant(b), _instant(b, True)
    if op in ("eq", "ne"):
        return ((a0, a1) == (b0, b1)) == (op == "eq")
    if op == "gt":
        return bool(a0 >= b1 if b0 != b1 else a0 > b0)
    if op == "ge":
        return bool(a0 >= b1)
    if op == "lt":
        return bool(a1 <= b0 if a0 != a1 else a0 < b0)
    return bool(a1 <= b0)


def _arith(op: str, a: Any, b: Any) -> Any:
    """``a op b`` (null if either is not a number); raises ArithmeticError for a division by
    zero or a result out of range, which the compiled expression turns into a 400."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    if op == "add":
        result = a + b
    elif op == "sub":
        result = a - b
    elif op == "mul":
        result = a * b
    elif b == 0:
        raise ZeroDivisionError(f"{op} by zero")
    elif isinstance(a, float) or isinstance(b, float):
        result = a / b if op == "div" else math.fmod(a, b)
    else:  # OData: the quotient truncated toward zero, the remainder with the sign of a
        quotient = abs(a) // abs(b)
        quotient = quotient if (a < 0) == (b < 0) else -quotient
        result = quotient if op == "div" else a - b * quotient
    if isinstance(result, int):
        return result if -_INT64 <= result < _INT64 else float(result)
    if not math.isfinite(result):
        raise OverflowError(f"{op}: result out of range")
    return result


def _text(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        return fn(*args) if all(isinstance(a, str) for a in args) else None

    return apply


def _moment(fn: Callable[[datetime], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        value = _as_time(_instant(value))
        return fn(value.astimezone(UTC)) if isinstance(value, datetime) else None

    return apply


def _number(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise OverflowError("the number is out of range")
        return fn(value) if ok else None

    return apply


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _substring(s: Any, start: Any, length: Any = None) -> Any:
    if not _whole(start) or not (length is None or _whole(length)):
        raise ValueError("start and length must be whole numbers")
    if not isinstance(s, str):
        return None
    return s[start:] if length is None else s[start : start + length]


FUNCTIONS: dict[str, tuple[tuple[int, int], Callable[..., Any]]] = {
    "substringof": ((2, 2), _text(lambda p, s: p in s)),
    "contains": ((2, 2), _text(lambda s, p: p in s)),
    "endswith": ((2, 2), _text(lambda s, p: s.endswith(p))),
    "startswith": ((2, 2), _text(lambda s, p: s.startswith(p))),
    "length": ((1, 1), _text(len)),
    "indexof": ((2, 2), _text(lambda s, p: s.find(p))),
    "substring": ((2, 3), _substring),
    "tolower": ((1, 1), _text(str.lower)),
    "toupper": ((1, 1), _text(str.upper)),
    "trim": ((1, 1), _text(str.strip)),
    "concat": ((2, 2), _text(lambda a, b: a + b)),
    "year": ((1, 1), _moment(lambda t: t.year)),
    "month": ((1, 1), _moment(lambda t: t.month)),
    "day": ((1, 1), _moment(lambda t: t.day)),
    "hour": ((1, 1), _moment(lambda t: t.hour)),
    "minute": ((1, 1), _moment(lambda t: t.minute)),
    "second": ((1, 1), _moment(lambda t: t.second)),
    "fractionalseconds": ((1, 1), _moment(lambda t: t.microsecond / 1e6)),
    "date": ((1, 1), _moment(lambda t: t.date())),
    "totaloffsetminutes": ((1, 1), _moment(lambda t: 0)),
    "now": ((0, 0), lambda: datetime.now(UTC)),
    "mindatetime": ((1, 1), lambda v: _as_time(_instant(v))),
    "maxdatetime": ((1, 1), lambda v: _as_time(_instant(v, True))),
    "round": ((1, 1), _number(lambda x: math.copysign(math.floor(abs(x) + 0.5), x))),
    "floor": ((1, 1), _number(lambda x: float(math.floor(x)))),
    "ceiling": ((1, 1), _number(lambda x: float(math.ceil(x)))),
}

# --- compiling ------------------------------------------------------------------------------------

Evaluator = Callable[[Entity], Any]


def compile_node(
    node: Node, entity_type: EntityType, store: SensorThingsStore, option: str
) -> Evaluator:
    """A function giving the value of ``node`` for an entity of ``entity_type``; paths are checked
    against the data model here, so a misspelt property is a 400 before anything is read."""
    if isinstance(node, Literal):
        value = node.value
        return lambda _e: value
    if isinstance(node, Path):
        return _compile_path(node.segments, entity_type, store, option)
    if isinstance(node, Unary):
        operand = compile_node(node.operand, entity_type, store, option)
        if node.op == "not":
            return lambda e: _negate(operand(e))
        return _guarded(lambda e: _arith("sub", 0, operand(e)), option, "-")
    if isinstance(node, Call):
        if node.name in spatial.ARITY:
            _check_spatial(node, option)
            fn = spatial.evaluator(node.name)
        else:
            fn = FUNCTIONS[node.name][1]
        args = [compile_node(a, entity_type, store, option) for a in node.args]
        return _guarded(lambda e: _apply(fn, [a(e) for a in args]), option, f"{node.name}()")
    left = compile_node(node.left, entity_type, store, option)
    right = compile_node(node.right, entity_type, store, option)
    op = node.op
    if op == "and":

        def both(e: Entity) -> bool:
            a = left(e)
            if a is not True and not (type(a) is Many and _truth(a)):
                return False
            b = right(e)
            return b is True or (type(b) is Many and _truth(b))

        return both
    if op == "or":
        return lambda e: _truth(left(e)) or _truth(right(e))
    if op in ("add", "sub", "mul", "div", "mod"):
        return _guarded(lambda e: _arith(op, left(e), right(e)), option, op)
    if isinstance(node.right, Literal):
        return _against(op, left, node.right.value)
    if isinstance(node.left, Literal):
        return _against(_MIRROR[op], right, node.left.value)
    return lambda e: _compare(op, left(e), right(e))


def _check_spatial(node: Call, option: str) -> None:
    """A literal given to a geospatial function must be what it takes: a geometry (not
    ``'POINT(1 2)'`` in plain quotes), and for ``st_relate`` a DE-9IM pattern."""
    geometries = spatial.GEOMETRY_ARGUMENTS.get(node.name, 2)
    for k, arg in enumerate(node.args):
        if not isinstance(arg, Literal):
            continue
        if k < geometries and not spatial.is_geometry(arg.value):
            raise QueryError(
                f"{option}: {node.name}(): argument {k + 1} is {_shorten(repr(arg.value))}, not a "
                f"geometry: write a property (location, feature) or a literal such as "
                f"geography'POINT(-77.03 -12.12)'"
            )
        if k >= geometries:
            try:
                spatial.check_pattern(arg.value)
            except ValueError as exc:
                raise QueryError(f"{option}: {node.name}(): {exc}") from None


def _shorten(text: str, most: int = 80) -> str:
    return text if len(text) <= most else f"{text[: most - 3]}..."


_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt,
    "ge": operator.ge, "lt": operator.lt, "le": operator.le,
}  # fmt: skip


def _against(op: str, value: Evaluator, literal: Any) -> Evaluator:
    """A comparison with a literal: the common cases (a number with a number, a date-time with
    a date-time) straight away, the rest through :func:`_compare` - a full scan of the
    Observations spends its time here."""
    compare = _OPERATORS[op]
    if isinstance(literal, bool) or not isinstance(literal, int | float | datetime):
        return lambda e: _compare(op, value(e), literal)
    same = (int, float) if isinstance(literal, int | float) else (datetime,)

    def fast(e: Entity) -> bool:
        v = value(e)
        if type(v) in same:
            return compare(v, literal)
        return _compare(op, v, literal)

    return fast


def _guarded(evaluate: Evaluator, option: str, what: str) -> Evaluator:
    """``evaluate``, with a failure of the arithmetic or of a function as a 400 naming both."""

    def guarded(e: Entity) -> Any:
        try:
            return evaluate(e)
        except QueryError:
            raise
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise QueryError(f"{option}: {what}: {exc}") from None

    return guarded


def _negate(value: Any) -> bool | None:
    """``not``: true for false, false for true, null for null or a non-boolean value."""
    if isinstance(value, Many):
        value = True if any(v is True for v in value) else _all_false(value)
    if value is True:
        return False
    return True if value is False else None


def _all_false(values: list[Any]) -> bool | None:
    return False if any(v is False for v in values) else None


def condition(evaluate: Evaluator, node: Node) -> Callable[[Entity], bool | None]:
    """A filter from the evaluator of ``node``: true only where the value is exactly true. A
    comparison or a logical operator gives true, false or null already; a path or a function
    (a value, or the values through a to-many link) is checked."""
    if not isinstance(node, Path | Call):
        return evaluate

    def holds(e: Entity) -> bool:
        return _truth(evaluate(e))

    return holds


def _truth(value: Any) -> bool:
    if isinstance(value, Many):
        return any(_truth(v) for v in value)
    return value is True


def _apply(fn: Callable[..., Any], args: list[Any]) -> Any:
    many = next((a for a in args if isinstance(a, Many)), None)
    if many is None:
        return fn(*args)
    return Many(fn(*(v if a is many else a for a in args)) for v in many)


def _compile_path(
    segments: tuple[str, ...], entity_type: EntityType, store: SensorThingsStore, option: str
) -> Evaluator:
    head, rest = segments[0], segments[1:]
    if head in ("id", "@iot.id"):
        if rest:
            raise QueryError(f"{option}: 'id' has no parts ({'/'.join(segments)})")
        return lambda e: e.id
    if head in entity_type.properties:
        keys = rest
        if not keys:
            return lambda e: e.fields.get(head)
        return lambda e: _dig(e.fields.get(head), keys)
    if head in entity_type.to_one:
        target = TYPES[entity_type.to_one[head]]
        if not rest:
            raise QueryError(f"{option}: {'/'.join(segments)}: name a property of the {target.name}")
        inner = _compile_path(rest, target, store, option)
        # Thousands of Observations share a few Datastreams: within one request (an evaluator
        # lives as long as its request), each linked entity's value is worked out once.
        known: dict[int, Any] = {}
        entities = store.entities(target.plural)

        def through(e: Entity) -> Any:
            ident = e.one.get(head)
            if ident is None:
                return None
            if ident in known:
                return known[ident]
            other = entities.get(ident)
            value = known[ident] = None if other is None else inner(other)
            return value

        return through
    if head in entity_type.to_many:
        target = TYPES[entity_type.to_many[head]]
        if not rest:
            raise QueryError(f"{option}: {'/'.join(segments)}: name a property of the {target.plural}")
        each = _compile_path(rest, target, store, option)

        def across(e: Entity) -> Any:
            values = Many()
            for other in store.members(e, head):
                value = each(other)
                values.extend(value if isinstance(value, Many) else [value])
            return values

        return across
    names = ", ".join(["id", *entity_type.properties, *entity_type.navigation()])
    raise QueryError(f"{option}: {article(entity_type.name)} has no '{head}'; it has {names}")


def conjuncts(node: Node) -> list[Node]:
    """The parts of ``a and b and ...`` (the node itself when it is no conjunction)."""
    if isinstance(node, Binary) and node.op == "and":
        return [*conjuncts(node.left), *conjuncts(node.right)]
    return [node]


def through_link(node: Node, link: str) -> Node | None:
    """``node`` seen from the entity at the end of to-one ``link``: every path in it must start
    with ``link`` (``Datastream/Thing/name`` -> ``Thing/name``), and at least one must; else None."""
    if isinstance(node, Literal):
        return node
    if isinstance(node, Path):
        if node.segments[0] != link or len(node.segments) < 2:
            return None
        return Path(node.segments[1:])
    if isinstance(node, Unary):
        operand = through_link(node.operand, link)
        return None if operand is None else Unary(node.op, operand)
    parts = [
        through_link(n, link) for n in (node.args if isinstance(node, Call) else (node.left, node.right))
    ]
    if any(p is None for p in parts):
        return None
    if isinstance(node, Call):
        return Call(node.name, tuple(p for p in parts if p is not None))
    left, right = parts
    assert left is not None and right is not None
    return Binary(node.op, left, right)


def _has_path(node: Node) -> bool:
    if isinstance(node, Path):
        return True
    if isinstance(node, Unary):
        return _has_path(node.operand)
    if isinstance(node, Call):
        return any(_has_path(a) for a in node.args)
    if isinstance(node, Binary):
        return _has_path(node.left) or _has_path(node.right)
    return False


def link_condition(node: Node, link: str) -> Node | None:
    """The part of filter ``node`` that only looks through ``link`` (``Datastream/...``), as a
    condition on the linked entity; None if there is none. An entity passes ``node`` only if its
    linked entity passes this, so an index by link can pick the candidates."""
    parts = [p for c in conjuncts(node) if _has_path(c) and (p := through_link(c, link)) is not None]
    if not parts:
        return None
    condition = parts[0]
    for part in parts[1:]:
        condition = Binary("and", condition, part)
    return condition


def article(name: str) -> str:
    return f"an {name}" if name[0] in "AEIOU" else f"a {name}"


def _dig(value: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isascii() and key.isdecimal() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """Orders values of mixed types: nulls first, then numbers, strings, times, the rest."""
    value = _instant(value)
    if isinstance(value, Many):
        value = value[0] if value else None
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, datetime):
        return (4, value.timestamp())
    if isinstance(value, date):
        return (4, datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    return (5, str(value))
