"""A signal controller's accuracy against ground truth (ACC-PHS-*, ACC-CMD-*), pure: what the
intersection showed each step and what the controller reported at each poll in; each case's
outcome out.

Colours are one letter per phase: ``G`` green, ``Y`` yellow, ``R`` red, ``-`` dark (no colour).
The truth of a phase is the colour of its first link in SUMO's state (the same mapping ccsim's
own agents use); what a controller reports is the set of phaseStatusGroup Reds / Yellows / Greens
bitmaps its bit is in, so a phase in two of them reads ``GR`` and agrees with nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.conformance.cases import CaseResult, judged, not_applicable
from adapters.ntcip.model import GREEN, RED, YELLOW, SignalLayout

Colours = tuple[str, ...]
"""One entry per phase, in phase order: "G", "Y", "R", "-" (truth) or any of "GYR" combined,
"" for none (reported)."""


def colour_of(char: str) -> str:
    """SUMO's link character as a phase colour."""
    return "G" if char in GREEN else "Y" if char in YELLOW else "R" if char in RED else "-"


def truth_colours(layout: SignalLayout, state: str) -> Colours:
    """What each phase shows in SUMO's per-link ``state``."""
    return tuple(colour_of(state[g.links[0]]) if g.links[0] < len(state) else "-" for g in layout.groups)


def reported_colours(phases: int, reds: set[int], yellows: set[int], greens: set[int]) -> Colours:
    """Each phase's colours as the status groups report them."""
    return tuple(
        "".join(c for c, on in (("G", n in greens), ("Y", n in yellows), ("R", n in reds)) if on)
        for n in range(1, phases + 1)
    )


def steady(layout: SignalLayout, colours: Colours) -> bool:
    """A vehicle phase is green and nothing is changing (no yellow): a command sent now meets
    the controller between its decisions, not in the middle of a change."""
    vehicle = [c for g, c in zip(layout.groups, colours, strict=True) if not g.pedestrian]
    return "G" in vehicle and "Y" not in colours


@dataclass(frozen=True)
class Poll:
    """One read of the phase status: at simulated ``t``, its colours (None: no answer)."""

    t: float
    colours: Colours | None


@dataclass(frozen=True)
class SetRecord:
    """One SET the harness sent, and what came of it."""

    t: float
    what: str
    """``object.index = value``."""
    status: str
    """``noError`` or the error status's name (or why there was no answer)."""
    echoed: int | None = None
    read_back: int | None = None
    value: int = 0


@dataclass
class Command:
    """A command the harness gives the controller during the run (hold, omit or call a phase)."""

    kind: str
    at_s: float
    """When it is due (it is sent at the first steady step from then)."""
    for_s: float
    phase: int | None = None
    sent_s: float | None = None
    released_s: float | None = None
    sets: list[SetRecord] = field(default_factory=list)
    shown: bool | None = None
    """call: whether phaseStatusGroupVehCalls showed the call right after the SET."""
    deadline_s: float = math.inf
    """Not sent by then (no steady moment): skipped."""
    skipped: bool = False

    @property
    def accepted(self) -> bool:
        return bool(self.sets) and self.sets[0].status == "noError"


# --- status against the truth -------------------------------------------------------------------


def agreement(truth: dict[float, Colours], polls: Sequence[Poll]) -> dict[str, Any]:
    """Per phase and overall: how many polls reported the colour the intersection showed."""
    phases = len(next(iter(truth.values()))) if truth else 0
    agree = [0] * phases
    judged_polls = [p for p in polls if p.t in truth]
    example: list[str | None] = [None] * phases
    for poll in judged_polls:
        shown = truth[poll.t]
        for k in range(phases):
            said = poll.colours[k] if poll.colours is not None else None
            if said == shown[k]:
                agree[k] += 1
            elif example[k] is None:
                example[k] = (f"at {poll.t:g} s phase {k + 1} showed {shown[k]}, reported "
                              f"{'no answer' if said is None else repr(said)}")  # fmt: skip
    n = len(judged_polls)
    return {
        "polls": n,
        "unanswered": sum(1 for p in judged_polls if p.colours is None),
        "agree_pct": round(100 * sum(agree) / (n * phases), 3) if n and phases else None,
        "phases": [
            {"phase": k + 1, "agree_pct": round(100 * agree[k] / n, 3) if n else None,
             "first_disagreement": example[k]}
            for k in range(phases)
        ],
    }  # fmt: skip


def colour_changes(truth: Sequence[tuple[float, Colours]]) -> list[tuple[float, int, str]]:
    """Every change of a phase's colour: (t, phase, new colour)."""
    changes: list[tuple[float, int, str]] = []
    for (_, before), (t, now) in itertools.pairwise(truth):
        changes += [(t, k + 1, now[k]) for k in range(len(now)) if now[k] != before[k]]
    return changes


def latencies(
    truth: Sequence[tuple[float, Colours]], polls: Sequence[Poll]
) -> tuple[list[float], list[str]]:
    """How late each colour change was reported (s), and the changes never reported.

    Per phase, the true changes and the reported ones are matched in order: a true change to
    colour c at t is the first reported change at or after t (not matched to an earlier one)
    if that is to c, else it was missed - so a pure lag is its latency for every change, even
    one shorter than the lag, and a skipped or stuck colour is missed.
    """
    phases = len(truth[0][1]) if truth else 0
    reported: list[list[tuple[float, str | None]]] = [[] for _ in range(phases)]
    for poll in polls:
        for k in range(phases):
            colour = None if poll.colours is None else poll.colours[k]
            if not reported[k] or reported[k][-1][1] != colour:
                reported[k].append((poll.t, colour))
    cursor = [0] * phases
    found, missed = [], []
    for t, phase, colour in colour_changes(truth):
        k, seen = phase - 1, reported[phase - 1]
        while cursor[k] < len(seen) and seen[cursor[k]][0] < t:
            cursor[k] += 1
        if cursor[k] < len(seen) and seen[cursor[k]][1] == colour:
            found.append(seen[cursor[k]][0] - t)
            cursor[k] += 1
        else:
            missed.append(f"phase {phase} {colour} at {t:g} s never reported")
    return found, missed


def p95(values: Sequence[float]) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else None


def status_cases(
    truth: Sequence[tuple[float, Colours]], polls: Sequence[Poll], agreement_pct: float,
    latency_p95_s: float, wanted: Sequence[str],
) -> tuple[list[CaseResult], dict[str, Any]]:  # fmt: skip
    """ACC-PHS-1 and ACC-PHS-2, and the figures behind them."""
    agreed = agreement(dict(truth), polls)
    found, missed = latencies(truth, polls)
    n = len(found) + len(missed)
    late95 = p95(found + [math.inf] * len(missed))
    figures = {
        "agreement": agreed,
        "latency": {
            "changes": n, "reported": len(found), "missed": len(missed),
            "p95_s": None if late95 is None or math.isinf(late95) else round(late95, 3),
            "max_s": round(max(found), 3) if found else None,
            "mean_s": round(sum(found) / len(found), 3) if found else None,
            "missed_examples": missed[:10],
        },
    }  # fmt: skip
    results = []
    if "ACC-PHS-1" in wanted:
        share = agreed["agree_pct"]
        if share is None:
            results.append(not_applicable("ACC-PHS-1", "no poll of the phase status to judge"))
        else:
            below = [f"phase {p['phase']}: {p['agree_pct']:.1f} % ({p['first_disagreement']})"
                     for p in agreed["phases"] if p["agree_pct"] < agreement_pct]  # fmt: skip
            failures = ([f"{share:.2f} % of {agreed['polls']} polls x phases agree, threshold "
                         f"{agreement_pct:g} %", *below] if share < agreement_pct else [])  # fmt: skip
            results.append(judged("ACC-PHS-1", failures, f"{share:.2f} % of {agreed['polls']} polls "
                                  f"x {len(agreed['phases'])} phases agree (threshold "
                                  f"{agreement_pct:g} %)", agree_pct=share))  # fmt: skip
    if "ACC-PHS-2" in wanted:
        if not n:
            results.append(not_applicable("ACC-PHS-2", "no colour change during the run"))
        else:
            shown = "never (some changes missed)" if late95 is None or math.isinf(late95) else (
                f"{late95:g} s")  # fmt: skip
            failures = []
            if late95 is None or late95 > latency_p95_s:
                failures.append(f"p95 latency {shown} over {n} colour changes ({len(missed)} never "
                                f"reported), threshold {latency_p95_s:g} s")  # fmt: skip
                failures += missed[:5]
            results.append(judged("ACC-PHS-2", failures, f"{n} colour changes reported, p95 "
                                  f"{shown} late (threshold {latency_p95_s:g} s)",
                                  p95_s=figures["latency"]["p95_s"], missed=len(missed)))  # fmt: skip
    return results, figures


# --- commands ---------------------------------------------------------------------------------


def onsets(truth: Sequence[tuple[float, Colours]], phase: int, begin: float, end: float) -> list[float]:
    """When ``phase`` turned green within ``[begin, end]``."""
    k = phase - 1
    return [t for (_, a), (t, b) in itertools.pairwise(truth)
            if begin <= t <= end and b[k] == "G" and a[k] != "G"]  # fmt: skip


def longest_green(truth: Sequence[tuple[float, Colours]], phase: int, end: float) -> float:
    """The longest uninterrupted green of ``phase`` before ``end`` (s)."""
    best, since = 0.0, None
    for t, colours in truth:
        if t >= end:
            break
        if colours[phase - 1] == "G":
            since = t if since is None else since
            best = max(best, t - since)
        else:
            since = None
    return best


def _window(truth: Sequence[tuple[float, Colours]], begin: float, end: float) -> list[Colours]:
    return [c for t, c in truth if begin <= t <= end]


def _set_problem(command: Command) -> str | None:
    if command.sent_s is None:
        return None
    first = command.sets[0] if command.sets else None
    if first is None or first.status != "noError":
        return f"SET {first.what if first else command.kind}: {first.status if first else 'not sent'}"
    return None


def command_cases(
    commands: Sequence[Command], truth: Sequence[tuple[float, Colours]], settle_s: float,
    wanted: Sequence[str],
) -> list[CaseResult]:  # fmt: skip
    """ACC-CMD-1 (hold), ACC-CMD-2 (omit), ACC-CMD-3 (call)."""
    by_kind = {c.kind: c for c in commands}
    results = []
    for case, kind, judge in (("ACC-CMD-1", "hold", _hold), ("ACC-CMD-2", "omit", _omit),
                              ("ACC-CMD-3", "call", _call)):  # fmt: skip
        if case not in wanted:
            continue
        command = by_kind.get(kind)
        if command is None or command.sent_s is None or command.phase is None:
            why = (
                "the run is too short for it"
                if command is None
                else f"no steady moment with a red vehicle phase from {command.at_s:g} s to send it"
            )
            results.append(not_applicable(case, why))
            continue
        problem = _set_problem(command)
        if problem is not None:
            results.append(judged(case, [problem], ""))
            continue
        results.append(judge(case, command, truth, settle_s))
    return results


def _hold(case: str, c: Command, truth: Sequence[tuple[float, Colours]], settle_s: float) -> CaseResult:
    assert c.sent_s is not None and c.phase is not None
    end = c.released_s if c.released_s is not None else truth[-1][0]
    begin = c.sent_s + settle_s
    window = _window(truth, begin, end)
    green = sum(1 for colours in window if colours[c.phase - 1] == "G")
    share = 100 * green / len(window) if window else 0.0
    before = longest_green(truth, c.phase, c.sent_s)
    seen = (f"phase {c.phase} held at {c.sent_s:g} s, released at {end:g} s: green {share:.1f} % "
            f"of {begin:g}-{end:g} s (its longest green before: {before:g} s)")  # fmt: skip
    failures = [] if window and share >= 99.0 else [seen]
    return judged(case, failures, seen, green_pct=round(share, 2), longest_green_before_s=before)


def _omit(case: str, c: Command, truth: Sequence[tuple[float, Colours]], settle_s: float) -> CaseResult:
    assert c.sent_s is not None and c.phase is not None
    end = c.released_s if c.released_s is not None else truth[-1][0]
    span = end - c.sent_s
    baseline = onsets(truth, c.phase, c.sent_s - span, c.sent_s)
    during = onsets(truth, c.phase, c.sent_s + settle_s, end)
    green = sum(1 for colours in _window(truth, c.sent_s + settle_s, end)
                if colours[c.phase - 1] == "G")  # fmt: skip
    if not baseline:
        return not_applicable(case, f"phase {c.phase} was not served in the {span:g} s before the "
                              "omit either: its effect cannot be told")  # fmt: skip
    seen = (f"phase {c.phase} omitted {c.sent_s:g}-{end:g} s: served {len(during)} times "
            f"(green {green} s) after {settle_s:g} s to settle; {len(baseline)} times in the "
            f"{span:g} s before")  # fmt: skip
    failures = [seen] if during or green else []
    return judged(case, failures, seen, served=len(during), served_before=len(baseline))


def _call(case: str, c: Command, truth: Sequence[tuple[float, Colours]], settle_s: float) -> CaseResult:
    assert c.sent_s is not None and c.phase is not None
    end = c.released_s if c.released_s is not None else truth[-1][0]
    served = onsets(truth, c.phase, c.sent_s, end)
    failures = []
    if not c.shown:
        failures.append(f"phaseStatusGroupVehCalls did not show the call on phase {c.phase} "
                        "right after the SET")  # fmt: skip
    if not served:
        failures.append(f"phase {c.phase} called at {c.sent_s:g} s, not served by {end:g} s")
    seen = (f"call on phase {c.phase} at {c.sent_s:g} s shown in phaseStatusGroupVehCalls, "
            f"served {served[0] - c.sent_s:g} s later" if served else "")  # fmt: skip
    return judged(case, failures, seen,
                  served_after_s=served[0] - c.sent_s if served else None)  # fmt: skip
