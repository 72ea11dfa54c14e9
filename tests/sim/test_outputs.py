"""events.parquet is written as the run goes - by ``ccsim run`` as by a live run - and holds
what the file written at the run's end from all its messages held."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.controllers import create_controller
from sim.engine import Simulation
from sim.errors import CcsimError
from sim.messages import Message
from sim.outputs import EVENTS_SCHEMA, EventsWriter, event_row, payload_json
from sim.scenario import bundled_root, load_scenario
from sim.study import RunSpec, run_to_folder


def written_at_end(messages: Sequence[Message]) -> pa.Table:
    """The events.parquet table as it was written from the whole stream at a run's end, before
    runs wrote it as they went: the reference the streamed file must equal."""
    return pa.table(
        {
            "t": [m.t for m in messages],
            "seq": [m.seq for m in messages],
            "source": [m.source for m in messages],
            "kind": [m.kind for m in messages],
            "payload": [payload_json(m) for m in messages],
        },
        schema=EVENTS_SCHEMA,
    )


def test_events_written_in_row_groups_equal_the_file_written_at_the_end(tmp_path: Path) -> None:
    simulation = Simulation(load_scenario("single"), create_controller("actuated"), seed=1,
                            workdir=tmp_path / "sumo", end_s=120.0)  # fmt: skip
    messages = simulation.run().log.messages
    assert len(messages) > 200

    streamed = EventsWriter(tmp_path / "events.parquet", group_rows=100)
    rows = [event_row(m) for m in messages]
    for i in range(0, len(rows), 7):  # in flushes of a few messages, as a live run hands them
        streamed.add(rows[i : i + 7])
        assert not (tmp_path / "events.parquet").exists()  # only complete files appear
    streamed.close()

    written = pq.ParquetFile(tmp_path / "events.parquet")
    groups = [written.metadata.row_group(i).num_rows for i in range(written.metadata.num_row_groups)]
    assert len(groups) > 2 and max(groups) < 100 + 7  # never much more than 100 rows held
    assert written.read().equals(written_at_end(messages))
    assert streamed.written == len(rows)


def test_ccsim_run_writes_the_events_of_its_stream_in_order(tmp_path: Path) -> None:
    """``ccsim run`` (:func:`run_to_folder`) keeps no message in memory, yet its events.parquet
    holds the rows, columns and order of the file written from the whole stream at the end:
    the same run (same scenario, controller and seed: the same stream) with every message kept
    is the reference."""
    spec = RunSpec("single", "actuated", seed=2, out=tmp_path / "run", end_s=300.0)
    summary = run_to_folder(spec)
    kept = Simulation(load_scenario("single"), create_controller("actuated"), seed=2,
                      workdir=tmp_path / "kept", end_s=300.0).run()  # fmt: skip
    messages = kept.log.messages
    assert len(messages) > 400 and {"run.started", "signal.phase", "run.finished"} <= {
        m.kind for m in messages
    }

    written = pq.read_table(tmp_path / "run" / "events.parquet")
    assert written.schema.equals(EVENTS_SCHEMA)
    assert written.equals(written_at_end(messages))
    assert summary["vehicles_departed"] == kept.summary["vehicles_departed"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "events.parquet", "summary.json", "sumo", "timeseries.parquet"
    ]  # fmt: skip


def test_a_run_that_fails_leaves_no_events_file(tmp_path: Path) -> None:
    """The run's stream file is opened before SUMO starts; a run that fails (here: a route file
    that is not XML) removes it, as when the file was written only at the end."""
    scenario = tmp_path / "single"
    shutil.copytree(bundled_root() / "single", scenario)
    (scenario / "single.rou.xml").write_text("<routes><vehicle id=", encoding="utf-8")
    with pytest.raises(CcsimError, match=r"single\.rou\.xml"):
        run_to_folder(RunSpec(str(scenario), "actuated", seed=1, out=tmp_path / "run"))
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["sumo"]


def test_an_abandoned_events_file_leaves_nothing(tmp_path: Path) -> None:
    streamed = EventsWriter(tmp_path / "events.parquet", group_rows=2)
    streamed.add([(1, 0.0, "engine", "run.started", "{}")] * 3)
    streamed.abandon()
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_writes_its_stream_out_keeps_none_of_it(tmp_path: Path) -> None:
    simulation = Simulation(load_scenario("single"), create_controller("fixed"), seed=1,
                            workdir=tmp_path, end_s=60.0, keep_messages=False)  # fmt: skip
    seen = []
    simulation.bus.subscribe(seen.append)
    assert simulation.run().log.messages == [] and seen
