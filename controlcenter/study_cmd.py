"""``ccsim study STUDY.toml``: a declared sweep, resumable, on a local pool or a Dask cluster,
with a live bar (runs done / failed, throughput, ETA), a Parquet dataset and a report."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sim.study import default_jobs
from sim.study_data import query
from sim.study_file import load_study
from sim.study_report import write_report
from sim.study_runner import Backend, LocalPool, StudyOutcome, run_study
from sim.study_runs import PlannedRun

EXIT_INTERRUPTED = 130


class StudyBar:
    """The live bar of a study; one line per run as it ends, above the bar."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(title, total=0, failed=0, rate="- runs/min", eta="-")
        self.to_run = 0
        self.ended = 0
        self.failed = 0
        self.start = time.perf_counter()

    def __enter__(self) -> StudyBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, to_run: int, skipped: int, retried: int) -> None:
        self.to_run = to_run
        self.start = time.perf_counter()
        self.progress.update(self.task, total=to_run)
        retry = f" ({retried} failed before, retried)" if retried else ""
        self.console.print(
            f"{self.title}: {to_run + skipped} runs, {skipped} finished before (skipped), "
            f"{to_run} to run{retry}",
            highlight=False,
        )

    def _ended(self) -> None:
        self.ended += 1
        elapsed = time.perf_counter() - self.start
        rate = self.ended / elapsed * 60.0 if elapsed > 0 else 0.0
        remaining = (self.to_run - self.ended) * elapsed / self.ended
        eta = time.strftime("%H:%M:%S", time.gmtime(remaining))
        self.progress.update(self.task, completed=self.ended, failed=self.failed,
                             rate=f"{rate:.1f} runs/min", eta=eta)  # fmt: skip

    def run_done(self, run: PlannedRun) -> None:
        self._ended()
        self.console.print(f"  done   {run.group} seed {run.spec.seed}", highlight=False)

    def run_failed(self, run: PlannedRun, error: str) -> None:
        self.failed += 1
        self._ended()
        self.console.print(f"  FAILED {run.group} seed {run.spec.seed}: {error}",
                           markup=False, highlight=False)  # fmt: skip


def backend_for(args: argparse.Namespace) -> Backend:
    if args.dask is None:
        return LocalPool(args.jobs)
    from sim.study_dask import DaskCluster  # Dask loads only when asked for

    return DaskCluster(args.dask, workers=args.jobs)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a batch system's SIGTERM ends the study the way Ctrl-C does


def cmd_study(args: argparse.Namespace, console: Console) -> int:
    out: Path = args.out or Path("out") / args.study.stem
    if args.query is not None:
        print(query(out, args.query), end="")
        return 0
    study = load_study(args.study, out)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with backend_for(args) as backend, StudyBar(console, study.name) as bar:
            outcome = run_study(study, out, backend, bar)
    except KeyboardInterrupt:
        print(f"ccsim: interrupted; finished runs are kept in {out}/runs, "
              "the same command resumes", file=sys.stderr)  # fmt: skip
        sys.stdout.flush()
        sys.stderr.flush()
        # Leave at once: the process pool's exit handler can wait on a worker being started
        # when Ctrl-C came. Nothing is lost: finished runs are on disk (fsync'd, renamed in
        # place) and anything partial is never trusted.
        os._exit(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, previous)
    written = write_report(out, study)
    _print_outcome(console, outcome, out, written)
    return 1 if outcome.failed else 0


def _print_outcome(console: Console, outcome: StudyOutcome, out: Path, report: list[Path]) -> None:
    ran = len(outcome.done) + len(outcome.failed)
    rate = f", {ran / outcome.wall_s * 60:.1f} runs/min" if ran and outcome.wall_s > 0 else ""
    console.print(
        f"{outcome.total} runs: {outcome.skipped} finished before, {len(outcome.done)} done now, "
        f"{len(outcome.failed)} failed ({outcome.wall_s:.1f} s{rate})",
        highlight=False,
    )
    for run, error in outcome.failed:
        console.print(f"  failed: {run.folder}/failed.json: {error}", markup=False, highlight=False)
    files = ", ".join(p.name for p in report)
    console.print(f"wrote {out}/runs.parquet, series.parquet, {files}", highlight=False)


def add_study_parser(sub: Any) -> None:
    study = sub.add_parser("study", help="run a study declared in a file (sweeps, resumable)")
    study.add_argument("study", type=Path, help="the study file (TOML)")
    study.add_argument("--out", type=Path, default=None, help="results (default out/<file name>)")
    study.add_argument("--jobs", type=int, default=default_jobs(),
                       help="parallel runs on the local pool (and workers of --dask local)")  # fmt: skip
    study.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run on a Dask cluster: a scheduler address, or 'local'")  # fmt: skip
    study.add_argument(
        "--query",
        default=None,
        metavar="SQL",
        help="query the results (tables runs, series) with DuckDB; runs nothing",
    )
    study.set_defaults(handler=cmd_study)
