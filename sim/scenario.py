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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.detectors import DetectorConfig
from sim.devices.config import DevicesConfig, devices_config
from sim.errors import ScenarioError
from sim.parking import ParkingConfig, parking_config

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

_TOP_KEYS = {
    "name", "description", "sumocfg", "net", "routes", "additional", "run", "kpi", "detectors",
    "variants", "parking", "devices", "signals", "ntcip", "geo",
}  # fmt: skip
_NTCIP_KEYS = {"stations", "controllers"}
_GEO_KEYS = {"origin"}
_SIGNAL_KEYS = {"clearance", "plans"}
CLEARANCES = ("net", "ite")
_DETECTOR_KEYS = {"stopline_length_m", "advance_distance_m", "reporting_period_s", "profile"}
_RUN_KEYS = {"begin_s", "end_s", "step_length_s"}
_KPI_KEYS = {"interval_s"}


def _from_toml(toml_path: Path, variant: str | None) -> Scenario:
    try:
        doc = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(toml_path, f"invalid TOML: {exc}") from None
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


def _from_doc(doc: dict[str, Any], toml_path: Path, root: Path, variant: str | None) -> Scenario:
    """Validate a scenario document (a scenario.toml, or one made for a .sumocfg or folder)."""
    _apply_variant(doc, toml_path, variant)
    _check_keys(toml_path, "", doc, _TOP_KEYS)
    run = _table(toml_path, doc, "run", _RUN_KEYS)
    kpi = _table(toml_path, doc, "kpi", _KPI_KEYS)
    det = _table(toml_path, doc, "detectors", _DETECTOR_KEYS)
    signals = _table(toml_path, doc, "signals", _SIGNAL_KEYS)
    clearance = _string(toml_path, signals, "clearance", default="net")
    if clearance not in CLEARANCES:
        raise ScenarioError(
            toml_path, f"unknown clearance {clearance!r}", field="signals.clearance",
            expected="'net' (the net's own yellows and all-reds) or 'ite' (ITE formula)",
        )  # fmt: skip
    name = _string(toml_path, doc, "name", default=root.name)
    description = _string(toml_path, doc, "description", default="")

    if "sumocfg" in doc:
        cfg_path = _existing(toml_path, "sumocfg", root, _string(toml_path, doc, "sumocfg"))
        base = _from_sumocfg(cfg_path, name=name)
        net, routes, additional = base.net_file, base.route_files, base.additional_files
        begin, end, step = base.begin_s, base.end_s, base.step_length_s
    elif "net" in doc:
        net = _existing(toml_path, "net", root, _string(toml_path, doc, "net"))
        routes = tuple(
            _existing(toml_path, "routes", root, r) for r in _strings(toml_path, doc, "routes")
        )
        additional = tuple(
            _existing(toml_path, "additional", root, a) for a in _strings(toml_path, doc, "additional")
        )
        begin, end, step = 0.0, DEFAULT_END_S, 1.0
    else:
        raise ScenarioError(
            toml_path, "no SUMO files named", field="sumocfg", expected="'sumocfg' or 'net'"
        )
    plans_name = _string(toml_path, signals, "plans", default="")
    plans = _existing(toml_path, "signals.plans", root, plans_name) if plans_name else None
    if plans is not None:
        additional = (*additional, plans)  # loaded last: SUMO runs these programs

    begin = _number(toml_path, run, "run.begin_s", begin, minimum=0.0)
    end = _number(toml_path, run, "run.end_s", end, minimum=begin, strict=True)
    step = _number(toml_path, run, "run.step_length_s", step, minimum=0.0, strict=True)
    interval = _number(
        toml_path, kpi, "kpi.interval_s", DEFAULT_KPI_INTERVAL_S, minimum=step, strict=False
    )
    defaults = DetectorConfig()
    detectors = DetectorConfig(
        stopline_length_m=_number(toml_path, det, "detectors.stopline_length_m",
                                  defaults.stopline_length_m, minimum=0.0, strict=True),
        advance_distance_m=_number(toml_path, det, "detectors.advance_distance_m",
                                   defaults.advance_distance_m, minimum=0.0, strict=True),
        reporting_period_s=_number(toml_path, det, "detectors.reporting_period_s",
                                   defaults.reporting_period_s, minimum=step),
    )  # fmt: skip
    profile = _string(toml_path, det, "profile", default="ideal")
    parking = None
    if "parking" in doc:
        if not isinstance(doc["parking"], dict):
            raise ScenarioError(toml_path, "not a table", field="parking", expected="[parking]")
        parking = parking_config(toml_path, doc["parking"])
    devices = devices_config(toml_path, doc["devices"]) if "devices" in doc else None
    geo_origin = _lon_lat(toml_path, _table(toml_path, doc, "geo", _GEO_KEYS), "geo.origin")
    cfg = root / doc["sumocfg"] if "sumocfg" in doc else None
    ntcip = _table(toml_path, doc, "ntcip", _NTCIP_KEYS)
    stations = _bindings(toml_path, ntcip, "stations", drive=True)
    controllers = _bindings(toml_path, ntcip, "controllers", drive=False)
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
        sumocfg=cfg.resolve() if cfg else None,
        description=description,
        detectors=detectors,
        sensor_profile=profile,
        variant=variant or "",
        parking=parking,
        devices=devices,
        source=toml_path if toml_path.name == "scenario.toml" else None,
        clearance=clearance,
        signal_plans=plans,
        ntcip_stations=stations,
        ntcip_controllers=controllers,
        geo_origin=geo_origin,
    )


def _bindings(path: Path, ntcip: dict[str, Any], key: str, *, drive: bool) -> tuple[NtcipBinding, ...]:
    """``[[ntcip.KEY]]`` entries: ``signal``, ``address`` ("HOST:PORT") and, for stations,
    ``drive``."""
    entries = ntcip.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScenarioError(
            path, "wrong type", field=f"ntcip.{key}", value=entries,
            expected=f"[[ntcip.{key}]] tables with signal and address",
        )  # fmt: skip
    bindings = []
    allowed = {"signal", "address", "drive"} if drive else {"signal", "address"}
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        at = f"ntcip.{key}[{i}]"
        _check_keys(path, at + ".", entry, allowed)
        for required in ("signal", "address"):
            if required not in entry:
                raise ScenarioError(path, "missing", field=f"{at}.{required}", expected="a string")
        signal = _string(path, entry, "signal")
        if signal in seen:
            raise ScenarioError(path, f"signal {signal!r} is bound twice", field=f"{at}.signal",
                                expected="one entry per signal")  # fmt: skip
        seen.add(signal)
        address = _string(path, entry, "address")
        host, _, port_text = address.rpartition(":")
        port = int(port_text) if port_text.isascii() and port_text.isdigit() else 0
        if not host or ":" in host or "[" in host or not 0 < port < 65536:  # the manager: IPv4
            raise ScenarioError(path, "not an address", field=f"{at}.address", value=address,
                                expected="HOST:PORT, an IPv4 address or host name and a port, "
                                "e.g. 192.0.2.7:161")  # fmt: skip
        flag = entry.get("drive", False)
        if not isinstance(flag, bool):
            raise ScenarioError(path, "wrong type", field=f"{at}.drive", value=flag,
                                expected="true or false")  # fmt: skip
        bindings.append(NtcipBinding(signal, host, port, flag, at))
    return tuple(bindings)


def _check_keys(path: Path, prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ScenarioError(
                path,
                "unknown field",
                field=prefix + key,
                expected="one of " + ", ".join(sorted(allowed)),
            )


def _table(path: Path, doc: dict[str, Any], key: str, allowed: set[str]) -> dict[str, Any]:
    table = doc.get(key, {})
    if not isinstance(table, dict):
        raise ScenarioError(path, "not a table", field=key, value=table, expected=f"[{key}]")
    _check_keys(path, key + ".", table, allowed)
    return table


def _string(path: Path, doc: dict[str, Any], key: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise ScenarioError(path, "wrong type", field=key, value=value, expected="a string")
    return value


def _strings(path: Path, doc: dict[str, Any], key: str) -> list[str]:
    value = doc.get(key, [])
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(path, "wrong type", field=key, value=value, expected="a list of paths")
    return value


def _number(
    path: Path,
    table: dict[str, Any],
    dotted: str,
    default: float,
    *,
    minimum: float,
    strict: bool = False,
) -> float:
    key = dotted.split(".")[-1]
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(path, "wrong type", field=dotted, value=value, expected="a number")
    if value < minimum or (strict and value == minimum):
        bound = f"{'>' if strict else '>='} {minimum:g}"
        raise ScenarioError(path, "out of range", field=dotted, value=value, expected=bound)
    return float(value)


def _lon_lat(path: Path, table: dict[str, Any], dotted: str) -> tuple[float, float] | None:
    value = table.get(dotted.split(".")[-1])
    if value is None:
        return None
    expected = "[longitude, latitude] in degrees, longitude -180..180, latitude -90..90"
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ScenarioError(path, "wrong type", field=dotted, value=value, expected=expected)
    lon, lat = float(value[0]), float(value[1])
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ScenarioError(path, "out of range", field=dotted, value=value, expected=expected)
    return lon, lat


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
