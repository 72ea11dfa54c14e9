"""``ccsim serve --ntcip-station TLS=HOST:PORT``: an external NTCIP 1209 detector station
watching the approaches of signal TLS, polled once per sample period and shown beside what the
simulated detectors of the same lanes measured (the ``ntcip_stations`` section of the live
state): zone *n* is the signal's detector *n*, the *n*-th incoming lane of its map feature.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from adapters.ntcip.device import SignalDevice
from adapters.ntcip.manager import Manager, ManagerError, StationPoller, ZoneSample
from adapters.ntcip.model import ZONE_OK
from controlcenter.ntcip import parse_address
from controlcenter.state import StateChanges
from sim.errors import CcsimError
from sim.sensors import StationReport, StationZone

log = logging.getLogger("ccsim.ntcip")

STATION_COMMUNITY_ENV = "CCSIM_SNMP_STATION_COMMUNITY"
"""The community ccsim reads external stations with (default ``public``)."""
SECTION = "ntcip_stations"


def parse_station(text: str) -> tuple[str, tuple[str, int]]:
    """``TLS=HOST:PORT`` -> (signal id, address)."""
    tls, sep, address = text.partition("=")
    if not sep or not tls:
        raise CcsimError(f"--ntcip-station '{text}': expected TLS=HOST:PORT, e.g. C=192.0.2.7:161")
    return tls, parse_address(address)


class StationWatch:
    """Polls one external station and publishes each completed period of its zones."""

    def __init__(
        self,
        device: SignalDevice,
        target: tuple[str, int],
        community: bytes,
        publish: Callable[[StateChanges], None],
        *,
        send: Callable[[StationReport], bool] | None = None,
    ) -> None:
        self.device = device
        self.target = target
        self.community = community
        self.publish = publish
        self.send = send
        """Set when the station drives its signal's controllers: each period goes into the
        simulation too."""
        self.periods = 0
        self.failures = 0
        self.lanes = {d.number: d.lane for d in device.layout.detectors}
        """Zone *n* -> the signal's detector *n*'s lane."""

    @property
    def tls(self) -> str:
        return self.device.layout.tls

    async def run(self) -> None:
        manager = await Manager.open(self.community)
        try:
            poller = StationPoller(
                manager, self.target, [d.number for d in self.device.layout.detectors]
            )
            period_s = await self._period(poller)
            while True:
                try:
                    samples = await poller.poll()
                except ManagerError as exc:
                    self.failures += 1
                    self.publish({SECTION: {f"{self.tls}/status": {"error": str(exc)}}})
                else:
                    if samples:
                        self.periods += 1
                        self.publish({SECTION: self._entries(samples)})
                        if self.send is not None:
                            self.send(self.report(samples, period_s))
                # a quarter period: a new period is seen within 25 % of it
                await asyncio.sleep(max(1.0, period_s / 4))
        finally:
            manager.close()

    async def _period(self, poller: StationPoller) -> float:
        while True:
            try:
                return await poller.sample_period_s()
            except ManagerError as exc:
                self.failures += 1
                self.publish({SECTION: {f"{self.tls}/status": {"error": str(exc)}}})
                await asyncio.sleep(5.0)

    def report(self, samples: list[ZoneSample], period_s: float) -> StationReport:
        """A completed period as the simulation takes it (zone *n* -> the signal's lane)."""
        lanes = self.lanes
        zones = tuple(
            StationZone(lanes[s.zone], s.volume, s.occupancy_pct, s.speed_kmh, s.status == ZONE_OK)
            for s in samples
            if s.zone in lanes
        )
        return StationReport(self.tls, f"{self.target[0]}:{self.target[1]}", period_s, zones)

    def _entries(self, samples: list[Any]) -> dict[str, Any]:
        lanes = self.lanes
        entries: dict[str, Any] = {f"{self.tls}/status": {"error": None}}
        for s in samples:
            lane = lanes.get(s.zone, "")
            simulated = self.device.last_sample(lane)
            entries[f"{self.tls}/{s.zone}"] = {
                "tls": self.tls, "zone": s.zone, "lane": lane,
                "station": f"{self.target[0]}:{self.target[1]}",
                "sequence": s.sequence, "end_s": s.end_s, "volume": s.volume,
                "occupancy_pct": s.occupancy_pct, "speed_kmh": s.speed_kmh, "status": s.status,
                "drives_control": self.send is not None,
                "simulated": None if simulated is None else {
                    "volume": simulated.volume,
                    "occupancy_pct": round(simulated.occupancy * 100, 1),
                    "fault": simulated.fault,
                },
            }  # fmt: skip
        return entries
