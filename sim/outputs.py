"""The three files of a run: ``summary.json``, ``timeseries.parquet`` and ``events.parquet``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import CcsimError
from sim.messages import Message

EVENTS_SCHEMA = pa.schema(
    [("t", pa.float64()), ("seq", pa.int64()), ("source", pa.string()), ("kind", pa.string()),
     ("payload", pa.string())]
)  # fmt: skip
TIMESERIES_SCHEMA = pa.schema(
    [("period", pa.string()), ("begin_s", pa.float64()), ("end_s", pa.float64()),
     ("scope", pa.string()), ("metric", pa.string()), ("value", pa.float64())]
)  # fmt: skip


def prepare_out_dir(out: Path) -> Path:
    """Create ``out`` if needed and prove it is writable, before any simulation time is spent."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CcsimError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise CcsimError(f"{out}: the output folder is not writable")
    return out


EventRow = tuple[int, float, str, str, str]
"""One message as a row of ``events.parquet``: ``(seq, t, source, kind, payload as JSON)``."""


def payload_json(message: Message) -> str:
    return json.dumps(message.payload.to_dict(), sort_keys=True, separators=(",", ":"))


def event_row(message: Message) -> EventRow:
    return (message.seq, message.t, message.source, message.kind, payload_json(message))


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


class EventsWriter:
    """``events.parquet`` written while the run goes, a row group at a time, so that a long live
    run holds at most ``group_rows`` messages in memory, not its whole stream. The file appears
    under its name once :meth:`close` completes it (``.partial`` until then)."""

    def __init__(self, path: Path, group_rows: int = 20_000) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        # zstd: the detectors' readings (every reporting period) repeat lane ids and figures that
        # zstd packs 40% tighter than the default snappy.
        self._writer = pq.ParquetWriter(self._partial, EVENTS_SCHEMA, compression="zstd")
        self._rows: list[EventRow] = []
        self.group_rows = group_rows
        self.written = 0

    def add(self, rows: Iterable[EventRow]) -> None:
        """Rows (:func:`event_row`) in stream order."""
        self._rows.extend(rows)
        if len(self._rows) >= self.group_rows:
            self._write()

    def _write(self) -> None:
        if not self._rows:
            return
        seq, t, source, kind, payload = zip(*self._rows, strict=True)
        columns = {"t": t, "seq": seq, "source": source, "kind": kind, "payload": payload}
        self._writer.write_table(pa.table(columns, schema=EVENTS_SCHEMA))
        self.written += len(self._rows)
        self._rows = []

    def close(self) -> None:
        """Write what is left and put the complete file in place."""
        self._write()
        self._writer.close()
        self._partial.replace(self.path)

    def abandon(self) -> None:
        """A failed run: no events.parquet."""
        self._writer.close()
        self._partial.unlink(missing_ok=True)


def write_timeseries(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    pq.write_table(pa.Table.from_pylist(list(rows), schema=TIMESERIES_SCHEMA), path)


class RunOutputs:
    """A run's three files in ``out``, written the same way by ``ccsim run`` (and a study's runs)
    and by a live run's process (``ccsim serve``): the message stream goes to ``events.parquet``
    as it comes (:class:`EventsWriter`), so that a run of hours holds at most a row group of it
    in memory; ``timeseries.parquet`` and then ``summary.json`` are written at the end, so a
    folder with a summary holds a complete run. A run that fails leaves no events.parquet.

    Subscribe it to the run's bus, or hand it rows already made (:meth:`add`)."""

    def __init__(self, out: Path, group_rows: int = 20_000) -> None:
        self.out = prepare_out_dir(out)
        self.events = EventsWriter(self.out / "events.parquet", group_rows)

    def __call__(self, message: Message) -> None:
        self.events.add((event_row(message),))

    def add(self, rows: Iterable[EventRow]) -> None:
        """Rows (:func:`event_row`) in stream order."""
        self.events.add(rows)

    def finish(self, summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
        """The run has ended: complete events.parquet, then the time series and the summary."""
        self.events.close()
        write_timeseries(self.out / "timeseries.parquet", rows)
        write_summary(self.out / "summary.json", summary)

    def abandon(self) -> None:
        """The run failed: the partial events file goes."""
        self.events.abandon()
