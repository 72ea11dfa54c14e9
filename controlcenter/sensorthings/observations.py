"""The Observations of the service, kept column by column.

A run makes Observations without end (the district about 22,000 a simulated hour), and as
:class:`~controlcenter.sensorthings.model.Entity` objects - a dict of fields, a dict of links, a
:class:`TimeInterval` of two datetimes, a parameters dict with its own strings - each took about
990 bytes: half a gigabyte at the default bound. Here one takes under 100: its Datastream and
FeatureOfInterest ids, its phenomenon time (microseconds since the epoch), its result and the
numbers of its parameters sit in typed arrays; a parameter's text is kept once for all the
Observations that have it, and the few results that are not numbers as they are. An Entity is
made when a query reads one, and is equal in every field to the one that was written.

Observations are only ever appended with the next id and evicted oldest first, so their ids run
without gaps from :attr:`ObservationTable.first`, and an id's row is found by subtraction.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, ValuesView
from datetime import UTC, datetime, timedelta
from typing import Any

from controlcenter.sensorthings.model import TYPES, Entity, TimeInterval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXACT = 2**53
"""Whole numbers up to this size are exact as doubles."""
COMPACT_AFTER = 4096
"""Evicted rows are dropped from the arrays once there are this many, and half of them."""

_INTERVAL = 1
_FLOAT, _INT, _OBJECT = 0, 2, 4  # the result's kind, in the flags byte
_KIND = _INT | _OBJECT
_OBSERVATION = TYPES["Observations"]


class _Slot:
    """Where a number stood in a parameters dict (the number itself is in a column)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind.__name__}>"


_FLOAT_SLOT, _INT_SLOT = _Slot(float), _Slot(int)
Shape = tuple[tuple[str, Any], ...]
"""A parameters dict with its numbers taken out: ((name, value or slot), ...)."""


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"phenomenonTime {moment.isoformat()}: expected a time with its zone")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _number_kind(value: Any) -> int | None:
    """_FLOAT or _INT for a number a double holds exactly (bool is not a number here)."""
    if type(value) is float:
        return _FLOAT
    if type(value) is int and -EXACT <= value <= EXACT:
        return _INT
    return None


class ObservationTable(Mapping[int, Entity]):
    """The kept Observations by id, in id order (a read-only mapping; :meth:`append` and
    :meth:`evict_oldest` change it)."""

    def __init__(self) -> None:
        self.first = 1
        """The id of the oldest kept Observation (the next one's when none is kept)."""
        self._head = 0
        """The row of :attr:`first`: rows before it are evicted, not yet dropped."""
        self._datastream = array("q")
        self._feature = array("q")
        self._start = array("q")
        self._end = array("q")
        self._result = array("d")
        self._flags = bytearray()
        self._shape = array("l")
        """Index in :attr:`_shapes` of the row's parameters; -1: none."""
        self._numbers_at = array("q")
        """Where the row's parameter numbers start in :attr:`_numbers`, counting the numbers
        dropped (they end where the next row's start)."""
        self._numbers = array("d")
        self._numbers_dropped = 0
        self._objects: dict[int, Any] = {}
        """Results that are not numbers, by id."""
        self._shapes: list[Shape] = []
        self._shape_index: dict[Shape, int] = {}
        self._shape_uses = array("q")
        """How many kept rows have each shape: one no row has any more is dropped (a text that
        is new with every Observation must not outlive it), and its index given to the next."""
        self._free_shapes: list[int] = []
        self._loose: dict[int, dict[str, Any]] = {}
        """Parameters that cannot be shared (a name that is not text, a value that is not text, a
        number, true, false or null), by id."""

    # --- the mapping -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._flags) - self._head

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + len(self)))

    @property
    def parameter_shapes(self) -> int:
        """How many parameter layouts (names and texts, numbers taken out) are kept, shared by
        the Observations that have them."""
        return len(self._shape_index)

    def __reversed__(self) -> Iterator[int]:
        return reversed(range(self.first, self.first + len(self)))

    def __contains__(self, ident: object) -> bool:
        return type(ident) is int and self.first <= ident < self.first + len(self)

    def __getitem__(self, ident: int) -> Entity:
        if not self.__contains__(ident):
            raise KeyError(ident)
        return self._entity(ident, self._head + ident - self.first)

    def values(self) -> ValuesView[Entity]:
        return _Values(self)

    def _entities(self) -> Iterator[Entity]:
        head, first = self._head, self.first
        return (self._entity(first + row - head, row) for row in range(head, len(self._flags)))

    # --- writing ---------------------------------------------------------------------------------

    @property
    def next_id(self) -> int:
        return self.first + len(self)

    def append(self, datastream: int, feature: int, phenomenon: datetime | TimeInterval,
               result: Any, parameters: dict[str, Any] | None) -> int:  # fmt: skip
        """Keep a new Observation (its result time is the end of its phenomenon time); its id."""
        ident = self.next_id
        if isinstance(phenomenon, TimeInterval):
            start, end, flags = _micros(phenomenon.start), _micros(phenomenon.end), _INTERVAL
        else:
            start = end = _micros(phenomenon)
            flags = 0
        kind = _number_kind(result)
        if kind is None:
            self._objects[ident] = result
            kind, result = _OBJECT, 0.0
        numbers_at = self._numbers_end()
        shape = -1 if parameters is None else self._add_parameters(ident, parameters)
        self._datastream.append(datastream)
        self._feature.append(feature)
        self._start.append(start)
        self._end.append(end)
        self._result.append(result)
        self._shape.append(shape)
        self._numbers_at.append(numbers_at)
        self._flags.append(flags | kind)  # last: the row exists once this is in
        return ident

    def _add_parameters(self, ident: int, parameters: dict[str, Any]) -> int:
        items: list[tuple[str, Any]] = []
        numbers: list[float] = []
        for name, value in parameters.items():
            # Shapes are found by equality, so types are checked exactly: 1, 1.0 and True are
            # one key to a dict, and "a" equals StrEnum "a"; those stay as they are.
            kind = _number_kind(value)
            if type(name) is str and kind is not None:
                items.append((name, _INT_SLOT if kind == _INT else _FLOAT_SLOT))
                numbers.append(value)
            elif type(name) is str and (value is None or type(value) in (str, bool)):
                items.append((name, value))
            else:
                self._loose[ident] = dict(parameters)
                return -2
        self._numbers.extend(numbers)
        shape = tuple(items)
        index = self._shape_index.get(shape)
        if index is None:
            if self._free_shapes:
                index = self._free_shapes.pop()
                self._shapes[index] = shape
            else:
                index = len(self._shapes)
                self._shapes.append(shape)
                self._shape_uses.append(0)
            self._shape_index[shape] = index
        self._shape_uses[index] += 1
        return index

    def evict_oldest(self) -> tuple[int, int, int]:
        """Drop the oldest Observation: (its id, its Datastream's id, its FeatureOfInterest's)."""
        if not len(self):
            raise KeyError("no Observation to evict")
        row, ident = self._head, self.first
        evicted = (ident, self._datastream[row], self._feature[row])
        self._objects.pop(ident, None)
        self._loose.pop(ident, None)
        shape = self._shape[row]
        if shape >= 0:
            self._shape_uses[shape] -= 1
            if not self._shape_uses[shape]:
                del self._shape_index[self._shapes[shape]]
                self._shapes[shape] = ()
                self._free_shapes.append(shape)
        self._head += 1
        self.first += 1
        if self._head >= COMPACT_AFTER and 2 * self._head >= len(self._flags):
            self._compact()
        return evicted

    def _compact(self) -> None:
        head = self._head
        kept_from = self._numbers_at[head] if head < len(self._flags) else self._numbers_end()
        cut = kept_from - self._numbers_dropped
        for column in (self._datastream, self._feature, self._start, self._end, self._result,
                       self._shape, self._numbers_at):  # fmt: skip
            del column[:head]
        del self._flags[:head]
        del self._numbers[:cut]
        self._numbers_dropped += cut
        self._head = 0

    def _numbers_end(self) -> int:
        return len(self._numbers) + self._numbers_dropped

    # --- reading ---------------------------------------------------------------------------------

    def _entity(self, ident: int, row: int) -> Entity:
        flags = self._flags[row]
        kind = flags & _KIND
        if kind == _OBJECT:
            result = self._objects[ident]
        elif kind == _INT:
            result = int(self._result[row])
        else:
            result = self._result[row]
        shape = self._shape[row]
        parameters: Shape | dict[str, Any] | None = None
        numbers: array[float] | None = None
        if shape == -2:
            parameters = self._loose[ident]
        elif shape >= 0:
            parameters = self._shapes[shape]
            at = self._numbers_at[row] - self._numbers_dropped
            end = self._numbers_at[row + 1] if row + 1 < len(self._flags) else self._numbers_end()
            numbers = self._numbers[at : end - self._numbers_dropped]
        start = self._start[row] if flags & _INTERVAL else None
        fields = Fields(start, self._end[row], result, parameters, numbers)
        links = {"Datastream": self._datastream[row], "FeatureOfInterest": self._feature[row]}
        return Entity(_OBSERVATION, ident, fields, links)


class _Values(ValuesView[Entity]):
    """The table's values, as any mapping's (counted, walked again), each row read once."""

    _mapping: ObservationTable

    def __iter__(self) -> Iterator[Entity]:
        return self._mapping._entities()


class Fields(Mapping[str, Any]):
    """An Observation's properties, as :class:`Entity` ``fields``: made from its row's values
    when read, so that a filter on ``result`` over a hundred thousand Observations does not
    build a hundred thousand datetimes and parameter dicts. It holds copies of the row's
    values: an eviction meanwhile does not change it. Read-only."""

    __slots__ = ("_end", "_numbers", "_parameters", "_result", "_start")

    def __init__(
        self,
        start: int | None,
        end: int,
        result: Any,
        parameters: Shape | dict[str, Any] | None,
        numbers: array[float] | None,
    ) -> None:
        self._start = start
        self._end = end
        self._result = result
        self._parameters = parameters
        self._numbers = numbers

    def get(self, name: str, default: Any = None) -> Any:
        if name == "result":
            return self._result
        if name == "phenomenonTime":
            end = _moment(self._end)
            return end if self._start is None else TimeInterval(_moment(self._start), end)
        if name == "resultTime":
            return _moment(self._end)
        if name == "parameters" and self._parameters is not None:
            return self._decoded()
        return default

    def _decoded(self) -> dict[str, Any]:
        parameters = self._parameters
        if isinstance(parameters, dict):
            return dict(parameters)
        assert parameters is not None and self._numbers is not None
        numbers = iter(self._numbers)
        out: dict[str, Any] = {}
        for name, value in parameters:
            if value is _FLOAT_SLOT:
                out[name] = next(numbers)
            elif value is _INT_SLOT:
                out[name] = int(next(numbers))
            else:
                out[name] = value
        return out

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in _ALWAYS or (name == "parameters" and self._parameters is not None)

    def __iter__(self) -> Iterator[str]:
        yield from _ALWAYS
        if self._parameters is not None:
            yield "parameters"

    def __len__(self) -> int:
        return len(_ALWAYS) + (self._parameters is not None)

    def __repr__(self) -> str:
        return repr(dict(self))


_ALWAYS = ("phenomenonTime", "result", "resultTime")
