"""controlcenter/replay.py: a run's events.parquet read for ``ccsim replay``; a file that is not
the events of a run is refused naming it, before anything is served; the replay shows the
scenario with the variant the run recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from controlcenter.replay import load_run, replay_config
from sim.errors import CcsimError
from sim.outputs import EVENTS_SCHEMA

STARTED = json.dumps({"scenario": "single", "controller": "fixed", "seed": 1, "begin_s": 0.0})
"""The run.started of a run from before runs recorded their scenario variant."""


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


def _started(run_dir: Path, **started: Any) -> Path:
    columns = _good()
    columns["payload"][0] = json.dumps({**json.loads(STARTED), **started})
    _write(run_dir, columns, EVENTS_SCHEMA)
    return run_dir


def test_the_replay_applies_the_variant_the_run_recorded(tmp_path: Path) -> None:
    said: list[str] = []
    run = load_run(_started(tmp_path, variant="net-plans;detectors.advance_distance_m=40"))
    config = replay_config(run, say=said.append, port=0)
    assert config.variant == "net-plans;detectors.advance_distance_m=40" and config.port == 0
    assert said == []
    none = load_run(_started(tmp_path, variant=""))  # recorded: the run had none
    assert replay_config(none, say=said.append).variant is None and said == []


def test_a_run_that_records_no_variant_is_replayed_without_one_and_says_so(tmp_path: Path) -> None:
    said: list[str] = []
    config = replay_config(load_run(_started(tmp_path)), say=said.append)
    assert (config.scenario, config.variant) == ("single", None)
    (line,) = said
    assert str(tmp_path) in line and "variant" in line and "--variant" in line


def test_a_variant_the_scenario_no_longer_has_is_refused_naming_it_and_the_run(
    tmp_path: Path,
) -> None:
    run = load_run(_started(tmp_path, variant="rush-hour"))
    with pytest.raises(CcsimError) as caught:
        replay_config(run, say=print)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: ") and "'rush-hour'" in message
    assert "net-plans" in message  # the scenario's variants, from the scenario's own error
    # --variant names another (or none) instead; a bad one is refused naming the option
    assert replay_config(run, variant="net-plans", say=print).variant == "net-plans"
    assert replay_config(run, variant="", say=print).variant is None
    with pytest.raises(CcsimError, match=r"--variant 'nope'"):
        replay_config(run, variant="nope", say=print)
