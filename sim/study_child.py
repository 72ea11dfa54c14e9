"""One run in its own process: ``python -m sim.study_child SPEC.json``.

Dask workers are daemonic processes and cannot start a process pool, and libsumo allows one
simulation per process, so a Dask task runs each simulation in a child process started this
way. ``SPEC.json`` holds the fields of a :class:`sim.study.RunSpec`; the run's files go to its
``out``. On failure the process writes ``error.json`` beside ``SPEC.json`` (a one-line error
and the traceback) and exits with 1.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from sim.study import RunSpec, run_to_folder
from sim.study_runs import describe

PARENT_ENV = "CCSIM_STUDY_PARENT"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Be killed when the process that started us dies (a Dask worker stopped or lost), rather
    than run on as an orphan. Set here, after the start, because a ``preexec_fn`` is unsafe in
    a threaded parent such as a Dask worker."""
    expected = os.environ.get(PARENT_ENV)
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (AttributeError, OSError):  # not Linux: no such guard, the run just finishes
        return
    if expected is not None and os.getppid() != int(expected):
        os._exit(1)  # the parent was gone before the guard was set


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    die_with_parent()
    try:
        doc = json.loads(spec_path.read_text(encoding="utf-8"))
        run_to_folder(RunSpec(**{**doc, "out": Path(doc["out"])}))
    except Exception as exc:
        line, detail = describe(exc)
        error = {"error": line, "detail": detail}
        (spec_path.parent / "error.json").write_text(json.dumps(error), encoding="utf-8")
        print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
