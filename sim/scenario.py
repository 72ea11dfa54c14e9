"""What a scenario is, and how one is found and validated.

A scenario is any of:

* a bundled name (``district``) or a folder holding ``scenario.toml``;
* a third-party ``.sumocfg`` file, or a folder holding exactly one;
* a folder holding one ``*.net.xml`` and one or more ``*.rou.xml`` files.

Whatever the form, loading gives one :class:`Scenario` whose paths are absolute and exist.
Every problem is a :class:`ScenarioError` naming the file, the field, the value and what was
expected, raised before SUMO starts.
"""

from __future__ import annotations

import importlib.util
import math
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from sim.config_model import CONFIG, ConfigModel, Flag, Number, Text, invalid, validate
from sim.demand import MAX_REPEAT
from sim.detectors import DetectorConfig
from sim.devices.config import DevicesConfig, resolve_secret
from sim.errors import ScenarioError
from sim.parking import ParkingConfig
from sim.sensors import profile_names

DEFAULT_END_S = 3600.0
DEFAULT_KPI_INTERVAL_S = 300.0


@dataclass(frozen=True)
class NtcipBinding:
    """``[[ntcip.stations]]`` / ``[[ntcip.controllers]]``: an external NTCIP device at
    ``host:port`` bound to signal ``signal`` (used by ``ccsim serve``)."""

    signal: str
    host: str
    port: int
    drive: bool = False
    """Stations only: the signal's controllers use the station's data instead of the simulated
    detectors."""
    field: str = ""
    """Where it was declared, e.g. ``ntcip.stations[0]`` (for error messages)."""


@dataclass(frozen=True)
class Scenario:
    """A runnable scenario. Times in s; all paths absolute."""

    name: str
    root: Path
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float
    end_s: float
    step_length_s: float
    kpi_interval_s: float
    sumocfg: Path | None = None
    description: str = ""
    detectors: DetectorConfig = field(default_factory=DetectorConfig)
    clearance: str = "net"
    """Where the guard's yellow and all-red times come from: ``net`` (the net's own programs,
    ITE where they give none) or ``ite`` (the ITE formula for every link)."""
    signal_plans: Path | None = None
    """``[signals] plans``: an additional file of fixed-time programs (``ccsim retime``) that the
    signals run instead of the net's own; also in :attr:`additional_files`, last."""
    sensor_profile: str = "ideal"
    variant: str = ""
    parking: ParkingConfig | None = None
    """Parking behaviour, when the scenario declares ``[parking]`` (zones come from its files)."""
    devices: DevicesConfig | None = None
    """Field devices II (enforcement, radar, gates, air, incidents...), from ``[devices]``."""
    source: Path | None = None
    """The scenario.toml the scenario came from (None for a bare .sumocfg or folder)."""
    ntcip_stations: tuple[NtcipBinding, ...] = ()
    """External NTCIP 1209 detector stations (``[[ntcip.stations]]``)."""
    ntcip_controllers: tuple[NtcipBinding, ...] = ()
    """External NTCIP 1202 controllers in the loop (``[[ntcip.controllers]]``)."""
    repeat_demand: int = 1
    """``[run] repeat_demand``: the route files run this many times over, one window of demand
    (:attr:`demand_period_s`) after another (:mod:`sim.demand`); :attr:`end_s` follows."""
    demand_period_s: float = 0.0
    """One period of the demand that repeats: the window before repetition (s)."""
    demand_scale: float = 1.0
    """``[run] demand_scale``: the demand multiplied (SUMO's ``--scale``; a study's scale
    multiplies it again)."""
    geo_origin: tuple[float, float] | None = None
    """``[geo] origin``: WGS 84 (longitude, latitude) in degrees of the net's point (0, 0), to
    place a net without a geo-projection on the earth (the NGSI-LD entities need it); a net
    with one ignores it."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.begin_s


def bundled_root() -> Path:
    """The folder of bundled scenarios: ``scenarios/`` beside the packages in a checkout, else
    the installed data package ``ccsim_scenarios`` (the same files, shipped by ``pip install``)."""
    checkout = Path(__file__).resolve().parent.parent / "scenarios"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("ccsim_scenarios")  # a namespace package: data only
    if spec is None or not spec.submodule_search_locations:
        return checkout
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_names() -> list[str]:
    root = bundled_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "scenario.toml").is_file())


def load_scenario(spec: str | Path, variant: str | None = None) -> Scenario:
    """Find and validate the scenario that ``spec`` names (see the module docstring).

    ``variant`` applies named overrides: a ``[variants.<name>]`` table of the scenario.toml
    (dotted keys, e.g. ``"detectors.profile" = "degraded-radar"``), or an inline ``key=value``.
    """
    path = Path(spec)
    if not path.exists():
        bundled = bundled_root() / str(spec)
        if isinstance(spec, str) and "/" not in spec and (bundled / "scenario.toml").is_file():
            path = bundled
        else:
            known = ", ".join(bundled_names()) or "none"
            raise ScenarioError(
                spec,
                "no such scenario",
                expected=f"a bundled name ({known}), a scenario folder or a .sumocfg file",
            )
    path = path.resolve()
    if path.is_file() and path.name == "scenario.toml":
        return _from_toml(path, variant)
    if path.is_file():
        if path.suffix != ".sumocfg":
            raise ScenarioError(path, "not a scenario file", expected="a .sumocfg or scenario.toml")
        return _from_doc({"name": path.stem, "sumocfg": str(path)}, path, path.parent, variant)
    if (path / "scenario.toml").is_file():
        return _from_toml(path / "scenario.toml", variant)
    cfgs = sorted(path.glob("*.sumocfg"))
    if len(cfgs) == 1:
        return _from_doc({"name": path.name, "sumocfg": str(cfgs[0])}, cfgs[0], path, variant)
    if len(cfgs) > 1:
        names = ", ".join(c.name for c in cfgs)
        raise ScenarioError(path, f"several .sumocfg files ({names})", expected="exactly one")
    return _from_doc(_net_and_routes(path), path, path, variant)


# --- scenario.toml -----------------------------------------------------------------------------

CLEARANCES = ("net", "ite")
_ADDRESS = "HOST:PORT, an IPv4 address or host name and a port, e.g. 192.0.2.7:161"


def _paths(value: Any) -> Any:
    return [value] if isinstance(value, str) else value  # one path may stand alone


def _address(value: str) -> str:
    if _host_port(value) is None:
        raise invalid("not an address", _ADDRESS)
    return value


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port_text = address.rpartition(":")
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else 0
    if not host or ":" in host or "[" in host or not 0 < port < 65536:  # the manager: IPv4
        return None
    return host, port


def _lon_lat(value: Any) -> Any:
    expected = "[longitude, latitude] in degrees, longitude -180..180, latitude -90..90"
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise invalid("wrong type", expected)
    lon, lat = float(value[0]), float(value[1])
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise invalid("out of range", expected)
    return lon, lat


def _clearance(value: Any) -> Any:
    if isinstance(value, str) and value not in CLEARANCES:
        raise invalid(
            "unknown clearance", "'net' (the net's own yellows and all-reds) or 'ite' (ITE formula)"
        )
    return value


class _Run(ConfigModel):
    """``[run]``; unset times come from the .sumocfg, or 0, 3600 and 1 s."""

    begin_s: Annotated[float, Field(strict=True, ge=0.0)] | None = None
    end_s: Number | None = None
    step_length_s: Number | None = None
    repeat_demand: Annotated[int, Field(strict=True, ge=1, le=MAX_REPEAT)] = 1
    """The demand of begin_s .. end_s run this many times over; the end moves to match."""
    demand_scale: Annotated[float, Field(strict=True, gt=0.0, le=100.0)] = 1.0
    """The demand multiplied: 0.75 inserts three vehicles of four (SUMO's ``--scale``)."""


class _Kpi(ConfigModel):
    interval_s: Number = DEFAULT_KPI_INTERVAL_S


@pydantic_dataclass(frozen=True, config=CONFIG)
class _Detectors(DetectorConfig):
    profile: Text = "ideal"


class _Signals(ConfigModel):
    clearance: Annotated[Text, BeforeValidator(_clearance)] = "net"
    plans: Text = ""


class _Controller(ConfigModel):
    signal: Text
    address: Annotated[Text, AfterValidator(_address)]


class _Station(_Controller):
    drive: Flag = False


class _Ntcip(ConfigModel):
    stations: tuple[_Station, ...] = ()
    controllers: tuple[_Controller, ...] = ()


class _Geo(ConfigModel):
    origin: Annotated[tuple[float, float] | None, BeforeValidator(_lon_lat)] = None


Paths = Annotated[tuple[Text, ...], BeforeValidator(_paths)]


class ScenarioDoc(ConfigModel):
    """scenario.toml (``variants`` applied and removed): times in s, paths relative to its folder."""

    name: Text | None = None
    description: Text = ""
    sumocfg: Text | None = None
    net: Text | None = None
    routes: Paths = ()
    additional: Paths = ()
    run: _Run = _Run()
    kpi: _Kpi = _Kpi()
    detectors: _Detectors = _Detectors()
    signals: _Signals = _Signals()
    parking: ParkingConfig | None = None
    devices: DevicesConfig | None = None
    ntcip: _Ntcip = _Ntcip()
    geo: _Geo = _Geo()


def _from_toml(toml_path: Path, variant: str | None) -> Scenario:
    try:
        doc = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(toml_path, f"invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(toml_path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    doc.setdefault("name", toml_path.parent.name)
    return _from_doc(doc, toml_path, toml_path.parent, variant)


def _variant_overrides(variants: dict[str, Any], source: Path, variant: str) -> dict[str, Any]:
    """The overrides of one variant: a ``[variants.<name>]`` table, or ``key=value``."""
    if variant in variants:
        return dict(variants[variant])
    if "=" in variant:
        key, raw = (part.strip() for part in variant.split("=", 1))
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: a string
        return {key: value}
    known = ", ".join(sorted(variants)) or "none"
    raise ScenarioError(source, f"unknown variant '{variant}'", field="variants",
                        expected=f"one of: {known}, or key=value; several joined by ';'")  # fmt: skip


def _apply_variant(doc: dict[str, Any], source: Path, variant: str | None) -> None:
    variants = doc.pop("variants", {})
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise ScenarioError(
            source, "not a table of tables", field="variants", expected="[variants.<name>]"
        )
    if variant is None:
        return
    overrides: dict[str, Any] = {}
    for part in (p.strip() for p in variant.split(";")):  # "a;b=1": several, applied in order
        overrides |= _variant_overrides(variants, source, part)
    for dotted, value in overrides.items():
        table = doc
        *parents, leaf = dotted.split(".")
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ScenarioError(
                    source, "cannot override", field=dotted, expected="a field in a table"
                )
        table[leaf] = value


def _from_doc(raw: dict[str, Any], toml_path: Path, root: Path, variant: str | None) -> Scenario:
    """Validate a scenario document (a scenario.toml, or one made for a .sumocfg or folder)."""
    _apply_variant(raw, toml_path, variant)
    doc = validate(ScenarioDoc, raw, toml_path)
    name = root.name if doc.name is None else doc.name
    if doc.sumocfg is not None:
        cfg_path = _existing(toml_path, "sumocfg", root, doc.sumocfg)
        base = _from_sumocfg(cfg_path, name=name)
        net, routes, additional = base.net_file, base.route_files, base.additional_files
        begin, end, step = base.begin_s, base.end_s, base.step_length_s
    elif doc.net is not None:
        net = _existing(toml_path, "net", root, doc.net)
        routes = tuple(_existing(toml_path, "routes", root, r) for r in doc.routes)
        additional = tuple(_existing(toml_path, "additional", root, a) for a in doc.additional)
        begin, end, step = 0.0, DEFAULT_END_S, 1.0
    else:
        raise ScenarioError(
            toml_path, "no SUMO files named", field="sumocfg", expected="'sumocfg' or 'net'"
        )
    plans_name = doc.signals.plans
    plans = _existing(toml_path, "signals.plans", root, plans_name) if plans_name else None
    if plans is not None:
        additional = (*additional, plans)  # loaded last: SUMO runs these programs

    # Checks across fields (and against the .sumocfg's times) that a schema cannot make:
    begin = begin if doc.run.begin_s is None else doc.run.begin_s
    end = _above(toml_path, "run.end_s", end if doc.run.end_s is None else doc.run.end_s, begin)
    period = end - begin
    end = begin + doc.run.repeat_demand * period  # the demand's window, repeated
    step = _above(toml_path, "run.step_length_s", step if doc.run.step_length_s is None
                  else doc.run.step_length_s, 0.0)  # fmt: skip
    interval = _above(toml_path, "kpi.interval_s", doc.kpi.interval_s, step, inclusive=True)
    det = doc.detectors
    _above(toml_path, "detectors.reporting_period_s", det.reporting_period_s, step, inclusive=True)
    detectors = DetectorConfig(det.stopline_length_m, det.advance_distance_m, det.reporting_period_s)
    if det.profile.endswith(".toml"):
        _existing(toml_path, "detectors.profile", root, det.profile)
    elif det.profile not in profile_names():
        known = ", ".join(profile_names())  # the bundled ones too (sim.parking loads them)
        raise ScenarioError(toml_path, "unknown sensor profile", field="detectors.profile",
                            value=det.profile, expected=f"one of {known}, or a .toml file")  # fmt: skip
    devices = None if doc.devices is None else resolve_secret(toml_path, doc.devices)
    return Scenario(
        name=name,
        root=root,
        net_file=net,
        route_files=routes,
        additional_files=additional,
        begin_s=begin,
        end_s=end,
        step_length_s=step,
        kpi_interval_s=interval,
        sumocfg=cfg_path.resolve() if doc.sumocfg is not None else None,
        description=doc.description,
        detectors=detectors,
        sensor_profile=det.profile,
        variant=variant or "",
        parking=doc.parking,
        devices=devices,
        source=toml_path if toml_path.name == "scenario.toml" else None,
        clearance=doc.signals.clearance,
        signal_plans=plans,
        ntcip_stations=_bindings(toml_path, doc.ntcip.stations, "stations"),
        ntcip_controllers=_bindings(toml_path, doc.ntcip.controllers, "controllers"),
        geo_origin=doc.geo.origin,
        repeat_demand=doc.run.repeat_demand,
        demand_period_s=period,
        demand_scale=doc.run.demand_scale,
    )


def _bindings(path: Path, entries: Sequence[_Controller], key: str) -> tuple[NtcipBinding, ...]:
    """``[[ntcip.KEY]]`` entries as bindings; a signal may be bound once."""
    bindings = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        at = f"ntcip.{key}[{i}]"
        if entry.signal in seen:
            raise ScenarioError(path, f"signal {entry.signal!r} is bound twice", field=f"{at}.signal",
                                expected="one entry per signal")  # fmt: skip
        seen.add(entry.signal)
        host_port = _host_port(entry.address)
        assert host_port is not None  # checked by the schema
        drive = entry.drive if isinstance(entry, _Station) else False
        bindings.append(NtcipBinding(entry.signal, *host_port, drive, at))
    return tuple(bindings)


def _above(path: Path, dotted: str, value: float, minimum: float, *, inclusive: bool = False) -> float:
    if value < minimum or (not inclusive and value == minimum):
        bound = f"{'>=' if inclusive else '>'} {minimum:g}"
        raise ScenarioError(path, "out of range", field=dotted, value=value, expected=bound)
    return float(value)


def _existing(source: Path, field: str, root: Path, relative: str) -> Path:
    target = (root / relative).resolve()
    if not target.is_file():
        raise ScenarioError(
            source, "file not found", field=field, value=relative, expected="an existing file"
        )
    return target


# --- .sumocfg ----------------------------------------------------------------------------------


def _from_sumocfg(cfg_path: Path, *, name: str) -> Scenario:
    try:
        root_el = ET.parse(cfg_path).getroot()
    except ET.ParseError as exc:
        raise ScenarioError(cfg_path, f"malformed XML: {exc}") from None
    options: dict[str, str] = {}
    for el in root_el.iter():
        if "value" in el.attrib:
            options[el.tag] = el.attrib["value"]
    root = cfg_path.parent
    if "net-file" not in options:
        raise ScenarioError(cfg_path, "no network", field="net-file", expected="<net-file value=...>")
    net = _existing(cfg_path, "net-file", root, options["net-file"])
    routes = tuple(
        _existing(cfg_path, "route-files", root, r) for r in _split(options.get("route-files", ""))
    )
    additional = tuple(
        _existing(cfg_path, "additional-files", root, a)
        for a in _split(options.get("additional-files", ""))
    )
    begin = _cfg_time(cfg_path, options, "begin", 0.0)
    end = _cfg_time(cfg_path, options, "end", DEFAULT_END_S)
    if end <= begin:
        raise ScenarioError(cfg_path, "end not after begin", field="end", value=end)
    step = _cfg_time(cfg_path, options, "step-length", 1.0)
    return Scenario(
        name=name,
        root=root,
        net_file=net,
        route_files=routes,
        additional_files=additional,
        begin_s=begin,
        end_s=end,
        step_length_s=step,
        kpi_interval_s=DEFAULT_KPI_INTERVAL_S,
        sumocfg=cfg_path,
    )


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace(" ", ",").split(",") if part.strip()]


def _cfg_time(cfg_path: Path, options: dict[str, str], key: str, default: float) -> float:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(
            cfg_path, "not a time", field=key, value=raw, expected="seconds as a number"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ScenarioError(cfg_path, "out of range", field=key, value=raw, expected=">= 0 s")
    return value


# --- net + routes folder -----------------------------------------------------------------------


def _net_and_routes(folder: Path) -> dict[str, Any]:
    """The scenario document of a folder holding one net and its route files."""
    nets = sorted(folder.glob("*.net.xml"))
    if len(nets) != 1:
        found = ", ".join(n.name for n in nets) or "none"
        raise ScenarioError(
            folder,
            f"cannot tell the network ({found})",
            expected="scenario.toml, one .sumocfg, or exactly one *.net.xml with *.rou.xml files",
        )
    routes = sorted(folder.glob("*.rou.xml"))
    if not routes:
        raise ScenarioError(folder, "no route files", expected="at least one *.rou.xml")
    return {
        "name": folder.name,
        "net": str(nets[0]),
        "routes": [str(r) for r in routes],
        "additional": [str(a) for a in sorted(folder.glob("*.add.xml"))],
    }
