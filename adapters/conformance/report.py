"""A conformance run's outputs, each rendered from results.json's content alone (so the report's
figures are reproducible from it): ``results.json``, ``report.md`` and ``report.html`` (plots as
inline SVG; nothing loaded from the network).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.conformance import detection
from adapters.conformance.profile import profile_toml

MARK = {"pass": "PASS", "fail": "FAIL", "not-applicable": "n/a"}
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "not-applicable": "#6e7781"}


def write_all(results: dict[str, Any], out: Path) -> None:
    """results.json, report.md, report.html and (after an accuracy run) the fitted sensor profile
    profile.toml in ``out``."""
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(results), encoding="utf-8")
    (out / "report.html").write_text(html_report(results), encoding="utf-8")
    profile = profile_toml(results)
    if profile is not None:
        (out / "profile.toml").write_text(profile, encoding="utf-8")


def _pct(v: Any, sign: bool = True) -> str:
    return "n/a" if v is None else (f"{v:+.1f} %" if sign else f"{v:.1f} %")


def lane_rows(results: dict[str, Any]) -> list[list[str]]:
    """The per-lane accuracy table: lane, vehicles, counted, error, 95 % CI, blocks, occupancy."""
    acc = results.get("accuracy")
    if not acc:
        return []
    rows = []
    for lane, s in acc["lanes"].items():
        v = s["volume"]
        ci = "n/a" if v["low_pct"] is None else f"{v['low_pct']:+.1f} .. {v['high_pct']:+.1f} %"
        mae = s["occupancy_mae_points"]
        rows.append([
            lane, str(v["true"]), str(v["device"]), _pct(v["error_pct"]), ci,
            f"{s['blocks_within']}/{s['blocks_judged']}",
            "n/a" if mae is None else f"{mae:.2f}",
        ])  # fmt: skip
    return rows


CONDITION_HEADER = ["condition (true zone occupancy)", "periods", "true vehicles", "counted",
                    "volume error", "95 % CI"]  # fmt: skip


def condition_rows(results: dict[str, Any]) -> list[list[str]]:
    """Volume error by traffic condition, pooled over the lanes."""
    acc = results.get("accuracy")
    if not acc or "conditions" not in acc:
        return []
    rows = []
    for name, c in acc["conditions"].items():
        low, high = c["occupancy_pct"]
        ci = "n/a" if c["low_pct"] is None else f"{c['low_pct']:+.1f} .. {c['high_pct']:+.1f} %"
        rows.append([f"{name} ({low:g}-{high:g} %)", str(c["periods"]), str(c["true"]),
                     str(c["device"]), _pct(c["error_pct"]), ci])  # fmt: skip
    return rows


LANE_HEADER = ["lane", "true vehicles", "counted", "volume error", "95 % CI", "blocks within",
               "occupancy MAE (points)"]  # fmt: skip


def _device_lines(results: dict[str, Any]) -> list[str]:
    """The device, its identity as read from it, the scenario and the thresholds."""
    device, sc, th = results["device"], results["scenario"], results["thresholds"]
    ident = device["identity"] or {}
    if device["kind"] == "ntcip1202":
        from adapters.conformance import controller_report

        return controller_report.device_lines(results)
    if device["kind"] == "lorawan":
        seen = ", ".join(f"{k} {v}" for k, v in ident.items()) or "no uplink arrived"
        return [
            f"- device: LoRaWAN parking sensors ({device['model']}), uplinks as "
            f"{device['format']} publishes them at {device['target']} ({device['address']}); "
            f"declared heartbeat {device['heartbeat_s']:g} s",
            f"- identity (read from its uplinks): {seen}",
            f"- scenario: {sc['name']}, {sc['bays']} bays in {', '.join(sc['zones'])}; "
            f"{sc['controller']} seed {sc['seed']}, {sc['begin_s']:g}-{sc['end_s']:g} s",
            f"- thresholds: state right >= {th['state_accuracy_pct']:g} % of bay-time, changes "
            f"detected >= {th['change_detection_pct']:g} % within {th['match_window_s']:g} s, false "
            f"occupancy <= {th['false_per_bay_h']:g} per free bay-hour, latency p95 <= "
            f"{th['change_latency_p95_s']:g} s",
        ]
    return [
        f"- device: NTCIP 1209 station at {device['target']} ({device['address']})",
        f"- identity (read from the device): sysDescr '{ident.get('sysDescr', 'unreadable')}', "
        f"sysObjectID {ident.get('sysObjectID', 'unreadable')}, sysName '{ident.get('sysName', '')}'",
        f"- scenario: {sc['name']}, signal {sc['signal']}, zones {', '.join(sc['zones'])}; "
        f"{sc['controller']} seed {sc['seed']}, {sc['begin_s']:g}-{sc['end_s']:g} s",
        f"- thresholds: preset {th['preset']}, volume +-{th['volume_error_pct']:g} % over "
        f"{th['block_vehicles']} vehicles or {th['block_s'] / 60:g} min, occupancy "
        f"{th['occupancy_error_points']:g} points, answers p95 {th['response_p95_ms']:g} ms",
    ]


PARKING_HEADER = ["figure", "value", "95 % CI", "n"]


def parking_rows(results: dict[str, Any]) -> list[list[str]]:
    """The parking sensors' accuracy figures, from results.json's ``parking``."""
    p = results.get("parking")
    if not p:
        return []
    s, c, f, lat = p["state"], p["changes"], p["false_occupancy"], p["latency"]

    def rng(low: Any, high: Any, spec: str, scale: float = 1.0, unit: str = "") -> str:
        return "n/a" if low is None else f"{scale * low:{spec}} .. {scale * high:{spec}}{unit}"

    det = "n/a" if c["detection"] is None else f"{100 * c['detection']:.1f} %"
    per_h = "n/a" if f["per_bay_h"] is None else f"{f['per_bay_h']:.3f} /h"
    return [
        ["state right (share of bay-time)", _pct(s["accuracy_pct"], sign=False),
         rng(s["low_pct"], s["high_pct"], ".2f", unit=" %"),
         f"{p['bays']} bays, {p['bay_hours']:g} bay-h"],
        ["changes detected", det, rng(c["low"], c["high"], ".1f", 100, " %"),
         f"{c['detected']} of {c['eligible']} eligible ({p['true_changes']} true changes)"],
        ["changes missed", str(c["missed"]), "", f"{c['other_unmatched']} other unmatched reports"],
        ["false occupancies per free bay-hour", per_h, rng(f["low"], f["high"], ".3f"),
         f"{f['count']} in {f['free_bay_h']:g} free bay-h"],
        ["latency of changes, mean", "n/a" if lat["mean_s"] is None else f"{lat['mean_s']:g} s",
         rng(lat["low_s"], lat["high_s"], ".2f", unit=" s"), f"{lat['n']} changes"],
        ["latency of changes, p95 / max", "n/a" if lat["p95_s"] is None else
         f"{lat['p95_s']:g} s / {lat['max_s']:g} s", "", ""],
        ["uplinks published / received / applied", f"{p['published']} / {p['received']} / "
         f"{p['ingest'].get('applied', 0)}", "", ", ".join(f"{k} {v}" for k, v in
         sorted(p["ingest"].items()) if k != "applied") or "nothing dropped"],
    ]  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    plan = results["plan"]
    counts = results["counts"]
    lines = [
        f"# Conformance: {plan['name']} - {results['verdict'].upper()}",
        "",
        plan["description"] or "",
        "",
        *_device_lines(results),
        f"- cases: {counts['pass']} pass, {counts['fail']} fail, {counts['not-applicable']} not "
        f"applicable; run {results['wall_time_s']:g} s on {results['created_utc']}",
        "",
        "## Cases",
        "",
        "| case | outcome | what | evidence | traced to |",
        "|---|---|---|---|---|",
    ]
    for c in results["cases"]:
        evidence = "<br>".join(_md(e) for e in c["evidence"])
        lines.append(f"| {c['id']} | {MARK[c['outcome']]} | {_md(c['title'])} | {evidence} | "
                     f"{_md('; '.join(c['refs']))} |")  # fmt: skip
    rows = lane_rows(results)
    if rows:
        lines += ["", "## Accuracy per lane", "", "| " + " | ".join(LANE_HEADER) + " |",
                  "|" + "---|" * len(LANE_HEADER)]  # fmt: skip
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    conditions = condition_rows(results)
    if conditions:
        lines += ["", "## Volume error by condition (all lanes)", "",
                  *_md_table(CONDITION_HEADER, conditions)]  # fmt: skip
    speed = detection.speed_rows(results)
    if speed:
        lines += ["", "## Speed error (per lane, then by condition over all lanes)", "",
                  *_md_table(detection.SPEED_HEADER, speed)]  # fmt: skip
    presence = detection.presence_rows(results)
    if presence:
        lines += ["", "## Presence calls and latency", "",
                  *_md_table(detection.PRESENCE_HEADER, presence)]  # fmt: skip
    parking = parking_rows(results)
    if parking:
        lines += ["", "## Parking accuracy against ground truth", "",
                  *_md_table(PARKING_HEADER, parking)]  # fmt: skip
    if results["device"]["kind"] == "ntcip1202":
        from adapters.conformance import controller_report

        lines += controller_report.markdown_sections(results)
    if "sample_size" in results:
        lines += ["", f"## How many {_unit(results)} a test needs", "", _sample_size(results)]
    lines.append("")
    fit = results.get("fitted_profile")
    if fit and results["device"]["kind"] == "lorawan":
        lines += ["## Fitted bay sensor profile (profile.toml)", "", _bay_fit(fit), ""]
    elif fit:
        low, high = fit["detection_probability_ci"]
        ci = "n/a" if low is None else f"{low:.3f} .. {high:.3f}"
        lines += [
            "## Fitted sensor profile (profile.toml)",
            "",
            f"detection probability {fit['detection_probability']:.3f} (95 % CI {ci}), false "
            f"detections {fit['false_detections_per_h']:g} per detector-hour, occupancy noise sd "
            f"{fit['occupancy_noise_sd']:.4f}, from {fit['vehicles']} vehicles; "
            f"{_detector_fit(fit)}",
            "",
        ]
    lines += impact_lines(results)
    lines += ["## Inputs (sha256)", ""]
    lines += [f"- `{i['sha256']}` {i['path']}" for i in results["inputs"]]
    return "\n".join(lines) + "\n"


def _detector_fit(fit: dict[str, Any]) -> str:
    measured = detection.fit_text(fit)
    if not measured:
        return "latency and faults not fitted."
    return f"{measured}; faults not fitted."


def _unit(results: dict[str, Any]) -> str:
    return "bay state changes" if results["device"]["kind"] == "lorawan" else "vehicles"


def _sample_size(results: dict[str, Any]) -> str:
    size = results["sample_size"]
    if results["device"]["kind"] == "lorawan":
        return (f"To tell sensors that miss {100 * size['miss_good']:g} % of bay state changes from "
                f"ones that miss {100 * size['miss_bad']:g} % (two-sided alpha {size['alpha']:g}, "
                f"power {size['power']:g}, each change missed independently) a test needs "
                f"**{size['vehicles']} bay state changes**.")  # fmt: skip
    return (f"To tell a device that misses {100 * size['miss_good']:g} % of vehicles from one that "
            f"misses {100 * size['miss_bad']:g} % (two-sided alpha {size['alpha']:g}, power "
            f"{size['power']:g}, each vehicle missed independently) a test needs "
            f"**{size['vehicles']} vehicles per lane**.")  # fmt: skip


def _bay_fit(fit: dict[str, Any]) -> str:
    def ci(key: str, spec: str) -> str:
        low, high = fit[f"{key}_ci"]
        return "n/a" if low is None else f"95 % CI {low:{spec}} .. {high:{spec}}"

    return (
        f"detection probability {fit['detection_probability']:.3f} "
        f"({ci('detection_probability', '.3f')}), false detections "
        f"{fit['false_detections_per_h']:.3f} per free bay-hour "
        f"({ci('false_detections_per_h', '.3f')}), latency {fit['latency_s']:g} s "
        f"({ci('latency_s', '.2f')}), from {fit['changes']} changes; faults not fitted."
    )


def impact_lines(results: dict[str, Any]) -> list[str]:
    """The cost of the measured accuracy (``--impact``), if it was priced."""
    impact = results.get("impact")
    if not impact:
        return []

    def est(e: dict[str, Any], spec: str) -> str:
        ci = "" if e["low"] is None else f" (95 % CI {e['low']:{spec}} .. {e['high']:{spec}})"
        return f"{e['mean']:+{spec}}{ci}"

    if impact.get("kind") == "parking":
        lines = [
            "## What the measured accuracy costs",
            "",
            f"{impact['controller']} on {impact['scenario']} ({impact['variant']}), bay sensors "
            f"under the fitted profile against ideal ones, {len(impact['seeds'])} paired seeds "
            f"({impact['run_h']:g} h runs, {impact['bays']} bays):",
            "",
        ]
        for key, label, spec, unit in (
            ("public_space_efficiency", "public-space efficiency (all bays)", ".4f", ""),
            ("public_space_efficiency_rotating_loading",
             "public-space efficiency (rotating and loading bays)", ".4f", ""),
            ("parking_search_time_mean_s", "parking search time per parker", ".1f", " s"),
            ("parking_search_distance_mean_m", "parking search distance per parker", ".0f", " m"),
        ):  # fmt: skip
            e = impact.get(key)
            if e:
                lines.append(f"- {label}: {e['ideal']:{spec}}{unit} with ideal sensors, "
                             f"{est(e['difference'], spec)}{unit} with the measured ones")  # fmt: skip
        c = impact["cruising_vehicle_hours_per_run"]
        lines.append(
            f"- cruising: {est(c['difference'], '.2f')} vehicle-hours per run, "
            f"{est(impact['cruising_vehicle_hours_per_year'], '.0f')} vehicle-hours and "
            f"{est(impact['cruising_vehicle_km_per_year'], '.0f')} vehicle-km a year at "
            f"{impact['hours_per_year']:g} such hours a year"
        )
        return [*lines, ""]

    d, t, y = (impact["mean_delay_s"], impact["vehicle_hours_per_run"],
               impact["vehicle_hours_per_year"])  # fmt: skip
    lines = [
        "## What the measured accuracy costs",
        "",
        f"{impact['controller']} on {impact['scenario']}, detectors under the fitted profile against "
        f"ideal ones, {len(impact['seeds'])} paired seeds ({impact['run_h']:g} h runs):",
        "",
        f"- mean delay per vehicle: {d['ideal']:.2f} s with ideal detectors, "
        f"{est(d['difference'], '.2f')} s with the measured ones",
        f"- total vehicle delay: {est(t['difference'], '.2f')} vehicle-hours per run, "
        f"{est(y, '.0f')} vehicle-hours a year at {impact['hours_per_year']:g} such hours a year",
    ]
    space = impact.get("public_space_efficiency")
    if space:
        lines.append(f"- public space efficiency: {space['ideal']:.3f} with ideal detectors, "
                     f"{est(space['difference'], '.4f')} with the measured ones")  # fmt: skip
    return [*lines, ""]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]  # fmt: skip


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- HTML with inline SVG -------------------------------------------------------------------------


def _svg(width: int, height: int, body: Sequence[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img"><title>{html.escape(title)}</title>'
            + "".join(body) + "</svg>")  # fmt: skip


def error_chart(results: dict[str, Any]) -> str:
    """Per-lane volume error with its 95 % interval, and the threshold band."""
    acc = results.get("accuracy")
    if not acc:
        return ""
    lanes = list(acc["lanes"].items())
    limit = results["thresholds"]["volume_error_pct"]
    values = [abs(x) for _, s in lanes for x in (s["volume"]["low_pct"], s["volume"]["high_pct"],
              s["volume"]["error_pct"]) if x is not None]  # fmt: skip
    span = max([limit * 1.5, *values]) * 1.1
    w, row, left = 640, 28, 110
    h = row * len(lanes) + 50

    def x(v: float) -> float:
        return float(left + (v + span) / (2 * span) * (w - left - 20))

    body = [
        f'<rect x="{x(-limit):.1f}" y="10" width="{x(limit) - x(-limit):.1f}" height="{h - 40}" '
        'fill="#dafbe1"/>',
        f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{h - 30}" stroke="#555"/>',
    ]
    for tick in (-span, -limit, 0.0, limit, span):
        body.append(f'<text x="{x(tick):.1f}" y="{h - 12}" font-size="11" text-anchor="middle">'
                    f"{tick:+.0f} %</text>")  # fmt: skip
    for i, (lane, s) in enumerate(lanes):
        y = 10 + row * i + row / 2
        v = s["volume"]
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end">'
                    f"{html.escape(lane)}</text>")  # fmt: skip
        if v["low_pct"] is not None:
            body.append(f'<line x1="{x(v["low_pct"]):.1f}" y1="{y:.1f}" x2="{x(v["high_pct"]):.1f}" '
                        f'y2="{y:.1f}" stroke="#333" stroke-width="2"/>')  # fmt: skip
        if v["error_pct"] is not None:
            inside = abs(v["error_pct"]) <= limit
            body.append(f'<circle cx="{x(v["error_pct"]):.1f}" cy="{y:.1f}" r="5" '
                        f'fill="{COLOURS["pass" if inside else "fail"]}"/>')  # fmt: skip
    return _svg(w, h, body, "Volume error per lane with 95 % confidence interval")


def volume_chart(results: dict[str, Any], lane: str) -> str:
    """True and reported volume per interval of one lane."""
    rows = results["accuracy"]["intervals"][lane]
    w, h, pad = 300, 150, 30
    top = max([1, *(r["true_volume"] for r in rows), *(r["device_volume"] or 0 for r in rows)])
    n = max(1, len(rows) - 1)

    def point(i: int, v: float) -> str:
        return f"{pad + i / n * (w - pad - 10):.1f},{h - pad - v / top * (h - pad - 10):.1f}"

    true = " ".join(point(i, r["true_volume"]) for i, r in enumerate(rows))
    device = " ".join(point(i, r["device_volume"]) for i, r in enumerate(rows)
                      if r["device_volume"] is not None)  # fmt: skip
    body = [
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#999"/>',
        f'<text x="{pad - 4}" y="16" font-size="10" text-anchor="end">{top}</text>',
        f'<text x="{pad - 4}" y="{h - pad}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{w / 2:.0f}" y="{h - 8}" font-size="11" text-anchor="middle">'
        f"{html.escape(lane)}: vehicles per period</text>",
        f'<polyline points="{true}" fill="none" stroke="#0969da" stroke-width="2"/>',
        f'<polyline points="{device}" fill="none" stroke="#cf222e" stroke-width="1.5" '
        'stroke-dasharray="4 2"/>',
    ]
    return _svg(w, h, body, f"{lane}: true (blue) and reported (red) volume per period")


def occupancy_chart(results: dict[str, Any]) -> str:
    """Reported against true occupancy, every lane and period."""
    acc = results["accuracy"]
    points = [(r["true_occupancy_pct"], r["device_occupancy_pct"])
              for rows in acc["intervals"].values() for r in rows
              if r["device_occupancy_pct"] is not None
              and r["true_occupancy_pct"] is not None]  # fmt: skip
    top = max([5.0, *(max(p) for p in points)]) * 1.05
    w = h = 260
    pad = 30

    def xy(a: float, b: float) -> tuple[float, float]:
        return pad + a / top * (w - pad - 10), h - pad - b / top * (h - pad - 10)

    (x0, y0), (x1, y1) = xy(0, 0), xy(top, top)
    body = [
        f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#999"/>',
        f'<text x="{w / 2:.0f}" y="{h - 8}" font-size="11" text-anchor="middle">true occupancy %'
        f" (0-{top:.0f})</text>",
        f'<text x="12" y="{h / 2:.0f}" font-size="11" transform="rotate(-90 12 {h / 2:.0f})" '
        'text-anchor="middle">reported %</text>',
    ]
    for a, b in points:
        px, py = xy(a, b)
        body.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="#0969da" fill-opacity="0.6"/>')
    return _svg(w, h, body, "Reported against true occupancy per lane-period")


def occupied_bays(
    timelines: dict[str, dict[str, list[list[Any]]]], key: str, begin: float, end: float, step: float
) -> list[int]:
    """Bays occupied at each ``step`` from ``begin`` by ``key`` (truth or reported) timelines."""
    times = [begin + k * step for k in range(int((end - begin) / step) + 1)]
    counts = [0] * len(times)
    for lines in timelines.values():
        line = lines[key]
        j, state = 0, False
        for k, t in enumerate(times):
            while j < len(line) and line[j][0] <= t:
                state = bool(line[j][1])
                j += 1
            counts[k] += state
    return counts


def occupied_chart(results: dict[str, Any]) -> str:
    """Occupied bays over the run, true and as reported, once a minute."""
    sc, timelines = results["scenario"], results["parking"]["timelines"]
    begin, end = sc["begin_s"], sc["end_s"]
    true = occupied_bays(timelines, "truth", begin, end, 60.0)
    said = occupied_bays(timelines, "reported", begin, end, 60.0)
    w, h, pad = 640, 180, 34
    top = max([1, *true, *said])
    n = max(1, len(true) - 1)

    def line(values: list[int]) -> str:
        return " ".join(f"{pad + i / n * (w - pad - 10):.1f},{h - pad - v / top * (h - pad - 10):.1f}"
                        for i, v in enumerate(values))  # fmt: skip

    body = [
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#999"/>',
        f'<line x1="{pad}" y1="10" x2="{pad}" y2="{h - pad}" stroke="#999"/>',
        f'<text x="{pad - 4}" y="16" font-size="10" text-anchor="end">{top}</text>',
        f'<text x="{pad - 4}" y="{h - pad}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{w / 2:.0f}" y="{h - 8}" font-size="11" text-anchor="middle">occupied bays, '
        f"{begin:g}-{end:g} s</text>",
        f'<polyline points="{line(true)}" fill="none" stroke="#0969da" stroke-width="2"/>',
        f'<polyline points="{line(said)}" fill="none" stroke="#cf222e" stroke-width="1.5" '
        'stroke-dasharray="4 2"/>',
    ]
    return _svg(w, h, body, "Occupied bays: true (blue) and reported (red)")


def html_report(results: dict[str, Any]) -> str:
    plan = results["plan"]
    verdict = results["verdict"]
    head = markdown(results).split("## Cases")[0].splitlines()
    summary = [line[2:] for line in head if line.startswith("- ")]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Conformance {html.escape(plan['name'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;"
        "vertical-align:top;font-size:14px}th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:bold}"
        ".fail{color:#cf222e;font-weight:bold}.not-applicable{color:#6e7781}svg{margin:4px}"
        "code{font-size:12px}</style></head><body>",
        f"<h1>Conformance: {html.escape(plan['name'])} - "
        f"<span class='{verdict}'>{verdict.upper()}</span></h1>",
        f"<p>{html.escape(plan['description'] or '')}</p><ul>",
        *(f"<li>{html.escape(s)}</li>" for s in summary),
        "</ul><h2>Cases</h2><table><tr><th>case</th><th>outcome</th><th>what</th><th>evidence</th>"
        "<th>traced to</th></tr>",
    ]
    for c in results["cases"]:
        parts.append(
            f"<tr><td>{c['id']}</td><td class='{c['outcome']}'>{MARK[c['outcome']]}</td>"
            f"<td>{html.escape(c['title'])}</td><td>"
            + "<br>".join(html.escape(e) for e in c["evidence"])
            + f"</td><td>{html.escape('; '.join(c['refs']))}</td></tr>"
        )
    parts.append("</table>")
    rows = lane_rows(results)
    if rows:
        parts.append("<h2>Accuracy against ground truth</h2><table><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in LANE_HEADER) + "</tr>")  # fmt: skip
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table><h3>Volume error by condition (all lanes)</h3>")
        parts.append(_html_table(CONDITION_HEADER, condition_rows(results)))
        parts.append("<h3>Volume error per lane (dot), 95 % interval (bar), threshold (green)"
                     "</h3>" + error_chart(results))  # fmt: skip
        parts.append("<h3>Vehicles per period: true (blue) and reported (red, dashed)</h3><div>")
        parts += [volume_chart(results, lane) for lane in results["accuracy"]["intervals"]]
        parts.append("</div><h3>Occupancy: reported against true</h3>" + occupancy_chart(results))
        speed = detection.speed_rows(results)
        if speed:
            parts.append("<h3>Speed error (per lane, then by condition over all lanes)</h3>")
            parts.append(_html_table(detection.SPEED_HEADER, speed))
        presence = detection.presence_rows(results)
        if presence:
            parts.append("<h3>Presence calls and latency</h3>")
            parts.append(_html_table(detection.PRESENCE_HEADER, presence))
    parking = parking_rows(results)
    if parking:
        parts.append("<h2>Parking accuracy against ground truth</h2>")
        parts.append(_html_table(PARKING_HEADER, parking))
        parts.append("<h3>Occupied bays: true (blue) and as reported (red, dashed)</h3>"
                     + occupied_chart(results))  # fmt: skip
    if results["device"]["kind"] == "ntcip1202":
        from adapters.conformance import controller_report

        parts += controller_report.html_sections(results)
    if "sample_size" in results:
        size_text = html.escape(_sample_size(results)).replace("**", "")
        parts.append(f"<h2>How many {_unit(results)} a test needs</h2><p>{size_text}</p>")
    fit = results.get("fitted_profile")
    if fit and results["device"]["kind"] == "lorawan":
        parts.append(
            f"<h2>Fitted bay sensor profile (profile.toml)</h2><p>{html.escape(_bay_fit(fit))}</p>"
        )
    elif fit:
        low, high = fit["detection_probability_ci"]
        ci = "n/a" if low is None else f"{low:.3f} .. {high:.3f}"
        parts.append(
            f"<h2>Fitted sensor profile (profile.toml)</h2><p>detection probability "
            f"{fit['detection_probability']:.3f} (95 % CI {ci}), false detections "
            f"{fit['false_detections_per_h']:g} per detector-hour, occupancy noise sd "
            f"{fit['occupancy_noise_sd']:.4f}, from {fit['vehicles']} vehicles; "
            f"{html.escape(_detector_fit(fit))}</p>"
        )
    impact = impact_lines(results)
    if impact:
        parts.append("<h2>" + html.escape(impact[0].removeprefix("## ")) + "</h2><p>"
                     + html.escape(impact[2]) + "</p><ul>")  # fmt: skip
        parts += [f"<li>{html.escape(line[2:])}</li>" for line in impact[4:] if line]
        parts.append("</ul>")
    parts.append("<h2>Inputs (sha256)</h2><ul>")
    parts += [f"<li><code>{i['sha256']}</code> {html.escape(i['path'])}</li>" for i in results["inputs"]]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
