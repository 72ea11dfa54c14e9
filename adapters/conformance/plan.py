"""A conformance test plan (``ccsim conformance PLAN.toml``): the device under test, what it
observes, the cases to run and the thresholds. The smallest plan::

    name = "my-station"

    [device]
    address = "emulated"            # or "HOST:PORT" of an NTCIP 1209 station

    [device.emulator]               # only for address = "emulated": the vendor's error model
    undercount = 0.15

    [scenario]
    name = "single"                 # bundled name, or a folder relative to the plan
    signal = "C"                    # the station watches this signal's approach lanes

A LoRaWAN parking sensor plan has ``kind = "lorawan"``, a ``model``, a ``format`` and a
``[device.emulator]`` of its own, and names parking ``zones`` instead of a signal (see the
README). An NTCIP 1202 signal controller plan has ``kind = "ntcip1202"`` and names the signal
whose intersection the (emulated) controller runs. Bundled plans live next to this module
(``plans/*.toml``) and run by name. The file is checked whole before anything starts; a problem
is a :class:`PlanError` naming the file, the field, the value and what was expected (the CLI
exits with code 2).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters.conformance.cases import CASES
from adapters.lorawan.codecs import codec_for, models
from sim.errors import FileFieldError

PLANS = Path(__file__).resolve().parent / "plans"
GROUPS = ("protocol", "accuracy")


class PlanError(FileFieldError):
    """A test plan is missing or malformed."""


class EmulatorDoc(BaseModel):
    """The emulated station's error model (fractions 0..1, counts per zone-hour, % points, s)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    undercount: float = Field(default=0.0, ge=0.0, le=1.0)
    false_counts_per_h: float = Field(default=0.0, ge=0.0)
    occupancy_noise_points: float = Field(default=0.0, ge=0.0, le=100.0)
    latency_s: float = Field(default=0.0, ge=0.0, le=600.0)
    speed_bias_kmh: float = Field(default=0.0, ge=-100.0, le=100.0)
    speed_noise_kmh: float = Field(default=0.0, ge=0.0, le=100.0)
    """Per vehicle (sd); the period reports the mean of its vehicles'."""
    presence_miss: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of the zone's occupancies the presence output misses whole."""
    false_presence_per_h: float = Field(default=0.0, ge=0.0, le=3600.0)
    """False presence calls per hour the zone is empty."""
    false_presence_s: float = Field(default=2.0, gt=0.0, le=600.0)
    broken: Literal["none", "wrong-type", "stuck-status", "slow", "no-buffer", "forgets-config"] = "none"
    seed: int = Field(default=1, ge=0)
    descr: str = "ccsim emulated NTCIP 1209 detector station"
    name: str = "emulated-station"


class DeviceDoc(BaseModel):
    """An NTCIP 1209 detector station."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["ntcip1209"] = "ntcip1209"
    address: str
    community: str = Field(default="public", min_length=1)
    write_community: str | None = Field(default=None, min_length=1)
    """For the SET cases (an emulated station is given it); none: they are not applicable."""
    emulator: EmulatorDoc | None = None
    reference: str | None = Field(default=None, min_length=1)
    """A real station's truth: a reference count file (hand or video counts, CSV; see
    ``adapters.conformance.reference``), relative to the plan."""
    listen_s: float = Field(default=3600.0, gt=0.0, le=7 * 86400.0)
    """With a reference: how long at most the harness polls the station (wall s) waiting for
    its clock to pass the reference's last interval."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "emulated":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("'emulated' or HOST:PORT, e.g. 192.0.2.7:161")
        return value


class BayEmulatorDoc(BaseModel):
    """The emulated parking sensors' error model (shares 0..1, per free bay-hour, s)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    miss_share: float = Field(default=0.0, ge=0.0, le=1.0)
    false_per_h: float = Field(default=0.0, ge=0.0, le=60.0)
    false_duration_s: float = Field(default=300.0, gt=0.0, le=86400.0)
    latency_s: float = Field(default=0.0, ge=0.0, le=600.0)
    duplicate_share: float = Field(default=0.0, ge=0.0, le=1.0)
    heartbeat_s: float | None = Field(default=None, ge=10.0, le=7 * 86400.0)
    """What the emulated sensors do; none: the plan's ``device.heartbeat_s``."""
    seed: int = Field(default=1, ge=0)


class LoRaWANDeviceDoc(BaseModel):
    """LoRaWAN parking sensors, as their network server publishes their uplinks on MQTT."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["lorawan"]
    address: str
    """'emulated', or the broker the network server publishes on: mqtt[s]://HOST[:PORT]."""
    format: Literal["tts", "chirpstack"] = "tts"
    topic: str | None = Field(default=None, min_length=1)
    """MQTT topic filter of the device's uplinks; none: every application's of the format."""
    model: str = Field(min_length=3)
    """brand/model, e.g. nwave/nps405."""
    registry: str | None = Field(default=None, min_length=1)
    """Device registry CSV (device_id,dev_eui,model,zone,bay), relative to the plan; an emulated
    fleet's is made from the scenario's bays."""
    heartbeat_s: float | None = Field(default=None, ge=10.0, le=7 * 86400.0)
    """The heartbeat the device is configured for; none: the vendor's default."""
    listen_s: float = Field(default=600.0, gt=0.0, le=7 * 86400.0)
    """A real device: how long the harness listens to its uplinks (wall s)."""
    emulator: BayEmulatorDoc | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "emulated" or value.startswith(("mqtt://", "mqtts://")):
            return value
        raise ValueError("'emulated' or the broker's mqtt://HOST[:PORT]")


class ControllerEmulatorDoc(BaseModel):
    """The emulated signal controller's error model (s; broken firmware modes)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    status_latency_s: float = Field(default=0.0, ge=0.0, le=600.0)
    """Phase colours reported this late (simulated s)."""
    broken: list[Literal["wrong-type", "stuck-status", "ignores-commands"]] = Field(default_factory=list)
    stuck_after_s: float = Field(default=120.0, ge=0.0)
    """stuck-status: the phase status stops changing this long after the run's start (s)."""
    descr: str = "ccsim emulated NTCIP 1202 actuated signal controller"
    name: str = "emulated-controller"


class ControllerDeviceDoc(BaseModel):
    """An NTCIP 1202 actuated signal controller."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["ntcip1202"]
    address: str
    community: str = Field(default="public", min_length=1)
    write_community: str | None = Field(default=None, min_length=1)
    """For the SET and command cases (an emulated controller is given it); none: not applicable."""
    emulator: ControllerEmulatorDoc | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if value != "emulated" and (not sep or not host or not port.isdigit()
                                    or not 0 < int(port) < 65536):  # fmt: skip
            raise ValueError("'emulated' or HOST:PORT, e.g. 192.0.2.9:161")
        return value


class ScenarioDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)
    signal: str | None = Field(default=None, min_length=1)
    """A detector station watches this signal's approach lanes."""
    zones: list[str] | None = Field(default=None, min_length=1)
    """Parking sensors: the parking areas whose bays they sit in; none: every one."""
    lanes: list[str] | None = Field(default=None, min_length=1)
    """The station's zones in order (zone n is lanes[n-1]); none: every approach lane of the
    signal, in the order of ccsim's own agents."""
    controller: str = "actuated"
    seed: int = Field(default=1, ge=0)
    begin_s: float | None = Field(default=None, ge=0)
    end_s: float | None = Field(default=None, gt=0)
    period_s: int = Field(default=60, ge=1, le=3600)
    """The emulated station's sample period (an external station's is read from it)."""


class CasesDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include: list[str] = Field(default=list(GROUPS), min_length=1)
    """Case ids or groups (protocol, accuracy)."""
    exclude: list[str] = Field(default_factory=list)


PRESETS: dict[str, dict[str, float]] = {
    # Colorado DOT practice: counts within +-10 % per lane, judged over at least 50 vehicles or
    # 10 minutes.
    "cdot": {"volume_error_pct": 10.0, "block_vehicles": 50, "block_s": 600},
    # Virginia DOT's acceptance framework: 5 %, over the same blocks.
    "vdot": {"volume_error_pct": 5.0, "block_vehicles": 50, "block_s": 600},
}
DETECTION_DEFAULTS: dict[str, float] = {
    # ccsim's defaults under either preset (the agencies' figures above are for counts): mean
    # speed within 5 km/h, at most 2 % of occupancies without a call, one false call per 10
    # minutes of empty zone, calls within one simulation step (1 s) of the vehicle.
    "speed_error_kmh": 5.0, "presence_miss_pct": 2.0, "false_presence_per_h": 6.0,
    "latency_p95_s": 1.0,
}  # fmt: skip


class ThresholdsDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    preset: Literal["cdot", "vdot"] = "cdot"
    volume_error_pct: float | None = Field(default=None, gt=0, le=100)
    block_vehicles: int | None = Field(default=None, ge=1)
    block_s: float | None = Field(default=None, gt=0)
    block_pass_share: float = Field(default=0.95, gt=0, le=1)
    """ACC-VOL-BLOCK passes when at least this share of a lane's blocks is within the error."""
    occupancy_error_points: float = Field(default=3.0, gt=0, le=100)
    response_p95_ms: float = Field(default=500.0, gt=0)
    timing_requests: int = Field(default=30, ge=5, le=10_000)
    state_accuracy_pct: float = Field(default=98.0, gt=0, le=100)
    """ACC-PRK-1: parking state right for at least this share of bay-time."""
    change_detection_pct: float = Field(default=95.0, gt=0, le=100)
    false_per_bay_h: float = Field(default=0.1, ge=0)
    change_latency_p95_s: float = Field(default=60.0, gt=0)
    match_window_s: float = Field(default=300.0, gt=0, le=3600)
    """A reported change this late after a true one still detects it."""
    status_agreement_pct: float = Field(default=99.0, gt=0, le=100)
    """ACC-PHS-1: a controller's reported phase colours right for at least this share of polls."""
    status_latency_p95_s: float = Field(default=1.0, ge=0, le=600)
    """ACC-PHS-2: 95th percentile of how late a colour change is reported (simulated s)."""
    command_settle_s: float = Field(default=20.0, ge=0, le=300)
    """ACC-CMD-*: how long a command may take to show (clearing the phase on: yellow, all-red)."""
    speed_error_kmh: float | None = Field(default=None, gt=0, le=100)
    """ACC-SPD-1: per lane, the mean speed error within +- this (default: the preset's)."""
    presence_miss_pct: float | None = Field(default=None, ge=0, le=100)
    """ACC-PRS-1: at most this share of the zone's occupancies without a presence call."""
    false_presence_per_h: float | None = Field(default=None, ge=0)
    """ACC-PRS-2: false presence calls per hour the zone is empty, at most."""
    latency_p95_s: float | None = Field(default=None, gt=0, le=600)
    """ACC-LAT-1: 95th percentile of the presence calls' delay after the vehicle."""
    presence_window_s: float = Field(default=3.0, gt=0, le=600)
    """A presence call this close to a true occupancy (before its start, after its end) is its
    call."""


class ImpactDoc(BaseModel):
    """``--impact``: the scenario with this controller, ideal against measured detectors."""

    model_config = ConfigDict(extra="forbid", strict=True)

    scenario: str | None = None
    """Another scenario to price the accuracy on (e.g. ``district``); none: the plan's."""
    controller: str = "adaptive"
    seeds: list[int] = Field(default=[1, 2, 3], min_length=1)
    hours_per_year: float = Field(default=3650.0, gt=0, le=8784)
    """How many hours a year the run's traffic stands for (3650: ten such hours a day)."""
    end_s: float | None = Field(default=None, gt=0)
    """End of the impact runs (default: the conformance run's end)."""
    variant: str | None = Field(default=None, min_length=1)
    """A scenario variant both arms run under (``[variants.<name>]`` or key=value, several
    joined by ';'); parking sensors: default ``parking.guidance=true``."""


class PlanDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)
    description: str = ""
    device: Annotated[DeviceDoc | LoRaWANDeviceDoc | ControllerDeviceDoc, Field(discriminator="kind")]
    scenario: ScenarioDoc
    cases: CasesDoc = Field(default_factory=CasesDoc)
    thresholds: ThresholdsDoc = Field(default_factory=ThresholdsDoc)
    impact: ImpactDoc = Field(default_factory=ImpactDoc)


@dataclass(frozen=True)
class Thresholds:
    """The plan's thresholds with its preset filled in (%, vehicles, s, points, ms)."""

    preset: str
    volume_error_pct: float
    block_vehicles: int
    block_s: float
    block_pass_share: float
    occupancy_error_points: float
    response_p95_ms: float
    timing_requests: int
    state_accuracy_pct: float
    change_detection_pct: float
    false_per_bay_h: float
    change_latency_p95_s: float
    match_window_s: float
    status_agreement_pct: float = 99.0
    status_latency_p95_s: float = 1.0
    command_settle_s: float = 20.0
    speed_error_kmh: float = DETECTION_DEFAULTS["speed_error_kmh"]
    presence_miss_pct: float = DETECTION_DEFAULTS["presence_miss_pct"]
    false_presence_per_h: float = DETECTION_DEFAULTS["false_presence_per_h"]
    latency_p95_s: float = DETECTION_DEFAULTS["latency_p95_s"]
    presence_window_s: float = 3.0


@dataclass(frozen=True)
class Plan:
    path: Path
    doc: PlanDoc
    thresholds: Thresholds

    @property
    def name(self) -> str:
        return self.doc.name

    @property
    def emulated(self) -> bool:
        return self.doc.device.address == "emulated"

    @property
    def kind(self) -> str:
        return self.doc.device.kind

    @property
    def station(self) -> DeviceDoc:
        """The device of an NTCIP 1209 plan."""
        if not isinstance(self.doc.device, DeviceDoc):
            raise PlanError(self.path, "not a detector station plan", field="device.kind",
                            value=self.kind, expected="'ntcip1209'")  # fmt: skip
        return self.doc.device

    @property
    def controller(self) -> ControllerDeviceDoc:
        """The device of an NTCIP 1202 plan."""
        if not isinstance(self.doc.device, ControllerDeviceDoc):
            raise PlanError(self.path, "not a signal controller plan", field="device.kind",
                            value=self.kind, expected="'ntcip1202'")  # fmt: skip
        return self.doc.device

    def scenario_spec(self) -> str:
        """The scenario as ``load_scenario`` takes it: a folder next to the plan, or a name."""
        name = self.doc.scenario.name
        local = self.path.parent / name
        return str(local) if local.exists() else name


def bundled_plans() -> dict[str, Path]:
    """Bundled plan name -> file."""
    return {p.stem: p for p in sorted(PLANS.glob("*.toml"))}


def find_plan(spec: str) -> Path:
    """A plan file by path, or a bundled plan by name."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        return path
    bundled = bundled_plans()
    if spec in bundled:
        return bundled[spec]
    raise PlanError(
        spec, "no such plan file or bundled plan",
        expected="a PLAN.toml path or one of " + ", ".join(bundled),
    )  # fmt: skip


def load_plan(path: Path) -> Plan:
    """Read and check a plan; errors name the file, the field and what was expected."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(path, f"cannot read the plan ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise PlanError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(path, f"invalid TOML: {exc}") from None
    if isinstance(raw.get("device"), dict):
        raw["device"].setdefault("kind", "ntcip1209")  # plans from before there were kinds
    try:
        doc = PlanDoc.model_validate(raw)
    except ValidationError as exc:
        raise _field_error(path, exc) from None
    device = doc.device
    if device.address == "emulated" and device.emulator is None:
        raise PlanError(path, "missing", field="device.emulator",
                        expected="an [device.emulator] table for address = 'emulated'")  # fmt: skip
    if device.address != "emulated" and device.emulator is not None:
        raise PlanError(path, "an error model is for emulated devices only",
                        field="device.emulator", expected="address = 'emulated'")  # fmt: skip
    _check_kind(path, doc)
    for key in ("include", "exclude"):
        for i, item in enumerate(getattr(doc.cases, key)):
            if item not in GROUPS and (item not in CASES or CASES[item].kind != device.kind):
                ids = [c for c, spec in CASES.items() if spec.kind == device.kind]
                known = f"protocol, accuracy or a {device.kind} case id: " + ", ".join(ids)
                raise PlanError(
                    path, "unknown case", field=f"cases.{key}[{i}]", value=item, expected=known
                )
    t = doc.thresholds
    preset = PRESETS[t.preset]
    thresholds = Thresholds(
        preset=t.preset,
        volume_error_pct=t.volume_error_pct or preset["volume_error_pct"],
        block_vehicles=t.block_vehicles or int(preset["block_vehicles"]),
        block_s=t.block_s or preset["block_s"],
        block_pass_share=t.block_pass_share,
        occupancy_error_points=t.occupancy_error_points,
        response_p95_ms=t.response_p95_ms,
        timing_requests=t.timing_requests,
        state_accuracy_pct=t.state_accuracy_pct,
        change_detection_pct=t.change_detection_pct,
        false_per_bay_h=t.false_per_bay_h,
        change_latency_p95_s=t.change_latency_p95_s,
        match_window_s=t.match_window_s,
        status_agreement_pct=t.status_agreement_pct,
        status_latency_p95_s=t.status_latency_p95_s,
        command_settle_s=t.command_settle_s,
        speed_error_kmh=_or(t.speed_error_kmh, "speed_error_kmh"),
        presence_miss_pct=_or(t.presence_miss_pct, "presence_miss_pct"),
        false_presence_per_h=_or(t.false_presence_per_h, "false_presence_per_h"),
        latency_p95_s=_or(t.latency_p95_s, "latency_p95_s"),
        presence_window_s=t.presence_window_s,
    )
    return Plan(path, doc, thresholds)


def _or(value: float | None, key: str) -> float:
    return DETECTION_DEFAULTS[key] if value is None else value


def _check_kind(path: Path, doc: PlanDoc) -> None:
    """What a plan needs for its kind of device, beyond each field's own checks."""
    device = doc.device
    if isinstance(device, ControllerDeviceDoc):
        if doc.scenario.signal is None:
            raise PlanError(path, "missing", field="scenario.signal",
                            expected="the signal whose intersection the controller runs")  # fmt: skip
        for key in ("zones", "lanes"):
            if getattr(doc.scenario, key) is not None:
                raise PlanError(path, f"{key} are not for a signal controller",
                                field=f"scenario.{key}",
                                expected="scenario.signal alone for kind = 'ntcip1202'")  # fmt: skip
        return
    if isinstance(device, DeviceDoc):
        if doc.scenario.signal is None:
            raise PlanError(path, "missing", field="scenario.signal", expected="a value")
        if doc.scenario.zones is not None:
            raise PlanError(path, "parking zones are for kind = 'lorawan'", field="scenario.zones",
                            expected="scenario.signal and lanes for a detector station")  # fmt: skip
        if device.reference is not None and device.address == "emulated":
            raise PlanError(path, "an emulated station's truth is the simulation",
                            field="device.reference", expected="address = HOST:PORT")  # fmt: skip
        if device.reference is not None and doc.scenario.lanes is None:
            raise PlanError(path, "missing", field="scenario.lanes",
                            expected="the lane each zone watches (zone n is lanes[n-1]), as the "
                            "reference file names them")  # fmt: skip
        return
    try:
        codec_for(device.model)
    except KeyError:
        raise PlanError(path, "unknown sensor model", field="device.model", value=device.model,
                        expected="one of " + ", ".join(models())) from None  # fmt: skip
    if device.address != "emulated" and device.registry is None:
        raise PlanError(path, "missing", field="device.registry",
                        expected="the devices' registry CSV (device_id,dev_eui,model,zone,bay) for "
                        "a real device")  # fmt: skip
    if doc.scenario.signal is not None or doc.scenario.lanes is not None:
        raise PlanError(path, "a signal and lanes are for detector stations",
                        field="scenario.signal" if doc.scenario.signal else "scenario.lanes",
                        expected="scenario.zones (parking areas) for kind = 'lorawan'")  # fmt: skip


_FIELDS: dict[str, type[BaseModel]] = {
    "": PlanDoc, "device": DeviceDoc, "device.emulator": EmulatorDoc, "scenario": ScenarioDoc,
    "cases": CasesDoc, "thresholds": ThresholdsDoc, "impact": ImpactDoc,
}  # fmt: skip
_KIND_FIELDS: dict[str, dict[str, type[BaseModel]]] = {
    "ntcip1209": {"device": DeviceDoc, "device.emulator": EmulatorDoc},
    "lorawan": {"device": LoRaWANDeviceDoc, "device.emulator": BayEmulatorDoc},
    "ntcip1202": {"device": ControllerDeviceDoc, "device.emulator": ControllerEmulatorDoc},
}


def _field_error(path: Path, exc: ValidationError) -> PlanError:
    """The first problem pydantic found, as one line in the project's terms."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    tables = dict(_FIELDS)
    if len(loc) > 1 and loc[0] == "device" and loc[1] in _KIND_FIELDS:  # the union's tag
        tables |= _KIND_FIELDS[str(loc.pop(1))]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    field = field.split(".literal[")[0].split(".str")[0].split(".float")[0].split(".int")[0]
    kind, message = error["type"], error["msg"]
    if kind == "union_tag_invalid":
        return PlanError(path, "unknown device kind", field=f"{field}.kind",
                         value=error.get("input", {}).get("kind"),
                         expected="'ntcip1209', 'lorawan' or 'ntcip1202'")  # fmt: skip
    if kind == "extra_forbidden":
        table = field.rpartition(".")[0]
        known = ", ".join(tables[table].model_fields) if table in tables else "none"
        return PlanError(path, "unknown field", field=field, expected=f"one of {known}")
    if kind == "missing":
        return PlanError(path, "missing", field=field, expected="a value")
    expected = message.removeprefix("Value error, ").removeprefix("Input should be ")
    return PlanError(path, "bad value", field=field, value=error.get("input"), expected=expected)
