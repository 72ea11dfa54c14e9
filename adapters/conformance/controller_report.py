"""The parts of a conformance report that are a signal controller's (``device.kind =
"ntcip1202"``), rendered from results.json's content alone: the device lines, the phase status
against the truth per phase, the commands and what the intersection did, and a timeline of the
colours shown and reported (inline SVG).
"""

from __future__ import annotations

import html
import math
from typing import Any

from adapters.conformance.report import _html_table, _md_table, _svg

PHASE_HEADER = ["phase", "kind", "polls agreeing", "first disagreement"]
COMMAND_HEADER = ["command", "phase", "sent (s)", "released (s)", "SET", "simulated controller"]
FILL = {"G": "#2da44e", "Y": "#d4a72c", "R": "#cf222e", "-": "#8c959f", "?": "#ffffff"}


def device_lines(results: dict[str, Any]) -> list[str]:
    device, sc, th = results["device"], results["scenario"], results["thresholds"]
    ident = device["identity"] or {}
    phases = ", ".join(f"{p['phase']}{' (ped)' if p['pedestrian'] else ''}" for p in sc["phases"])
    return [
        f"- device: NTCIP 1202 actuated signal controller at {device['target']} ({device['address']})",
        f"- identity (read from the device): sysDescr '{ident.get('sysDescr', 'unreadable')}', "
        f"sysObjectID {ident.get('sysObjectID', 'unreadable')}, sysName '{ident.get('sysName', '')}'",
        f"- scenario: {sc['name']}, signal {sc['signal']} (phases {phases}); {sc['controller']} "
        f"seed {sc['seed']}, {sc['begin_s']:g}-{sc['end_s']:g} s",
        f"- thresholds: phase colours right >= {th['status_agreement_pct']:g} % of polls, changes "
        f"reported p95 <= {th['status_latency_p95_s']:g} s, commands show within "
        f"{th['command_settle_s']:g} s, answers p95 {th['response_p95_ms']:g} ms",
    ]


def phase_rows(results: dict[str, Any]) -> list[list[str]]:
    ctl = results.get("controller")
    if not ctl or "agreement" not in ctl:
        return []
    kinds = {p["phase"]: "pedestrian" if p["pedestrian"] else "vehicle"
             for p in results["scenario"]["phases"]}  # fmt: skip
    polls = ctl["agreement"]["polls"]
    return [[str(p["phase"]), kinds.get(p["phase"], ""),
             "n/a" if p["agree_pct"] is None else f"{p['agree_pct']:.1f} % of {polls}",
             p["first_disagreement"] or "-"] for p in ctl["agreement"]["phases"]]  # fmt: skip


def command_rows(results: dict[str, Any]) -> list[list[str]]:
    ctl = results.get("controller") or {}
    rows = []
    for c in ctl.get("commands", []):
        sets = "; ".join(f"{s['what']}: {s['status']}" for s in c["sets"]) or "not sent"
        until = (c["released_s"] or math.inf) + 2
        said = [o for o in ctl.get("overrides", [])
                if c["sent_s"] is not None and c["sent_s"] <= o["t"] <= until]  # fmt: skip
        answer = "; ".join(f"{o['action']} {'accepted' if o['accepted'] else 'refused'}: "
                           f"{o['detail']}" for o in said[:3]) or "-"  # fmt: skip
        rows.append([c["kind"], str(c["phase"] or "-"), _s(c["sent_s"]), _s(c["released_s"]), sets,
                     answer])  # fmt: skip
    return rows


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _latency_line(results: dict[str, Any]) -> str:
    lat = results["controller"]["latency"]
    p95 = "n/a (changes missed)" if lat["p95_s"] is None else f"{lat['p95_s']:g} s"
    mean = "n/a" if lat["mean_s"] is None else f"{lat['mean_s']:g} s"
    return (f"{lat['changes']} colour changes in the intersection: {lat['reported']} reported, "
            f"{lat['missed']} never reported; latency p95 {p95}, mean {mean} (simulated time, "
            f"polled every {results['controller']['step_s']:g} s step).")  # fmt: skip


def markdown_sections(results: dict[str, Any]) -> list[str]:
    ctl = results.get("controller")
    if not ctl or "agreement" not in ctl:
        return []
    a = ctl["agreement"]
    return [
        "", "## Phase status against the intersection", "",
        f"{a['agree_pct']:.2f} % of {a['polls']} polls x phases agree ({a['unanswered']} polls "
        "unanswered). " + _latency_line(results), "",
        *_md_table(PHASE_HEADER, phase_rows(results)),
        "", "## Commands and what the intersection did", "",
        *_md_table(COMMAND_HEADER, command_rows(results)),
    ]  # fmt: skip


def timeline_chart(results: dict[str, Any]) -> str:
    """Per phase, the colours shown (upper bar) and reported (lower bar) over the run."""
    ctl, sc = results["controller"], results["scenario"]
    begin, end = float(sc["begin_s"]), float(sc["end_s"])
    phases = len(sc["phases"])
    w, left, row = 900, 70, 34
    h = row * phases + 30

    def x(t: float) -> float:
        return left + (t - begin) / max(1e-9, end - begin) * (w - left - 10)

    body = []
    for key, dy in (("truth", 0), ("reported", 13)):
        points = ctl[key]
        for i, (t, colours) in enumerate(points):
            until = points[i + 1][0] if i + 1 < len(points) else end
            for k in range(phases):
                c = "?" if colours is None else (colours[k] if len(colours[k]) == 1 else "?")
                width = max(0.5, x(until) - x(t))
                body.append(f'<rect x="{x(t):.1f}" y="{8 + row * k + dy}" width="{width:.1f}" '
                            f'height="11" fill="{FILL.get(c, "#fff")}"/>')  # fmt: skip
    for k in range(phases):
        body.append(f'<text x="{left - 6}" y="{8 + row * k + 16}" font-size="11" text-anchor="end">'
                    f"phase {k + 1}</text>")  # fmt: skip
    for c in ctl["commands"]:
        if c["sent_s"] is not None:
            at = x(c["sent_s"])
            body.append(f'<line x1="{at:.1f}" y1="4" x2="{at:.1f}" y2="{h - 20}" stroke="#0969da" '
                        f'stroke-dasharray="3 2"/><text x="{at + 2:.1f}" y="{h - 8}" '
                        f'font-size="10">{html.escape(c["kind"])} {c["phase"]}</text>')  # fmt: skip
    return _svg(w, h, body, "Phase colours: shown (upper bar) and reported (lower bar)")


def html_sections(results: dict[str, Any]) -> list[str]:
    ctl = results.get("controller")
    if not ctl or "agreement" not in ctl:
        return []
    a = ctl["agreement"]
    return [
        "<h2>Phase status against the intersection</h2>",
        f"<p>{a['agree_pct']:.2f} % of {a['polls']} polls x phases agree ({a['unanswered']} polls "
        f"unanswered). {html.escape(_latency_line(results))}</p>",
        _html_table(PHASE_HEADER, phase_rows(results)),
        "<h3>Colours shown (upper bar) and reported (lower bar); white: none or several</h3>",
        timeline_chart(results),
        "<h2>Commands and what the intersection did</h2>",
        _html_table(COMMAND_HEADER, command_rows(results)),
    ]
