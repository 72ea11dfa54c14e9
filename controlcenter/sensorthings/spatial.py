"""The geospatial functions of ``$filter`` (SensorThings API 1.1, 9.3.3.5.2, Table 25), on shapely.

Geometries come from the entities' GeoJSON (a Location's ``location``, a FeatureOfInterest's
``feature``, a GeoJSON object inside ``properties``) and from literals written as Well-Known Text
in longitude-latitude order: ``geography'POINT(-77.03 -12.12)'``, ``geography'LINESTRING(...)'``,
``geography'POLYGON((...))'`` (``geometry'...'`` and a leading ``SRID=4326;`` are read too).

Units: the service's coordinates are WGS 84 degrees; the standard leaves the unit of a distance
to the service, and this one answers in **metres on the WGS 84 ellipsoid** - what a user of a
city's map expects - for ``geo.distance`` (between the two closest points of the geometries; the
closest points are found on the longitude-latitude plane, exact for two points) and
``geo.length`` (of a line, along the ellipsoid). The spatial relations (``geo.intersects`` and
the nine ``st_`` functions of OGC Simple Features) are worked out on the longitude-latitude plane,
as a database does with geometries in EPSG:4326: edges are straight in degrees, which at the
scale of a district is the same as on the ground.

A value that is no geometry (a name, a null, GeoJSON that cannot be read) makes a function null,
so the entity does not pass the filter; a literal that is not a geometry is a 400.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import shapely
import shapely.wkt
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import LineString, MultiLineString, Point, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from shapely.validation import explain_validity

_GEOD = Geod(ellps="WGS84")
MAX_VERTICES = 10_000
"""Points in one literal: more would let one request tie up the service's geometry code."""

_RELATIONS: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    "geo.intersects": lambda a, b: bool(a.intersects(b)),
    "st_equals": lambda a, b: bool(a.equals(b)),
    "st_disjoint": lambda a, b: bool(a.disjoint(b)),
    "st_touches": lambda a, b: bool(a.touches(b)),
    "st_within": lambda a, b: bool(a.within(b)),
    "st_overlaps": lambda a, b: bool(a.overlaps(b)),
    "st_crosses": lambda a, b: bool(a.crosses(b)),
    "st_intersects": lambda a, b: bool(a.intersects(b)),
    "st_contains": lambda a, b: bool(a.contains(b)),
}
ARITY: dict[str, tuple[int, int]] = {
    "geo.distance": (2, 2),
    "geo.length": (1, 1),
    **dict.fromkeys(_RELATIONS, (2, 2)),
    "st_relate": (3, 3),
}
"""The functions, with how many arguments each takes."""
BOOLEAN = frozenset(ARITY) - {"geo.distance", "geo.length"}
"""The ones that are true or false (a filter of their own)."""
GEOMETRY_ARGUMENTS = {"geo.length": 1, "st_relate": 2}
"""How many leading arguments are geometries (2 unless named here)."""

_PATTERN = re.compile(r"[TF*012]{9}")
_GEOJSON_TYPES = frozenset(("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                            "MultiPolygon", "GeometryCollection"))  # fmt: skip


class GeometryError(ValueError):
    """A literal that is not a geometry this service can use (the parser names the literal)."""


def parse_literal(token: str) -> BaseGeometry:
    """``geography'WKT'`` (or ``geometry'WKT'``) -> its geometry, checked: Well-Known Text,
    not empty, at most :data:`MAX_VERTICES` points, longitudes -180..180 and latitudes -90..90,
    and valid (a polygon's ring closed and not crossing itself)."""
    body = token[token.index("'") + 1 : -1].replace("''", "'").strip()
    if body[:5].upper() == "SRID=":
        srid, _, body = body.partition(";")
        if srid[5:].strip() != "4326":
            raise GeometryError(f"{srid}: only SRID=4326 (WGS 84 longitude, latitude) is served")
    try:
        geometry = shapely.wkt.loads(body)
    except NotImplementedError:
        raise GeometryError(_CURVED) from None
    except (ShapelyError, ValueError) as exc:
        raise GeometryError(f"not Well-Known Text ({exc})") from None
    try:
        return _checked(geometry)
    except (ShapelyError, NotImplementedError):  # e.g. a curve inside a collection
        raise GeometryError(f"a geometry the service cannot work with; {_CURVED}") from None


_CURVED = (
    "curved geometries (CIRCULARSTRING, COMPOUNDCURVE, CURVEPOLYGON, MULTICURVE, MULTISURFACE) "
    "are not served: write the curve as straight segments"
)


def _checked(geometry: BaseGeometry) -> BaseGeometry:
    if geometry.is_empty:
        raise GeometryError("the geometry is empty")
    coordinates = shapely.get_coordinates(geometry)
    if len(coordinates) > MAX_VERTICES:
        raise GeometryError(f"{len(coordinates)} points; at most {MAX_VERTICES} are taken")
    for lon, lat in coordinates:
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise GeometryError(
                f"point ({lon:g} {lat:g}) is off the earth: expected longitude -180..180, then "
                f"latitude -90..90, in degrees"
            )
    if not geometry.is_valid:
        raise GeometryError(f"not a valid geometry: {explain_validity(geometry)}")
    return geometry


def is_geometry(value: Any) -> bool:
    """Whether ``value`` is a geometry (what a geography literal reads as)."""
    return isinstance(value, BaseGeometry)


def check_pattern(pattern: Any) -> str:
    """A DE-9IM pattern for ``st_relate``: 9 characters of ``T F * 0 1 2``."""
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        raise ValueError(
            f"the pattern {pattern!r} is no DE-9IM matrix pattern: expected 9 characters of "
            f"T, F, *, 0, 1, 2 (e.g. 'T********')"
        )
    return pattern


def evaluator(name: str) -> Callable[..., Any]:
    """The function ``name`` for one request: GeoJSON values are read into geometries once per
    request (a filter over Observations meets the same FeatureOfInterest many times)."""
    read: dict[int, tuple[Any, BaseGeometry | None]] = {}

    def geometry(value: Any) -> BaseGeometry | None:
        if isinstance(value, BaseGeometry):
            return value
        if not isinstance(value, dict):
            return None
        known = read.get(id(value))
        if known is not None and known[0] is value:  # the value is kept, so its id is not reused
            return known[1]
        found = from_geojson(value)
        read[id(value)] = (value, found)
        return found

    if name == "geo.length":

        def length(a: Any) -> float | None:
            line = geometry(a)
            if not isinstance(line, LineString | MultiLineString) or line.is_empty:
                return None
            return float(_GEOD.geometry_length(line))

        return length
    if name == "geo.distance":

        def distance(a: Any, b: Any) -> float | None:
            first, second = geometry(a), geometry(b)
            if first is None or second is None:
                return None
            return _distance(first, second)

        return distance
    if name == "st_relate":

        def relate(a: Any, b: Any, pattern: Any) -> bool | None:
            check_pattern(pattern)
            first, second = geometry(a), geometry(b)
            if first is None or second is None:
                return None
            try:
                return bool(first.relate_pattern(second, pattern))
            except ShapelyError:
                return None

        return relate
    relation = _RELATIONS[name]

    def relates(a: Any, b: Any) -> bool | None:
        first, second = geometry(a), geometry(b)
        if first is None or second is None:
            return None
        try:
            return relation(first, second)
        except ShapelyError:  # a stored geometry GEOS cannot work with: undecided, not a 500
            return None

    return relates


def from_geojson(value: dict[str, Any]) -> BaseGeometry | None:
    """A GeoJSON geometry (or Feature) as a shapely geometry; None if it is none or unreadable."""
    if value.get("type") == "Feature":
        inner = value.get("geometry")
        return from_geojson(inner) if isinstance(inner, dict) else None
    if value.get("type") not in _GEOJSON_TYPES:
        return None
    try:
        geometry = shape(value)
    except (ShapelyError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return None if geometry.is_empty else geometry


def _distance(a: BaseGeometry, b: BaseGeometry) -> float | None:
    """Metres on the WGS 84 ellipsoid between the closest points of ``a`` and ``b``."""
    if a.is_empty or b.is_empty:
        return None
    try:
        if isinstance(a, Point) and isinstance(b, Point):
            p, q = a, b
        elif a.intersects(b):
            return 0.0
        else:
            p, q = nearest_points(a, b)
    except ShapelyError:
        return None
    return float(_GEOD.inv(p.x, p.y, q.x, q.y)[2])
