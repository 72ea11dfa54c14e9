"""Running a study on a Dask distributed cluster: a task per run, each run in a child process.

The scenario's files travel with the tasks (scattered once per scenario), so the workers need
ccsim installed but no shared file system; each task sends the run's files back (summary.json,
timeseries.parquet, events.parquet and SUMO's log; SUMO's other output files stay behind) and
the study process alone writes the run folders. Any Dask cluster works: ``local`` (a
``LocalCluster`` on this machine), a scheduler address (``dask scheduler`` + ``dask worker``),
or one made by dask-jobqueue (Slurm, PBS) or dask-kubernetes, given by its scheduler address.
Give each worker one thread: a run is one SUMO process and takes a core.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sim
from sim.errors import CcsimError
from sim.scenario import load_scenario
from sim.study_child import PARENT_ENV
from sim.study_runner import OnDone, OnFailed
from sim.study_runs import (
    PlannedRun,
    describe,
    partial_folder,
    scenario_base,
    scenario_entry,
    scenario_files,
)

RESULT_FILES = ("summary.json", "timeseries.parquet", "events.parquet", "sumo/sumo.log")
CANCEL_POLL_S = 2.0


@dataclass(frozen=True)
class Bundle:
    """A scenario's files by path relative to ``origin`` (the folder above the scenario's),
    and ``entry``, the path that loads it (its scenario.toml, .sumocfg or folder)."""

    files: dict[str, bytes]
    entry: str
    origin: str

    def unpack(self, folder: Path) -> Path:
        for relative, content in self.files.items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return folder / self.entry


def bundle(scenario_spec: str, variant: str | None) -> Bundle:
    scenario = load_scenario(scenario_spec, variant)
    base = scenario_base(scenario)
    files = {str(p.relative_to(base)): p.read_bytes() for p in scenario_files(scenario)}
    return Bundle(files, str(scenario_entry(scenario).relative_to(base)), str(base))


def _still_wanted() -> bool:
    """False once the client has cancelled this task (the study was interrupted)."""
    try:
        from distributed import get_worker

        worker = get_worker()
        task = worker.state.tasks.get(worker.get_current_task())
    except (ImportError, ValueError, KeyError, AttributeError):
        return True  # not in a Dask task (a test calling it directly)
    return task is not None and task.state not in ("cancelled", "released", "forgotten")


def run_in_child(spec: dict[str, Any], scenario: Bundle) -> dict[str, Any]:
    """The Dask task: run ``spec`` in a child process on this worker; the run's files as bytes."""
    with tempfile.TemporaryDirectory(prefix="ccsim-run-") as tmp:
        root = Path(tmp)
        entry = scenario.unpack(root / "scenario")
        doc = {**spec, "scenario": str(entry), "out": str(root / "out")}
        (root / "spec.json").write_text(json.dumps(doc), encoding="utf-8")
        # The child imports the same ccsim as this worker, wherever it is installed.
        package_root = str(Path(sim.__file__).resolve().parent.parent)
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, PARENT_ENV: str(os.getpid())}
        command = [sys.executable, "-m", "sim.study_child", str(root / "spec.json")]
        with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) as child:  # fmt: skip
            while True:
                try:
                    _, stderr = child.communicate(timeout=CANCEL_POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    if not _still_wanted():
                        child.kill()
                        child.communicate()
                        return {"ok": False, "error": "cancelled", "detail": "", "files": {}}
        out = root / "out"
        files = {name: (out / name).read_bytes() for name in RESULT_FILES if (out / name).is_file()}
        if child.returncode == 0:
            return {"ok": True, "files": files}
        error_file = root / "error.json"
        if error_file.is_file():
            error = json.loads(error_file.read_text(encoding="utf-8"))
        else:
            last = (stderr.strip().splitlines() or [""])[-1]
            error = {"error": f"the run's process ended with code {child.returncode}: {last}",
                     "detail": stderr}  # fmt: skip
        # Name the scenario's files as the user knows them, not as unpacked on the worker.
        for key in ("error", "detail"):
            error[key] = error[key].replace(str(root / "scenario"), scenario.origin)
        return {"ok": False, "files": files, **error}


class DaskCluster:
    """The study's runs as Dask tasks. ``address``: a scheduler address, or ``local`` for a
    LocalCluster of ``workers`` single-threaded worker processes on this machine. Connects (or
    starts the local cluster) on entering, so a bad address fails before any run."""

    def __init__(self, address: str, workers: int = 2, connect_timeout_s: float = 10.0) -> None:
        self.address = address
        self.workers = workers
        self.connect_timeout_s = connect_timeout_s
        self._client: Any = None

    def __enter__(self) -> DaskCluster:
        from distributed import Client, LocalCluster

        if self.address == "local":
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self._client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call]
            return self
        try:
            self._client = Client(  # type: ignore[no-untyped-call]
                self.address, timeout=self.connect_timeout_s, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise CcsimError(
                f"--dask {self.address}: cannot reach the Dask scheduler ({reason}); "
                "expected 'local' or a scheduler address like tcp://host:8786"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        cluster = client.cluster if self.address == "local" else None
        client.close()
        if cluster is not None:
            cluster.close()

    def execute(
        self, runs: Sequence[PlannedRun], runs_dir: Path, on_done: OnDone, on_failed: OnFailed
    ) -> None:
        from distributed import as_completed

        client = self._client
        if client is None:
            raise RuntimeError("DaskCluster.execute outside its with-block")
        futures: dict[Any, PlannedRun] = {}
        try:
            scattered: dict[tuple[str, str | None], Any] = {}
            for run in runs:
                where = (run.spec.scenario, run.spec.variant)
                if where not in scattered:
                    scattered[where] = client.scatter([bundle(*where)], hash=False)[0]
                spec = asdict(run.spec)
                spec["out"] = ""
                key = f"ccsim-run-{run.key[:16]}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(run_in_child, spec, scattered[where], key=key)] = run
            for future in as_completed(list(futures), loop=client.loop):  # type: ignore[no-untyped-call]
                run = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the task itself failed: a worker died (KilledWorker)...
                    line, detail = describe(exc)
                    on_failed(run, line, detail, None)
                    continue
                written = partial_folder(runs_dir, run)
                for name, content in result["files"].items():
                    (written / name).parent.mkdir(parents=True, exist_ok=True)
                    (written / name).write_bytes(content)
                if result["ok"]:
                    on_done(run, written)
                else:
                    on_failed(run, result["error"], result["detail"], written)
        except BaseException:
            client.cancel(list(futures), force=True)
            raise
