"""Net coordinates (m, x east, y north) to WGS 84 longitude/latitude, for what the control
centre publishes on the earth (NGSI-LD entities, SensorThings Locations).

A net with a geo-projection (the real cities' nets) is projected by sumolib, through
:meth:`sim.network.Network.to_lon_lat`. A generated net has none: it is placed by an origin, the
WGS 84 position of the net's point (0, 0) - ``ccsim serve --geo-origin LON,LAT``, else the
scenario's ``[geo] origin = [lon, lat]`` (:func:`serve_origin`) - and the net's plane is then
taken as a transverse Mercator plane tangent there, exact to well under a millimetre over a
district of a few kilometres. Without either, nothing can be placed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyproj import Transformer

from sim.errors import CcsimError
from sim.network import Network

LonLat = Callable[[float, float], tuple[float, float] | None]

DIGITS = 7
"""Decimal places of degrees kept (about 1 cm)."""


class Georef:
    """Where net points are on the earth; :attr:`placed` False when the net cannot be placed."""

    def __init__(
        self, network: Network, origin: tuple[float, float] | None, origin_from: str = "[geo] origin"
    ) -> None:
        self._to_lon_lat: LonLat | None = None
        self.how = "none"
        if network.location.projected:
            self._to_lon_lat = network.to_lon_lat
            self.how = f"net projection ({network.location.projection})"
        elif origin is not None:
            lon0, lat0 = origin
            transformer = Transformer.from_crs(
                f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m",
                "EPSG:4326",
                always_xy=True,
            )

            def inverse(x: float, y: float) -> tuple[float, float]:
                lon, lat = transformer.transform(x, y)
                return float(lon), float(lat)

            self._to_lon_lat = inverse
            self.how = f"{origin_from} {lon0:g}, {lat0:g}"

    @property
    def placed(self) -> bool:
        return self._to_lon_lat is not None

    def point(self, x: float, y: float) -> list[float] | None:
        """[lon, lat] of net point (``x``, ``y``) in m, or None."""
        if self._to_lon_lat is None:
            return None
        lon_lat = self._to_lon_lat(x, y)
        if lon_lat is None:
            return None
        return [round(lon_lat[0], DIGITS), round(lon_lat[1], DIGITS)]

    def geometry(self, geometry: dict[str, Any] | None) -> dict[str, Any] | None:
        """A GeoJSON geometry in net coordinates (as :mod:`controlcenter.geojson` draws them)
        in WGS 84, or None if it cannot be placed."""
        if geometry is None or not self.placed:
            return None
        try:
            coordinates = self._convert(geometry["coordinates"])
        except (KeyError, TypeError, ValueError):
            return None
        if coordinates is None:
            return None
        return {"type": geometry["type"], "coordinates": coordinates}

    def _convert(self, value: Any) -> Any:
        if isinstance(value, list | tuple) and value and isinstance(value[0], int | float):
            return self.point(float(value[0]), float(value[1]))
        if isinstance(value, list | tuple):
            converted = [self._convert(v) for v in value]
            return None if any(c is None for c in converted) else converted
        raise ValueError(f"not a coordinate array: {value!r}")


def serve_origin(
    given: tuple[float, float] | None, scenario_origin: tuple[float, float] | None
) -> tuple[tuple[float, float] | None, str]:
    """The origin a served run places its net by, and where it came from: ``--geo-origin``
    (``given``) over the scenario's ``[geo] origin``."""
    if given is not None:
        return given, "--geo-origin"
    return scenario_origin, "[geo] origin"


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
