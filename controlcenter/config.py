"""Settings of ``ccsim serve``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controlcenter.rules import DEFAULT_RULES, Rule

DEFAULT_DB = "sqlite:///out/control-center.db"


@dataclass(frozen=True)
class MqttOptions:
    """``--mqtt`` and its companions: the bay sensors' LoRaWAN network (see controlcenter/lorawan)."""

    url: str | None = None
    """``mqtt://[user:password@]host:port`` (or ``mqtts://``) of an existing broker; None: start
    a Mosquitto child on a free loopback port."""
    ca_file: Path | None = None
    fmt: str = "tts"
    """Which network server's JSON the simulated sensors' uplinks come in: ``tts`` or ``chirpstack``."""
    link: str = "ideal"
    """The simulated radio link's profile (``ideal``, ``urban``, ``poor``)."""
    heartbeat_s: float | None = None
    """Heartbeat period of every simulated sensor; None: each vendor's."""
    registry: Path | None = None
    """Real devices: their registry file (CSV); then nothing simulated is published."""


@dataclass(frozen=True)
class ServeConfig:
    """A live run and its server. Times in s, rates in Hz; ``speed`` None runs unpaced."""

    scenario: str
    controller: str = "adaptive"
    variant: str | None = None
    """A scenario variant (``[variants.<name>]`` or ``key=value``), as ``ccsim run --variant``."""
    seed: int = 1
    speed: float | None = 1.0
    begin_s: float | None = None
    end_s: float | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    db_url: str = DEFAULT_DB
    out: Path | None = None
    """Where the run's outputs go (summary.json...); default ``out/serve-<scenario>``."""
    feed_rate_hz: float = 2.0
    send_timeout_s: float = 2.0
    command_wait_s: float = 2.0
    """How long a command request waits for the simulation's verdict before answering 202."""
    rules: tuple[Rule, ...] = field(default=DEFAULT_RULES)
    ntcip: tuple[str, int] | None = None
    """``--ntcip HOST:PORT``: every signal an NTCIP agent, on consecutive UDP ports from PORT."""
    ntcip_stations: tuple[tuple[str, tuple[str, int]], ...] = ()
    """``--ntcip-station TLS=HOST:PORT``: external NTCIP 1209 stations on a signal's approaches."""
    ntcip_controllers: tuple[tuple[str, tuple[str, int]], ...] = ()
    """``--ntcip-controller TLS=HOST:PORT``: external NTCIP 1202 controllers driving a signal
    (hardware in the loop)."""
    mqtt: MqttOptions | None = None
    """The bay sensors' LoRaWAN network over MQTT (``--mqtt``); None: none."""
    ngsi_ld: str | None = None
    """``--ngsi-ld URL``: an NGSI-LD context broker to push the entities to; None: none."""
    ngsi_ld_period_s: float = 5.0
    """How often the changed entities are pushed, s."""
    geo_origin: tuple[float, float] | None = None
    """``--geo-origin LON,LAT``: where net point (0, 0) lies, for nets without a geo-projection
    (SensorThings Locations); None: 0, 0."""
    sta_mqtt_select: tuple[str, ...] = ()
    """``--sta-mqtt-select TOPIC``: SensorThings ``$select`` topics served over MQTT (a broker
    cannot tell the control center who subscribed to what, so only these are)."""
