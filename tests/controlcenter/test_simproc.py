"""The live simulation process writes the run's files as ``ccsim run`` does: without commands,
its events.parquet is the one ``ccsim run`` writes for the same scenario, controller and seed."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq

from controlcenter.rules import DEFAULT_RULES
from controlcenter.simproc import Batch, ChildSpec, Record, RunEnded, SimProcess
from sim.study import RunSpec, run_to_folder


def test_the_live_childs_events_file_is_the_one_ccsim_run_writes(tmp_path: Path) -> None:
    ended = threading.Event()
    records: list[Record] = []

    def on_record(record: Record) -> None:
        records.append(record)
        if isinstance(record, RunEnded):
            ended.set()

    spec = ChildSpec(scenario="single", controller="actuated", seed=3, speed=None,
                     out=tmp_path / "live", rules=DEFAULT_RULES, end_s=300.0)  # fmt: skip
    child = SimProcess(spec, on_record)
    child.start()
    try:
        assert ended.wait(120.0), "the live run did not end"
    finally:
        child.stop()
    assert child.ended is not None and child.ended.status == "finished", child.ended
    run_to_folder(RunSpec("single", "actuated", seed=3, out=tmp_path / "run", end_s=300.0))

    live = pq.read_table(tmp_path / "live" / "events.parquet")
    assert live.equals(pq.read_table(tmp_path / "run" / "events.parquet"))
    # ...and it is the stream the control room was handed, row for row
    handed = [row for record in records if isinstance(record, Batch) for row in record.events]
    assert len(handed) > 400
    columns = [live.column(c).to_pylist() for c in ("seq", "t", "source", "kind", "payload")]
    assert list(zip(*columns, strict=True)) == handed
