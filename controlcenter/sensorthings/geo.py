"""Where the service's Locations are: net coordinates (m) to WGS 84 through
:class:`controlcenter.geo.Georef`.

A net with a geo-projection (real districts imported from OpenStreetMap) is projected with its
own ``<location>``; a net without one (generated nets, the bundled district) is placed by the
run's origin (``--geo-origin``, else the scenario's ``[geo] origin``). With neither, a Location
is still required: the net is laid at 0°, 0°, and every Location says so in its properties.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlcenter.geo import Georef
from sim.network import Network


@dataclass
class Projection:
    """``(x, y)`` in net metres to ``(longitude, latitude)`` in degrees; ``source`` says how."""

    georef: Georef
    source: str

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        point = self.georef.point(x, y)
        assert point is not None  # always placed (see projection())
        return point[0], point[1]


def projection(
    network: Network, origin: tuple[float, float] | None, origin_from: str = "--geo-origin"
) -> Projection:
    """How ``network``'s points are placed on the earth (see the module docstring)."""
    if network.location.projected:
        return Projection(Georef(network, None), "the net's geo-projection")
    if origin is None:
        return Projection(
            Georef(network, (0.0, 0.0)),
            "no geo-projection in the net, no --geo-origin nor [geo] origin: placed at 0°, 0°",
        )
    lon, lat = origin
    return Projection(
        Georef(network, origin, origin_from), f"net point (0, 0) placed at {origin_from} {lon:g},{lat:g}"
    )
