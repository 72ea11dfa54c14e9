"""Privacy by design: a district run with plate-reading gates leaves no plate anywhere.

The run goes through the real ``ccsim run`` command, so every file it writes is scanned: the
summary, the parquet outputs (decoded, every value), SUMO's own outputs and log, the additional
files written for SUMO.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from sim.devices.plates import PLATE_PATTERN


def plate_shaped(folder: Path) -> dict[str, list[str]]:
    """Every plate-shaped string in every file under ``folder`` (parquet decoded to text)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        else:
            text = path.read_bytes().decode("latin-1")
        hits = PLATE_PATTERN.findall(text)
        if hits:
            found[str(path.relative_to(folder))] = hits[:5]
    return found


def test_the_scanner_finds_a_plate_that_leaked(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("read plate ABC-123 at gate 4\n")
    pq.write_table(
        __import__("pyarrow").table({"payload": ['{"plate": "B7C-905"}']}), tmp_path / "e.parquet"
    )
    assert plate_shaped(tmp_path) == {"e.parquet": ["B7C-905"], "log.txt": ["ABC-123"]}


def test_district_run_writes_no_plate_shaped_string(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ccsim = Path(sys.executable).parent / "ccsim"
    done = subprocess.run(
        [str(ccsim), "run", "district", "--controller", "fixed", "--seed", "3", "--end", "600",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = pq.read_table(out / "events.parquet").to_pylist()
    counts = [json.loads(e["payload"]) for e in events if e["kind"] == "gate.count"]
    reads = sum(c["reads"] + c["unreadable"] for c in counts)
    assert reads > 100  # the gates did read plates in this run
    assert any(e["kind"] == "pedestrian.count" for e in events)
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 5
    assert plate_shaped(out) == {}
    assert PLATE_PATTERN.search(done.stdout + done.stderr) is None
