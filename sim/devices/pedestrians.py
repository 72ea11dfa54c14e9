"""Group-only pedestrian counters on the crossings of signalised junctions.

Every ``period_s`` a site looks at who is on each of its crossings; a person not there at the
previous look has stepped on and is counted. Only the set of the last look is kept (to count
each person once), and only the count per ``interval_s`` is ever published (``pedestrian.count``):
no identities, tracks or times of single persons leave the counter. A person crossing in less
than ``period_s`` may be missed; crossings take 8-20 s, so the default 2 s misses none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.devices.config import PedestriansConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import junction_sites
from sim.messages import MessageBus, PedestrianCount


@dataclass
class _Counter:
    site: str
    crossings: list[str]
    last: dict[str, frozenset[str]] = field(default_factory=dict)
    count: int = 0


class PedestrianCounters(DeviceModel):
    def __init__(self, context: DeviceContext, config: PedestriansConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = config.period_s
        network = context.network
        sites = junction_sites(network, config.sites, config.count, source=context.source,
                               field="devices.pedestrians.sites")  # fmt: skip
        self.counters = []
        for tls in sites:
            lanes = network.traffic_lights[tls].crossing_lanes.values()
            crossings = sorted({lane.rsplit("_", 1)[0] for lane in lanes})
            if crossings:
                self.counters.append(_Counter(tls, crossings))
        self.interval_begin = context.begin_s

    def sites(self) -> tuple[str, ...]:
        return tuple(c.site for c in self.counters)

    def sample(self, t: float) -> None:
        for counter in self.counters:
            for crossing in counter.crossings:
                now = frozenset(self.world.edge_person_count_ids(crossing))
                counter.count += len(now - counter.last.get(crossing, frozenset()))
                counter.last[crossing] = now
        if t - self.interval_begin >= self.config.interval_s - 1e-9:
            self._publish(t)

    def _publish(self, t: float) -> None:
        for counter in self.counters:
            count = PedestrianCount(counter.site, self.interval_begin, t, counter.count)
            self.bus.publish(t, f"pedestrians:{counter.site}", count)
            counter.count = 0
        self.interval_begin = t

    def finish(self, t: float) -> None:
        if t > self.interval_begin:
            self._publish(t)


@register_device("pedestrians")
def _build(context: DeviceContext, config: PedestriansConfig) -> DeviceModel:
    return PedestrianCounters(context, config)
