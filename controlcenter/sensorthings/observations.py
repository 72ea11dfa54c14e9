"""The Observations of the service, kept column by column.

A run makes Observations without end (the district about 22,000 a simulated hour), and as
:class:`~controlcenter.sensorthings.model.Entity` objects - a dict of fields, a dict of links, a
:class:`TimeInterval` of two datetimes, a parameters dict with its own strings - each took about
990 bytes: half a gigabyte at the default bound. Here one takes under 100: its Datastream and
FeatureOfInterest ids, its phenomenon time (microseconds since the epoch), its result and the
numbers of its parameters sit in typed arrays; a parameter's text is kept once for all the
Observations that have it, and the few results that are not numbers as they are. A query
reads an Observation in place (:class:`ObservationRow`), each property decoded when asked,
equal in value and type to what was written.

Observations are only ever appended with the next id and evicted oldest first, so their ids run
without gaps from :attr:`ObservationTable.first`, and an id's row is found by subtraction.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, ValuesView
from datetime import UTC, datetime, timedelta
from typing import Any

from controlcenter.sensorthings.model import TYPES, Entity, IdList, TimeInterval

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXACT = 2**53
"""Whole numbers up to this size are exact as doubles."""
COMPACT_AFTER = 4096
"""Evicted rows are dropped from the arrays once there are this many, and half of them."""

_INTERVAL = 1
_FLOAT, _INT, _OBJECT = 0, 2, 4  # the result's kind, in the flags byte
_KIND = _INT | _OBJECT
_OBSERVATION = TYPES["Observations"]
_NO_MANY: dict[str, IdList] = {}
"""Every Observation's to-many links: it has none (shared, never written)."""


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
        return ObservationRow(self, ident)

    def get(self, ident: int, default: Any = None) -> Any:
        """The Observation ``ident``, or ``default`` (a query's scan calls this for every id)."""
        if type(ident) is int and self.first <= ident < self.first + len(self._flags) - self._head:
            return ObservationRow(self, ident)
        return default

    def values(self) -> ValuesView[Entity]:
        return _Values(self)

    def _rows(self) -> Iterator[Entity]:
        return (ObservationRow(self, ident) for ident in range(self.first, self.next_id))

    def copy(self, ident: int) -> Entity:
        """The Observation ``ident`` as an Entity of its own (a dict of fields): unlike the rows
        the mapping gives, it stays as it is when the Observation is evicted."""
        row = self._row(ident)
        return Entity(_OBSERVATION, ident, self._fields(row, ident), self._links(row), _NO_MANY)

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

    def _row(self, ident: int) -> int:
        row = self._head + ident - self.first
        if not self._head <= row < len(self._flags):
            raise KeyError(f"Observation {ident} is no longer kept (the oldest go first)")
        return row

    def _links(self, row: int) -> dict[str, int]:
        return {"Datastream": self._datastream[row], "FeatureOfInterest": self._feature[row]}

    def _field(self, row: int, ident: int, name: str, default: Any = None) -> Any:
        """One property of the Observation at ``row`` (``default`` if it has none such)."""
        if name == "result":
            kind = self._flags[row] & _KIND
            if kind == _FLOAT:
                return self._result[row]
            return int(self._result[row]) if kind == _INT else self._objects[ident]
        if name == "phenomenonTime":
            end = _moment(self._end[row])
            return TimeInterval(_moment(self._start[row]), end) if self._flags[row] & _INTERVAL else end
        if name == "resultTime":
            return _moment(self._end[row])
        if name == "parameters":
            return self._parameters(row, ident, default)
        return default

    def _parameters(self, row: int, ident: int, default: Any) -> Any:
        shape = self._shape[row]
        if shape == -1:
            return default
        if shape == -2:
            return dict(self._loose[ident])
        at = self._numbers_at[row] - self._numbers_dropped
        out: dict[str, Any] = {}
        for name, value in self._shapes[shape]:
            if value is _FLOAT_SLOT:
                out[name] = self._numbers[at]
                at += 1
            elif value is _INT_SLOT:
                out[name] = int(self._numbers[at])
                at += 1
            else:
                out[name] = value
        return out

    def _names(self, row: int) -> tuple[str, ...]:
        return _ALWAYS if self._shape[row] == -1 else _WITH_PARAMETERS

    def _fields(self, row: int, ident: int) -> dict[str, Any]:
        return {name: self._field(row, ident, name) for name in self._names(row)}


class _Values(ValuesView[Entity]):
    """The table's values, as any mapping's (counted, walked again), each read in place."""

    _mapping: ObservationTable

    def __iter__(self) -> Iterator[Entity]:
        return self._mapping._rows()


class ObservationRow(Entity, Mapping[str, Any]):
    """An Observation read in place from its :class:`ObservationTable`: the entity, and its own
    ``fields`` (read-only). Made with nothing but its id, and each property read from the
    columns when asked, so that a query's scan - one row per Observation - builds no dict,
    datetime or parameters it does not look at. Valid while the Observation is kept (a
    KeyError once it is evicted): the rows of one request are read before the store changes
    (:meth:`ObservationTable.copy` gives an entity that outlives its row)."""

    __slots__ = ("_table",)

    def __init__(self, table: ObservationTable, ident: int) -> None:  # not Entity's
        self._table = table
        self.type = _OBSERVATION
        self.id = ident

    @property
    def fields(self) -> Mapping[str, Any]:  # type: ignore[override]
        return self

    @property
    def one(self) -> dict[str, int]:  # type: ignore[override]
        return self._table._links(self._table._row(self.id))

    @property
    def many(self) -> dict[str, IdList]:  # type: ignore[override]
        return _NO_MANY

    def get(self, name: str, default: Any = None) -> Any:
        table, ident = self._table, self.id
        row = table._head + ident - table.first  # _row(), inline: a scan comes here per entity
        if row < table._head or row >= len(table._flags):
            row = table._row(ident)  # raises
        return table._field(row, ident, name, default)

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._table._names(self._table._row(self.id))

    def __iter__(self) -> Iterator[str]:
        return iter(self._table._names(self._table._row(self.id)))

    def __len__(self) -> int:
        return len(self._table._names(self._table._row(self.id)))

    # an entity: the same object or not (as Entity), not a mapping equal by its items
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"ObservationRow({self.id}, {dict(self)!r})"


_WITH_PARAMETERS = ("phenomenonTime", "result", "resultTime", "parameters")
_ALWAYS = ("phenomenonTime", "result", "resultTime")
