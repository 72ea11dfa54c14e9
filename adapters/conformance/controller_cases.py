"""The protocol cases of an NTCIP 1202 actuated signal controller (ASC-*), read and written over
SNMP through ccsim's manager (:class:`adapters.ntcip.manager.Manager`), each judged from what came
back.

Types are judged from each value's BER tag as the device sent it (every 1202 object here is an
INTEGER), ranges from ccsim's table of 1202 objects (:data:`adapters.ntcip.oids.OBJECTS_1202`).
The refused-SET cases are sent in SNMPv2c and in SNMPv1, whose error statuses differ (RFC 3584);
the accepted SETs write the value the controller already has, or are the run's commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.conformance.cases import CaseResult, judged, not_applicable
from adapters.conformance.controller_accuracy import Colours, SetRecord, reported_colours
from adapters.conformance.protocol_cases import TAG_NAMES, Station, _status
from adapters.conformance.protocol_cases import timing_case as timing
from adapters.ntcip import ber
from adapters.ntcip.manager import Manager, ManagerError
from adapters.ntcip.oids import OBJECTS_1202, OID
from adapters.ntcip.protocol import ErrorStatus

PHASE_COLUMNS = ("phaseNumber", "phaseWalk", "phasePedestrianClear", "phaseMinimumGreen",
                 "phaseYellowChange", "phaseRedClear", "phaseOptions", "phaseRing")  # fmt: skip
STATUS_COLUMNS = ("phaseStatusGroupNumber", "phaseStatusGroupReds", "phaseStatusGroupYellows",
                  "phaseStatusGroupGreens", "phaseStatusGroupDontWalks",
                  "phaseStatusGroupPedClears", "phaseStatusGroupWalks", "phaseStatusGroupVehCalls",
                  "phaseStatusGroupPedCalls", "phaseStatusGroupPhaseOns",
                  "phaseStatusGroupPhaseNexts")  # fmt: skip
CONTROL_COLUMNS = ("phaseControlGroupNumber", "phaseControlGroupPhaseOmit",
                   "phaseControlGroupPedOmit", "phaseControlGroupHold", "phaseControlGroupForceOff",
                   "phaseControlGroupVehCall", "phaseControlGroupPedCall")  # fmt: skip
SCALARS = ("maxPhases", "maxPhaseGroups", "unitControlStatus", "unitFlashStatus",
           "coordPatternStatus", "systemPatternControl")  # fmt: skip
COLOURS = ("phaseStatusGroupReds", "phaseStatusGroupYellows", "phaseStatusGroupGreens")


def oid(name: str, *index: int) -> OID:
    return OBJECTS_1202[name].instance(*index)


@dataclass
class Shape:
    """How many phases and phase groups the controller says it has, and which are enabled."""

    phases: int | None = None
    groups: int | None = None
    enabled: frozenset[int] = frozenset()


@dataclass
class StatusObservations:
    """Every poll of the phase status (ASC-TBL-3)."""

    polls: int = 0
    problems: list[str] = field(default_factory=list)


def _int(tlv: bytes | None) -> int | None:
    """An INTEGER-tagged value (anything else: None)."""
    if not tlv or tlv[0] != ber.INTEGER:
        return None
    value = ber.decode_value(tlv)
    return value if isinstance(value, int) else None


async def read_shape(dut: Station) -> Shape:
    """maxPhases, maxPhaseGroups and the phases whose phaseOptions say enabled (bit 0)."""
    tlvs = await dut.get([oid("maxPhases"), oid("maxPhaseGroups")])
    phases, groups = _int(tlvs.get(oid("maxPhases"))), _int(tlvs.get(oid("maxPhaseGroups")))
    enabled: set[int] = set()
    if phases:
        options = await dut.get([oid("phaseOptions", n) for n in range(1, phases + 1)])
        enabled = {n for n in range(1, phases + 1) if (_int(options.get(oid("phaseOptions", n)))
                                                        or 0) & 1}  # fmt: skip
    return Shape(phases, groups, frozenset(enabled))


def required(shape: Shape) -> list[tuple[str, OID]]:
    """Every instance a controller of ``shape`` has (its phases and phase groups)."""
    rows = [(name, oid(name)) for name in SCALARS]
    for n in range(1, (shape.phases or 0) + 1):
        rows += [(c, oid(c, n)) for c in PHASE_COLUMNS]
    for g in range(1, (shape.groups or 0) + 1):
        rows += [(c, oid(c, g)) for c in (*STATUS_COLUMNS, *CONTROL_COLUMNS)]
    return rows


async def objects_cases(dut: Station, shape: Shape, wanted: Sequence[str]) -> list[CaseResult]:
    """ASC-OBJ-1 (present), ASC-OBJ-2 (types), ASC-OBJ-3 (ranges)."""
    cases = [c for c in ("ASC-OBJ-1", "ASC-OBJ-2", "ASC-OBJ-3") if c in wanted]
    rows = required(shape)
    try:
        tlvs = await dut.get([o for _, o in rows])
    except ManagerError as exc:
        return [judged(c, [f"GET failed: {_status(exc)}"], "") for c in cases]
    absent, mistyped, out_of_range = [], [], []
    if shape.phases is None or shape.groups is None:
        absent.append("maxPhases / maxPhaseGroups unreadable as INTEGER: phase rows not checked")
    for name, instance in rows:
        tlv = tlvs.get(instance, b"")
        tag = tlv[0] if tlv else -1
        dotted = ".".join(map(str, instance))
        if tag in (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE, -1):
            absent.append(f"{name} {dotted}: {TAG_NAMES.get(tag, 'no value')}")
        elif tag != ber.INTEGER:
            mistyped.append(f"{name} {dotted}: {TAG_NAMES.get(tag, hex(tag))} "
                            f"{ber.decode_value(tlv)!r}, expected INTEGER")  # fmt: skip
        else:
            value = ber.decode_value(tlv)
            obj = OBJECTS_1202[name]
            if isinstance(value, int) and not obj.low <= value <= obj.high:
                out_of_range.append(f"{name} {dotted} = {value}: outside {obj.low}..{obj.high}")
    n = len(rows)
    found = {
        "ASC-OBJ-1": judged(
            "ASC-OBJ-1",
            absent,
            f"{n} instances answered ({shape.phases} phases, {shape.groups} phase groups)",
            instances=n,
        ),
        "ASC-OBJ-2": judged("ASC-OBJ-2", mistyped, f"{n - len(absent)} values INTEGER"),
        "ASC-OBJ-3": judged("ASC-OBJ-3", out_of_range, "every value within its range"),
    }
    return [found[c] for c in cases]


async def _rows(dut: Station, name: str) -> list[tuple[int, object]]:
    walked = await dut.manager.walk(dut.target, OBJECTS_1202[name].oid)
    return [(o[-1], value) for o, value in walked]


async def phase_table_case(dut: Station, shape: Shape) -> CaseResult:
    """ASC-TBL-1: the walk of phaseNumber is rows 1..maxPhases, numbered as indexed."""
    try:
        rows = await _rows(dut, "phaseNumber")
    except ManagerError as exc:
        return judged("ASC-TBL-1", [f"walk failed: {_status(exc)}"], "")
    failures = []
    if rows != [(n, n) for n in range(1, len(rows) + 1)]:
        failures.append(f"phaseNumber rows {rows[:10]} are not 1..n numbered as indexed")
    if shape.phases != len(rows):
        failures.append(f"maxPhases = {shape.phases!r} but the phase table has {len(rows)} rows")
    return judged("ASC-TBL-1", failures, f"{len(rows)} phases numbered 1..{len(rows)}", phases=len(rows))


async def group_tables_case(dut: Station, shape: Shape) -> CaseResult:
    """ASC-TBL-2: maxPhaseGroups = (maxPhases + 7) / 8, and both group tables that many rows."""
    failures = []
    if shape.phases is not None and shape.groups != (shape.phases + 7) // 8:
        failures.append(f"maxPhaseGroups = {shape.groups!r} for maxPhases = {shape.phases}: expected "
                        f"{(shape.phases + 7) // 8}")  # fmt: skip
    for name in ("phaseStatusGroupNumber", "phaseControlGroupNumber"):
        try:
            rows = await _rows(dut, name)
        except ManagerError as exc:
            failures.append(f"walk of {name} failed: {_status(exc)}")
            continue
        if rows != [(n, n) for n in range(1, len(rows) + 1)] or len(rows) != shape.groups:
            failures.append(f"{name} rows {rows[:10]}: expected 1..{shape.groups} numbered as indexed")
    return judged("ASC-TBL-2", failures, f"{shape.groups} phase groups for {shape.phases} phases; "
                  "status and control groups numbered 1..n")  # fmt: skip


async def poll_status(dut: Station, phases: int, groups: int) -> tuple[Colours, dict[str, list[int]]]:
    """The phase colours now, and the raw Reds / Yellows / Greens bitmaps (raises ManagerError).
    Bitmaps of any integer type are read: a wrong type is ASC-OBJ-2's finding, not a colour."""
    oids = [oid(c, g) for c in COLOURS for g in range(1, groups + 1)]
    tlvs = await dut.manager.get_tlvs(dut.target, oids, timeout_s=2.0)
    masks: dict[str, list[int]] = {}
    numbers: dict[str, set[int]] = {}
    for c in COLOURS:
        masks[c] = []
        numbers[c] = set()
        for g in range(1, groups + 1):
            value = ber.decode_value(tlvs.get(oid(c, g), b""))
            mask = value if isinstance(value, int) else 0
            masks[c].append(mask)
            numbers[c] |= {8 * (g - 1) + b + 1 for b in range(8) if mask >> b & 1}
    colours = reported_colours(phases, *(numbers[c] for c in COLOURS))
    return colours, masks


def status_problems(t: float, colours: Colours, masks: dict[str, list[int]], shape: Shape) -> list[str]:
    """What is inconsistent in one poll: an enabled phase in no colour or in several, a bit set
    for a phase beyond maxPhases."""
    problems = []
    for n in sorted(shape.enabled):
        if n <= len(colours) and len(colours[n - 1]) != 1:
            shown = colours[n - 1] or "no colour"
            problems.append(f"at {t:g} s phase {n} reported {shown}")
    top = shape.phases or 0
    for name, row in masks.items():
        for g, mask in enumerate(row, start=1):
            extra = [8 * (g - 1) + b + 1 for b in range(8) if mask >> b & 1 and 8 * (g - 1) + b >= top]
            if extra:
                problems.append(f"at {t:g} s {name}.{g} has phases {extra} beyond maxPhases {top}")
    return problems


def consistency_case(observed: StatusObservations) -> CaseResult:
    """ASC-TBL-3, from every poll of the phase status."""
    if not observed.polls:
        return not_applicable("ASC-TBL-3", "the phase status was never read")
    return judged("ASC-TBL-3", observed.problems, f"{observed.polls} polls: every enabled phase in "
                  "exactly one colour, no bit beyond maxPhases", polls=observed.polls)  # fmt: skip


async def set_value(dut: Station, name: str, index: int, value: int, t: float) -> SetRecord:
    """SET ``name.index = value`` with the write community, and read it back."""
    what = f"{name}.{index} = {value}"
    assert dut.write is not None
    try:
        echoed = ber.decode_value(await dut.manager.set_tlv(dut.target, oid(name, index),
                                                            ber.encode_integer(value),
                                                            community=dut.write))  # fmt: skip
        back = ber.decode_value((await dut.get([oid(name, index)]))[oid(name, index)])
    except ManagerError as exc:
        return SetRecord(t, what, _status(exc), value=value)
    return SetRecord(t, what, "noError", echoed if isinstance(echoed, int) else None,
                     back if isinstance(back, int) else None, value)  # fmt: skip


async def set_cases(
    dut: Station, v1: Manager, shape: Shape, run_sets: Sequence[SetRecord], wanted: Sequence[str]
) -> list[CaseResult]:
    """ASC-SET-1 (the run's SETs and two more of current values), ASC-SET-2 .. ASC-SET-6 (each
    in v2c and v1)."""
    results: list[CaseResult] = []
    if dut.write is None:
        return [not_applicable(c, "the plan gives no write community") for c in
                ("ASC-SET-1", "ASC-SET-2", "ASC-SET-3", "ASC-SET-4", "ASC-SET-5", "ASC-SET-6")
                if c in wanted]  # fmt: skip
    groups = shape.groups or 1
    if "ASC-SET-1" in wanted:
        current = await dut.get([oid("systemPatternControl"), oid("phaseControlGroupVehCall", 1)])
        records = list(run_sets)
        for name, index in (("systemPatternControl", 0), ("phaseControlGroupVehCall", 1)):
            tlv = current.get(oid(name, index), b"")
            value = _int(tlv)
            if value is None:  # t 0: after the run, outside its timeline
                records.append(SetRecord(0.0, f"{name}.{index}", f"unreadable ({tlv!r})"))
            else:
                records.append(await set_value(dut, name, index, value, 0.0))
        failures = [
            f"SET {r.what}: {r.status}" + ("" if r.status != "noError" else
                                           f", echoed {r.echoed!r}, read back {r.read_back!r}")
            for r in records
            if r.status != "noError" or r.echoed != r.value or r.read_back != r.value
        ]  # fmt: skip
        results.append(judged("ASC-SET-1", failures, f"{len(records)} SETs accepted, echoed and read "
                              "back (" + "; ".join(r.what for r in records[:6]) + ")",
                              sets=len(records)))  # fmt: skip
    refusals: list[tuple[str, OID, bytes, bytes, ErrorStatus, ErrorStatus, str]] = [
        ("ASC-SET-2", oid("phaseStatusGroupGreens", 1), ber.encode_integer(0), dut.write,
         ErrorStatus.NOT_WRITABLE, ErrorStatus.NO_SUCH_NAME, "phaseStatusGroupGreens.1 = 0"),
        ("ASC-SET-3", oid("phaseControlGroupHold", 1), ber.encode_integer(256), dut.write,
         ErrorStatus.WRONG_VALUE, ErrorStatus.BAD_VALUE, "phaseControlGroupHold.1 = 256 (0..255)"),
        ("ASC-SET-4", oid("phaseControlGroupVehCall", 1), ber.tlv(ber.OCTET_STRING, b"0"), dut.write,
         ErrorStatus.WRONG_TYPE, ErrorStatus.BAD_VALUE, "phaseControlGroupVehCall.1 = OCTET STRING '0'"),
        ("ASC-SET-5", oid("phaseControlGroupHold", groups + 1), ber.encode_integer(0), dut.write,
         ErrorStatus.NO_CREATION, ErrorStatus.NO_SUCH_NAME,
         f"phaseControlGroupHold.{groups + 1} = 0 (no such group)"),
        ("ASC-SET-6", oid("phaseControlGroupVehCall", 1), ber.encode_integer(0), dut.read,
         ErrorStatus.NO_ACCESS, ErrorStatus.NO_SUCH_NAME,
         "phaseControlGroupVehCall.1 = 0 (read community)"),
    ]  # fmt: skip
    for case, instance, tlv_value, community, v2, v1_status, what in refusals:
        if case not in wanted:
            continue
        seen, failures = [], []
        for version, manager, expected in (("v2c", dut.manager, v2), ("v1", v1, v1_status)):
            try:
                answer = await manager.set_tlv(dut.target, instance, tlv_value, community=community)
            except ManagerError as exc:
                got = _status(exc)
                seen.append(f"{version} {got}")
                if exc.status != expected:
                    failures.append(f"SET {what} in {version}: {got}, expected {expected.label}")
            else:
                failures.append(f"SET {what} in {version} accepted ({ber.decode_value(answer)!r}), "
                                f"expected {expected.label}")  # fmt: skip
        results.append(judged(case, failures, f"SET {what}: " + ", ".join(seen)))
    return results


async def timing_case(dut: Station, groups: int, requests: int, p95_limit_ms: float) -> CaseResult:
    """ASC-TIM-1: ``requests`` GETs of the phase colours, one after the other."""
    oids = [oid(c, g) for c in COLOURS for g in range(1, groups + 1)]
    return await timing(dut, requests, p95_limit_ms, case_id="ASC-TIM-1", oids=oids)
