"""A study's results as data: ``runs.parquet`` and ``series.parquet``, queried with DuckDB.

``runs.parquet`` has one row per run - finished (``status = 'done'``, every key of its
summary.json as a column) or failed (``status = 'failed'``, with ``error``) - and the factors
that define it: ``run`` (its key), ``group``, ``controller``, ``variant``, ``scale``, ``seed``.
``series.parquet`` has every finished run's interval series (the rows of its
timeseries.parquet) with the same factors. Both are rewritten whole, atomically, from the run
folders, so they always describe the runs on disk.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sim.errors import CcsimError
from sim.study_runs import PlannedRun, failure, finished

RUNS = "runs.parquet"
SERIES = "series.parquet"


def _factors(run: PlannedRun) -> dict[str, Any]:
    return {
        "run": run.key,
        "group": run.group,
        "scenario": run.scenario_name,
        "controller": run.spec.controller,
        "variant": run.spec.variant,
        "scale": run.spec.scale,
        "seed": run.spec.seed,
    }


def collect(runs: Sequence[PlannedRun]) -> tuple[list[dict[str, Any]], pa.Table | None]:
    """Rows of runs.parquet, and series.parquet's table (None before any run finished)."""
    rows: list[dict[str, Any]] = []
    series: list[pa.Table] = []
    for run in runs:
        if finished(run) is not None:
            summary = json.loads((run.folder / "summary.json").read_text(encoding="utf-8"))
            rows.append({**_factors(run), "status": "done", "error": None, **summary})
            table = pq.read_table(run.folder / "timeseries.parquet")
            for name, value in reversed(_factors(run).items()):
                column = pa.array([value] * table.num_rows, type=_arrow_type([value], name))
                table = table.add_column(0, name, column)
            series.append(table)
        elif (record := failure(run)) is not None:
            rows.append({**_factors(run), "status": "failed", "error": record.get("error")})
    return rows, (pa.concat_tables(series, promote_options="permissive") if series else None)


TEXT_FACTORS = ("variant",)
"""Null in a study without variants, and text all the same."""


def _arrow_type(values: Sequence[Any], name: str = "") -> pa.DataType:
    present = [v for v in values if v is not None]
    if name in TEXT_FACTORS:
        return pa.string()
    if not present:
        return pa.float64()  # a KPI that no run had (null for this scenario)
    if all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def _cell(value: Any, kind: pa.DataType) -> Any:
    if value is None or not pa.types.is_string(kind) or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)  # a table-valued KPI (violations_by_site)


def runs_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Every key any row has is a column (summary keys are not listed here: runs add keys)."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        kind = _arrow_type(values, name)
        columns[name] = pa.array([_cell(v, kind) for v in values], type=kind)
    return pa.table(columns)


def _write_atomically(table: pa.Table, path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def write_dataset(out: Path, runs: Sequence[PlannedRun]) -> list[dict[str, Any]]:
    """Write ``out/runs.parquet`` and ``out/series.parquet``; return the rows of runs.parquet."""
    rows, series = collect(runs)
    _write_atomically(runs_table(rows), out / RUNS)
    if series is not None:
        _write_atomically(series, out / SERIES)
    else:
        (out / SERIES).unlink(missing_ok=True)
    return rows


def query(out: Path, sql: str) -> str:
    """Run ``sql`` with DuckDB on the study in ``out`` (tables ``runs`` and ``series``); CSV."""
    import duckdb  # only for --query

    if not (out / RUNS).is_file():
        raise CcsimError(f"{out / RUNS}: no results yet; expected a study run into {out}")
    con = duckdb.connect()
    try:
        for name, file in (("runs", RUNS), ("series", SERIES)):
            if (out / file).is_file():
                literal = str(out / file).replace("'", "''")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{literal}')")
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        records = result.fetchall()
    except duckdb.Error as exc:
        raise CcsimError(f"--query: {' '.join(str(exc).split())}") from None
    finally:
        con.close()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_value(v) for v in record] for record in records)
    return text.getvalue()


def _csv_value(value: Any) -> Any:
    return "" if value is None else value
