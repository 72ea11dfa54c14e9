"""events.parquet written as the run goes (a live run) is the file written at its end."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sim.controllers import create_controller
from sim.engine import Simulation
from sim.outputs import EventsWriter, payload_json, write_events
from sim.scenario import load_scenario


def test_events_written_in_row_groups_equal_the_file_written_at_the_end(tmp_path: Path) -> None:
    simulation = Simulation(load_scenario("single"), create_controller("actuated"), seed=1,
                            workdir=tmp_path / "sumo", end_s=120.0)  # fmt: skip
    messages = simulation.run().log.messages
    assert len(messages) > 200
    write_events(tmp_path / "at-end.parquet", messages)

    streamed = EventsWriter(tmp_path / "events.parquet", group_rows=100)
    rows = [(m.seq, m.t, m.source, m.kind, payload_json(m)) for m in messages]
    for i in range(0, len(rows), 7):  # in flushes of a few messages, as a live run hands them
        streamed.add(rows[i : i + 7])
        assert not (tmp_path / "events.parquet").exists()  # only complete files appear
    streamed.close()

    written = pq.ParquetFile(tmp_path / "events.parquet")
    groups = [written.metadata.row_group(i).num_rows for i in range(written.metadata.num_row_groups)]
    assert len(groups) > 2 and max(groups) < 100 + 7  # never much more than 100 rows held
    assert written.read().equals(pq.read_table(tmp_path / "at-end.parquet"))
    assert streamed.written == len(rows)


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
