"""controlcenter/replay.py: a run's events.parquet read for ``ccsim replay``; a file that is not
the events of a run is refused naming it, before anything is served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from controlcenter.replay import load_run
from sim.errors import CcsimError
from sim.outputs import EVENTS_SCHEMA

STARTED = json.dumps({"scenario": "single", "controller": "fixed", "seed": 1, "begin_s": 0.0})


def _write(run_dir: Path, columns: dict[str, list[Any]], schema: pa.Schema | None = None) -> Path:
    run_dir.mkdir(exist_ok=True)
    path = run_dir / "events.parquet"
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


def _good() -> dict[str, list[Any]]:
    return {
        "t": [0.0, 1.0, 2.0],
        "seq": [1, 2, 3],
        "source": ["run", "monitor", "monitor"],
        "kind": ["run.started", "vehicles.departed", "vehicles.arrived"],
        "payload": [STARTED, '{"ids":["a"]}', '{"ids":["a"]}'],
    }


def test_the_events_of_a_run_are_read_in_stream_order(tmp_path: Path) -> None:
    _write(tmp_path, _good(), EVENTS_SCHEMA)
    run = load_run(tmp_path)
    assert [row[0] for row in run.rows] == [1, 2, 3] and run.end_t == 2.0


def test_a_column_of_the_wrong_type_is_refused_naming_the_file_and_column(tmp_path: Path) -> None:
    columns = _good()
    columns["t"] = ["0", "1", "later"]  # text, not simulation times
    path = _write(tmp_path, columns)
    with pytest.raises(CcsimError) as caught:
        load_run(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "'t'" in message and "double" in message


def test_a_missing_value_is_refused_naming_the_file_and_column(tmp_path: Path) -> None:
    columns = _good()
    columns["seq"] = [1, None, 3]
    path = _write(tmp_path, columns, EVENTS_SCHEMA)
    with pytest.raises(CcsimError) as caught:
        load_run(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "'seq'" in message and "empty" in message


def test_a_payload_that_is_not_a_json_object_is_refused_naming_the_file_and_message(
    tmp_path: Path,
) -> None:
    """Found at load, not when the replay reaches it (the playing thread died there, and the
    control room stopped without a word)."""
    columns = _good()
    columns["payload"][2] = '{"ids": ["a"'  # cut short
    path = _write(tmp_path, columns, EVENTS_SCHEMA)
    with pytest.raises(CcsimError) as caught:
        load_run(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "seq 3" in message and "vehicles.arrived" in message
    columns["payload"][2] = "[1, 2]"
    _write(tmp_path, columns, EVENTS_SCHEMA)
    with pytest.raises(CcsimError, match=r"seq 3.*not a JSON object"):
        load_run(tmp_path)
