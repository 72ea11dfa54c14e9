"""Net coordinates (m) to WGS 84 for the service's Locations, through sumolib.

A net with a geo-projection (real districts imported from OpenStreetMap) is projected with its
own ``<location>`` (:meth:`sim.network.Network.to_lon_lat`). A net without one (generated nets,
the bundled district) is laid on a transverse Mercator plane whose origin - net point (0, 0) - is
the configured ``origin`` (``ccsim serve --geo-origin LON,LAT``); with none given, 0°, 0°, and
every Location says so in its properties.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import CcsimError
from sim.network import Location, Network


@dataclass
class Projection:
    """``(x, y)`` in net metres to ``(longitude, latitude)`` in degrees; ``source`` says how."""

    network: Network
    source: str

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        lon_lat = self.network.to_lon_lat(x, y)
        assert lon_lat is not None  # a projection is always set (see projection())
        return round(lon_lat[0], 7), round(lon_lat[1], 7)


def projection(network: Network, origin: tuple[float, float] | None) -> Projection:
    """How ``network``'s points are placed on the earth (see the module docstring)."""
    if network.location.projected:
        return Projection(network, "the net's geo-projection")
    lon, lat = origin if origin is not None else (0.0, 0.0)
    check_origin(lon, lat)
    plane = Network(
        path=network.path,
        location=Location(
            projection=f"+proj=tmerc +lat_0={lat!r} +lon_0={lon!r} +k=1 +x_0=0 +y_0=0 "
            "+datum=WGS84 +units=m +no_defs"
        ),
    )
    if origin is None:
        return Projection(plane, "no geo-projection in the net and no --geo-origin: placed at 0°, 0°")
    return Projection(plane, f"net point (0, 0) placed at --geo-origin {lon:g},{lat:g}")


def check_origin(lon: float, lat: float) -> None:
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise CcsimError(
            f"--geo-origin {lon:g},{lat:g}: expected longitude -180..180 and latitude -90..90 (degrees)"
        )


def parse_origin(text: str) -> tuple[float, float]:
    """``LON,LAT`` in degrees (``-77.03,-12.12``)."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lon, lat = float(parts[0]), float(parts[1])
    except ValueError:
        raise CcsimError(
            f"--geo-origin {text!r}: expected LON,LAT in degrees, e.g. -77.03,-12.12"
        ) from None
    check_origin(lon, lat)
    return lon, lat
