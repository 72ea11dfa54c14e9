// SUMO net coordinates (metres, x east, y north) on Leaflet's plain CRS: latlng = [y, x].

export function toLatLng([x, y]) {
  return [y, x];
}

export function lineLatLngs(coordinates) {
  return coordinates.map(toLatLng);
}

// The point halfway along a polyline (by length).
export function midpoint(coordinates) {
  if (coordinates.length === 1) return coordinates[0];
  const lengths = [];
  let total = 0;
  for (let i = 1; i < coordinates.length; i++) {
    const [x0, y0] = coordinates[i - 1], [x1, y1] = coordinates[i];
    const d = Math.hypot(x1 - x0, y1 - y0);
    lengths.push(d);
    total += d;
  }
  let left = total / 2;
  for (let i = 1; i < coordinates.length; i++) {
    const d = lengths[i - 1];
    if (left <= d && d > 0) {
      const [x0, y0] = coordinates[i - 1], [x1, y1] = coordinates[i];
      return [x0 + (x1 - x0) * (left / d), y0 + (y1 - y0) * (left / d)];
    }
    left -= d;
  }
  return coordinates[coordinates.length - 1];
}

// One representative point of any GeoJSON geometry (centroid of a ring's vertices, middle of a line).
export function anchor(geometry) {
  if (!geometry) return null;
  switch (geometry.type) {
    case "Point": return geometry.coordinates;
    case "LineString": return midpoint(geometry.coordinates);
    case "MultiPoint": return average(geometry.coordinates);
    case "Polygon": return average(geometry.coordinates[0].slice(0, -1));
    default: return null;
  }
}

function average(points) {
  if (!points.length) return null;
  const x = points.reduce((s, p) => s + p[0], 0) / points.length;
  const y = points.reduce((s, p) => s + p[1], 0) / points.length;
  return [x, y];
}
