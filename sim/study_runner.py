"""Running a study: skip what is finished, run the rest on a backend, keep every outcome.

A backend runs :class:`PlannedRun` s, each in a fresh process (libsumo allows one simulation
per process), into a partial folder, and reports each one as done or failed; the runner alone
moves results into place (``sim.study_runs``), so whatever the backend, a run is trusted only
once it is complete. Backends: :class:`LocalPool` (the default) and
:class:`sim.study_dask.DaskCluster`.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from sim.errors import CcsimError
from sim.outputs import prepare_out_dir
from sim.study import RunSpec, run_many
from sim.study_data import write_dataset
from sim.study_file import Study
from sim.study_runs import (
    PlannedRun,
    clear_partial,
    commit_done,
    commit_failed,
    describe,
    failure,
    finished,
    partial_folder,
)

OnDone = Callable[[PlannedRun, Path], None]
"""A run finished and wrote its files into the folder given."""
OnFailed = Callable[[PlannedRun, str, str, Path | None], None]
"""A run failed: one-line error, details (traceback), and the folder it wrote into, if any."""


class Backend(Protocol):
    """Used as a context manager: entering connects (or starts workers), leaving stops."""

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def execute(
        self, runs: Sequence[PlannedRun], runs_dir: Path, on_done: OnDone, on_failed: OnFailed
    ) -> None:
        """Run each of ``runs`` once, calling ``on_done`` or ``on_failed`` as each ends."""


class Observer(Protocol):
    """What a progress display is told (runs are counted in this invocation only)."""

    def started(self, to_run: int, skipped: int, retried: int) -> None: ...

    def run_done(self, run: PlannedRun) -> None: ...

    def run_failed(self, run: PlannedRun, error: str) -> None: ...


@dataclass
class LocalPool:
    """A local process pool: ``jobs`` runs at a time, one fresh process per run."""

    jobs: int

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(
        self, runs: Sequence[PlannedRun], runs_dir: Path, on_done: OnDone, on_failed: OnFailed
    ) -> None:
        specs = [replace(run.spec, out=partial_folder(runs_dir, run)) for run in runs]
        planned: dict[RunSpec, PlannedRun] = dict(zip(specs, runs, strict=True))

        def failed(spec: RunSpec, error: BaseException) -> None:
            line, detail = describe(error)
            on_failed(planned[spec], line, detail, spec.out)

        run_many(
            specs,
            jobs=self.jobs,
            on_done=lambda spec, _summary: on_done(planned[spec], spec.out),
            on_error=failed,
        )


@dataclass
class StudyOutcome:
    total: int
    skipped: int
    done: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    wall_s: float = 0.0


def run_study(study: Study, out: Path, backend: Backend, observer: Observer) -> StudyOutcome:
    """Run what ``out`` does not hold finished yet; finished runs are never run again."""
    runs_dir = prepare_out_dir(out) / "runs"
    runs_dir.mkdir(exist_ok=True)
    with _exclusive(out):
        clear_partial(runs_dir)
        todo = [run for run in study.runs if finished(run) is None]
        retried = sum(1 for run in todo if failure(run) is not None)
        outcome = StudyOutcome(total=len(study.runs), skipped=len(study.runs) - len(todo))
        observer.started(len(todo), outcome.skipped, retried)
        start = time.perf_counter()

        def done(run: PlannedRun, written: Path) -> None:
            commit_done(run, written)
            outcome.done.append(run)
            observer.run_done(run)

        def failed(run: PlannedRun, error: str, detail: str, written: Path | None) -> None:
            commit_failed(run, error, detail, written)
            outcome.failed.append((run, error))
            observer.run_failed(run, error)

        if todo:
            backend.execute(todo, runs_dir, done, failed)
        clear_partial(runs_dir)
        outcome.wall_s = time.perf_counter() - start
        write_dataset(out, study.runs)
    return outcome


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One study process per output folder: two would write the same run folders."""
    with (out / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CcsimError(f"{out}: another ccsim study is running into this folder") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
