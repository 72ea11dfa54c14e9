"""The protocol cases of a LoRaWAN parking sensor (LORA-*), pure: the MQTT messages recorded on
the plan's topic, in arrival order, in; each case's outcome out.

What the harness sees of a LoRaWAN device is what its network server publishes, so the cases
judge that: the topic and the JSON of The Things Stack v3 or ChirpStack v4, the frame counter
each uplink carries, the vendor payload against the vendor's codec, the heartbeat period.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.conformance.cases import CaseResult, judged, not_applicable
from adapters.lorawan.codecs import Frame, PayloadError, codec_for
from adapters.lorawan.registry import Registry
from adapters.lorawan.uplink import Format, Uplink, UplinkError, format_of, parse

HEARTBEAT_TOLERANCE = 0.10
"""A heartbeat may come this share of the period early or late (clock drift, duty-cycle waits)."""


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message on the plan's topic filter, as it arrived."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class Expected:
    """What the plan says the device is: server format, model, devices, heartbeat (s)."""

    fmt: Format
    model: str
    registry: Registry
    heartbeat_s: float
    epoch_s: float = 0.0
    """Subtracted from ``received_at`` to give the times in evidence (the simulation's clock)."""


def parsed(records: Sequence[Received]) -> list[tuple[Received, Uplink | UplinkError]]:
    out: list[tuple[Received, Uplink | UplinkError]] = []
    for r in records:
        try:
            out.append((r, parse(r.topic, r.payload)))
        except UplinkError as exc:
            out.append((r, exc))
    return out


def identity(records: Sequence[Received], ex: Expected) -> dict[str, str]:
    """The device as its uplinks describe it: model (as the server names it), devices heard,
    DevEUIs, firmware (from a start-up frame that carries it)."""
    ups = [u for _, u in parsed(records) if isinstance(u, Uplink)]
    models = sorted({u.model for u in ups if u.model})
    euis = sorted({u.dev_eui for u in ups})
    firmware: set[str] = set()
    codec = codec_for(ex.model)
    for u in ups:
        try:
            data = codec.decode(u.f_port, u.payload)
        except PayloadError:
            continue
        for key in ("firmware_version", "firmwareVersion", "firmware"):
            if key in data:
                firmware.add(str(data[key]))
    return {
        "model": ", ".join(models) or f"{ex.model} (the plan's; the server does not name it)",
        "devices": f"{len(euis)} heard of {len(ex.registry)} registered",
        "dev_eui": f"{euis[0]} .. {euis[-1]}" if euis else "none",
        "firmware": ", ".join(sorted(firmware)) or "not reported",
        "network_server": "The Things Stack v3" if ex.fmt is Format.TTS else "ChirpStack v4",
    }


def protocol_cases(
    records: Sequence[Received], ex: Expected, run_s: float, wanted: Sequence[str]
) -> list[CaseResult]:
    """Every LORA-* case in ``wanted``; ``run_s`` is how long the device was listened to."""
    items = parsed(records)
    ups = [(r, u) for r, u in items if isinstance(u, Uplink)]
    checks: dict[str, Callable[[], CaseResult]] = {
        "LORA-TOP-1": lambda: _topics(records, ex),
        "LORA-JSON-1": lambda: _json(items),
        "LORA-ID-1": lambda: _devices(ups, ex),
        "LORA-FCNT-1": lambda: _monotonic(ups, ex),
        "LORA-FCNT-2": lambda: _duplicates(ups, ex),
        "LORA-COD-1": lambda: _codec(ups, ex),
        "LORA-COD-2": lambda: _formatter(ups, ex),
        "LORA-HB-1": lambda: _heartbeat(ups, ex, run_s),
    }
    if not records:
        return [judged(c, ["no message arrived on the topic"], "") for c in checks if c in wanted]
    return [check() for case, check in checks.items() if case in wanted]


def _topics(records: Sequence[Received], ex: Expected) -> CaseResult:
    wrong = [r.topic for r in records if format_of(r.topic) is not ex.fmt]
    shown = [f"{t}: not a {ex.fmt.value} uplink topic" for t in dict.fromkeys(wrong)]
    return judged("LORA-TOP-1", shown, f"{len(records)} messages on {ex.fmt.value} uplink topics")


def _json(items: Sequence[tuple[Received, Uplink | UplinkError]]) -> CaseResult:
    bad = [f"{r.topic}: {u}" for r, u in items if isinstance(u, UplinkError)]
    return judged("LORA-JSON-1", bad, f"{len(items)} uplink events parsed, each the topic's device",
                  messages=len(items))  # fmt: skip


def _devices(ups: Sequence[tuple[Received, Uplink]], ex: Expected) -> CaseResult:
    failures = []
    for _, u in ups:
        if ex.registry.find(u.device_id, u.dev_eui) is None:
            failures.append(f"{u.device_id} (DevEUI {u.dev_eui}) is not a registered device")
        elif u.model and u.model != ex.model:
            failures.append(f"{u.device_id}: the server names its model {u.model}, plan {ex.model}")
    failures = list(dict.fromkeys(failures))
    heard = len({u.dev_eui for _, u in ups})
    return judged("LORA-ID-1", failures, f"{heard} of {len(ex.registry)} registered devices heard, "
                  f"model {ex.model}", heard=heard)  # fmt: skip


def _by_device(ups: Sequence[tuple[Received, Uplink]]) -> dict[str, list[Uplink]]:
    out: dict[str, list[Uplink]] = defaultdict(list)
    for _, u in ups:
        out[u.dev_eui or u.device_id].append(u)
    return out


def _monotonic(ups: Sequence[tuple[Received, Uplink]], ex: Expected) -> CaseResult:
    """Each new frame counter above the last; one delivered before is LORA-FCNT-2's."""
    failures, lost = [], 0
    for device, frames in _by_device(ups).items():
        last: int | None = None
        seen: set[int] = set()
        for u in frames:
            if u.f_cnt in seen:
                continue  # delivered before: LORA-FCNT-2's
            seen.add(u.f_cnt)
            if last is not None and u.f_cnt < last:
                failures.append(f"{device}: f_cnt {u.f_cnt} after {last} "
                                f"(t {u.received_at - ex.epoch_s:.0f} s)")  # fmt: skip
            elif last is not None and u.f_cnt > last:
                lost += u.f_cnt - last - 1
            last = u.f_cnt if last is None else max(last, u.f_cnt)
    note = f"; {lost} frames missing in gaps (lost on the air: allowed)" if lost else ""
    return judged("LORA-FCNT-1", failures, f"f_cnt rising per device over {len(ups)} uplinks{note}",
                  lost=lost)  # fmt: skip


def _duplicates(ups: Sequence[tuple[Received, Uplink]], ex: Expected) -> CaseResult:
    failures = []
    count = 0
    for device, frames in _by_device(ups).items():
        seen: set[int] = set()
        for u in frames:
            if u.f_cnt in seen:
                count += 1
                failures.append(f"{device}: f_cnt {u.f_cnt} delivered again "
                                f"(t {u.received_at - ex.epoch_s:.0f} s)")  # fmt: skip
            seen.add(u.f_cnt)
    if count:
        failures.insert(0, f"{count} of {len(ups)} uplinks delivered twice")
    return judged("LORA-FCNT-2", failures, f"{len(ups)} uplinks, each f_cnt delivered once",
                  duplicates=count)  # fmt: skip


def _codec(ups: Sequence[tuple[Received, Uplink]], ex: Expected) -> CaseResult:
    codec = codec_for(ex.model)
    failures: list[str] = []
    frames: defaultdict[str, int] = defaultdict(int)
    for _, u in ups:
        try:
            reading = codec.reading(u.f_port, u.payload)
        except PayloadError as exc:
            failures.append(f"{u.device_id} f_cnt {u.f_cnt}: {exc} (bytes {u.payload.hex()})")
            continue
        frames[reading.frame.value] += 1
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(frames.items()))
    return judged("LORA-COD-1", failures, f"every payload a documented {ex.model} frame ({kinds})",
                  frames=dict(frames))  # fmt: skip


def _number_free(value: Any) -> Any:
    """JSON numbers as floats (protobuf's Struct holds every number as a double)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _number_free(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_number_free(v) for v in value]
    return value


def _formatter(ups: Sequence[tuple[Received, Uplink]], ex: Expected) -> CaseResult:
    codec = codec_for(ex.model)
    failures, compared = [], 0
    for r, u in ups:
        document = json.loads(r.payload)
        if ex.fmt is Format.TTS:
            attached = document.get("uplink_message", {}).get("decoded_payload")
        else:
            attached = document.get("object")
        if attached is None:
            continue
        compared += 1
        try:
            expected = codec.decode(u.f_port, u.payload)
        except PayloadError as exc:
            failures.append(f"{u.device_id} f_cnt {u.f_cnt}: decoded by the server, but {exc}")
            continue
        if _number_free(attached) != _number_free(expected):
            failures.append(f"{u.device_id} f_cnt {u.f_cnt}: server decoded {attached}, the "
                            f"vendor codec {expected}")  # fmt: skip
    if not compared:
        return not_applicable("LORA-COD-2", "the network server attached no decoded payload")
    return judged("LORA-COD-2", failures, f"{compared} decoded payloads equal the vendor codec's",
                  compared=compared)  # fmt: skip


def _heartbeat(ups: Sequence[tuple[Received, Uplink]], ex: Expected, run_s: float) -> CaseResult:
    """Models with a heartbeat frame: successive heartbeats ``heartbeat_s`` apart (+-10 %).
    Every model: no device silent for longer than ``heartbeat_s`` (+10 %)."""
    period = ex.heartbeat_s
    if run_s < 2 * period:
        return not_applicable("LORA-HB-1", f"a {run_s:g} s run holds fewer than two heartbeat "
                              f"periods of {period:g} s")  # fmt: skip
    codec = codec_for(ex.model)
    low, high = period * (1 - HEARTBEAT_TOLERANCE), period * (1 + HEARTBEAT_TOLERANCE)
    failures, intervals = [], 0
    end = max((u.received_at for _, u in ups), default=0.0)
    for device, frames in _by_device(ups).items():
        times = sorted({u.received_at for u in frames})
        silences = [b - a for a, b in itertools.pairwise([*times, end])]
        if silences and max(silences) > high:
            failures.append(f"{device}: silent for {max(silences):.0f} s, heartbeat {period:g} s")
        beats = []
        for u in frames:
            try:
                if codec.reading(u.f_port, u.payload).frame is Frame.HEARTBEAT:
                    beats.append(u.received_at)
            except PayloadError:
                continue
        for a, b in itertools.pairwise(sorted(set(beats))):
            intervals += 1
            if not low <= b - a <= high:
                failures.append(f"{device}: heartbeats {b - a:.0f} s apart, expected {period:g} s "
                                f"+-{100 * HEARTBEAT_TOLERANCE:g} %")  # fmt: skip
    what = f"{intervals} heartbeat intervals within {period:g} s +-{100 * HEARTBEAT_TOLERANCE:g} %"
    return judged("LORA-HB-1", failures, f"{what}; no device silent longer", intervals=intervals)
