// The district map: the SUMO net itself is the base map (there are no tiles offline), drawn on
// Leaflet's plain CRS in the net's own metres. Lanes, junctions, detectors and parking zones are
// vectors on one canvas; signals, devices, incidents and faults are DOM markers so that they carry
// text and shape as well as colour (and can be found by tests and screen readers).
/* global L */

import { anchor, lineLatLngs, toLatLng } from "./geometry.js";
import { signalLook } from "./signals.js";

const QUEUE_LONG = 8;        // vehicles waiting on a lane before it is drawn as abnormal
const ZONE_FULL = 0.9;       // occupancy from which a parking zone is drawn as abnormal
const INCIDENT_SHOWN_S = 900; // how long a detected incident stays on the map (s of simulation)

function divIcon(html, size = [22, 22], anchor = [size[0] / 2, size[1] / 2]) {
  return L.divIcon({ className: "map-icon", html, iconSize: size, iconAnchor: anchor });
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class DistrictMap {
  constructor(element, { onSelectSignal }) {
    this.onSelectSignal = onSelectSignal;
    this.map = L.map(element, {
      crs: L.CRS.Simple, minZoom: -5, maxZoom: 5, zoomSnap: 0.25, zoomDelta: 0.5,
      attributionControl: false, preferCanvas: true, zoomControl: false,
    });
    L.control.zoom({ position: "bottomright" }).addTo(this.map);
    this.renderer = L.canvas({ padding: 0.3 });
    this.layers = L.layerGroup().addTo(this.map);
    new ResizeObserver(() => this.map.invalidateSize()).observe(element);  // e.g. the critical banner
    this.reset();
  }

  reset() {
    this.layers.clearLayers();
    this.lanes = new Map();        // lane id -> {line, style}
    this.stoplines = new Map();    // lane id -> {zone, occupied}: the stop-line detector
    this.signals = new Map();      // tls -> {marker, look}
    this.zones = new Map();        // parking id -> {line, style}
    this.devices = new Map();      // "kind:id" -> marker
    this.faults = new Map();       // lane -> marker
    this.incidents = new Map();    // lane -> marker
    this.places = new Map();       // "junction:A1" / "edge:X" / "lane:X" -> [x, y]
    this.selected = null;
  }

  // Draw the net from the control center's GeoJSON (``GET /api/network``).
  load(collection) {
    this.reset();
    const byKind = (kind) => collection.features.filter((f) => f.properties.kind === kind);
    for (const f of byKind("junction")) {
      this.places.set(`junction:${f.properties.id}`, anchor(f.geometry));
      if (f.geometry.type === "Polygon") {
        L.polygon(lineLatLngs(f.geometry.coordinates[0]), {
          renderer: this.renderer, stroke: false, fillColor: "#c4c4bf", fillOpacity: 1, interactive: false,
        }).addTo(this.layers);
      }
    }
    for (const f of byKind("edge")) this.places.set(`edge:${f.properties.id}`, anchor(f.geometry));
    for (const f of byKind("lane")) {
      const p = f.properties;
      this.places.set(`lane:${p.id}`, anchor(f.geometry));
      const footway = p.allow === "pedestrian";
      const line = L.polyline(lineLatLngs(f.geometry.coordinates), {
        renderer: this.renderer, color: footway ? "#b5b5b0" : "#8b8c88", weight: footway ? 1 : 2.5,
        interactive: false,
      }).addTo(this.layers);
      if (!footway) this.lanes.set(p.id, { line, style: "normal" });
    }
    for (const f of byKind("detector")) {
      const latlngs = f.geometry.type === "Point" ? [toLatLng(f.geometry.coordinates)] : lineLatLngs(f.geometry.coordinates);
      if (latlngs.length === 1) {
        L.circleMarker(latlngs[0], {
          renderer: this.renderer, radius: 1.5, stroke: false, fillColor: "#4b4c4f", fillOpacity: 0.8, interactive: false,
        }).addTo(this.layers);
      } else {
        const zone = L.polyline(latlngs, { renderer: this.renderer, color: "#4b4c4f", weight: 1, opacity: 0.6, interactive: false })
          .addTo(this.layers);
        if (f.properties.detector === "stopline") this.stoplines.set(f.properties.lane, { zone, occupied: false });
      }
    }
    for (const f of byKind("bus_stop")) {
      L.polyline(lineLatLngs(f.geometry.coordinates), {
        renderer: this.renderer, color: "#6d6f73", weight: 4, opacity: 0.5, interactive: false,
      }).addTo(this.layers);
    }
    for (const f of byKind("parking")) {
      const p = f.properties;
      const latlngs = f.geometry.type === "LineString"
        ? lineLatLngs(f.geometry.coordinates) : f.geometry.coordinates.map(toLatLng);
      const line = L.polyline(latlngs, { renderer: this.renderer, color: "#5f6064", weight: 5, opacity: 0.55 })
        .bindTooltip(`${escape(p.name || p.id)}: ${p.capacity} bays (${escape(p.zone)})`)
        .addTo(this.layers);
      this.zones.set(p.id, { line, style: "normal", props: p });
      this.places.set(`parking:${p.id}`, anchor(f.geometry));
    }
    for (const f of byKind("signal")) this.addSignal(f);
    const [x0, y0, x1, y1] = collection.properties.boundary || [0, 0, 1000, 1000];
    this.bounds = L.latLngBounds([y0, x0], [y1, x1]);
    this.fit();
  }

  fit() {
    this.map.invalidateSize();
    this.map.fitBounds(this.bounds, { padding: [16, 16] });
  }

  addSignal(feature) {
    const tls = feature.properties.id;
    const look = signalLook(null);
    const marker = L.marker(toLatLng(feature.geometry.coordinates), {
      icon: divIcon(this.signalHtml(tls, look)), keyboard: true, title: `signal ${tls}`, riseOnHover: true,
    }).addTo(this.layers);
    marker.on("click", () => this.onSelectSignal(tls));
    marker.on("keypress", (event) => {  // Leaflet's keyboard-focusable markers: Enter or Space opens
      if (event.originalEvent.key === "Enter" || event.originalEvent.key === " ") this.onSelectSignal(tls);
    });
    this.signals.set(tls, { marker, look, props: feature.properties });
    this.places.set(`tls:${tls}`, feature.geometry.coordinates);
  }

  signalHtml(tls, look) {
    const selected = this.selected === tls ? " sig-selected" : "";
    return `<span class="${look.className}${selected}" data-testid="signal" data-id="${escape(tls)}"
      aria-label="signal ${escape(tls)}: ${escape(look.label)}" title="${escape(tls)}: ${escape(look.label)}"><b>${look.letter}</b></span>`;
  }

  select(tls) {
    const previous = this.selected;
    this.selected = tls;
    for (const id of [previous, tls]) {
      const s = id && this.signals.get(id);
      if (s) s.marker.setIcon(divIcon(this.signalHtml(id, s.look)));
    }
  }

  // Pan so that a signal is not hidden behind a panel ``insetLeft`` pixels wide on the left.
  reveal(tls, insetLeft) {
    const s = this.signals.get(tls);
    if (!s) return;
    const point = this.map.latLngToContainerPoint(s.marker.getLatLng());
    const size = this.map.getSize();
    const margin = 40;
    let dx = 0;
    if (point.x < insetLeft + margin) dx = point.x - (insetLeft + margin);
    else if (point.x > size.x - margin) dx = point.x - (size.x - margin);
    let dy = 0;
    if (point.y < margin) dy = point.y - margin;
    else if (point.y > size.y - margin) dy = point.y - (size.y - margin);
    if (dx || dy) this.map.panBy([dx, dy], { animate: false });
  }

  // --- live state ------------------------------------------------------------------------------

  // Apply the sections that changed (or the whole state after a snapshot).
  update(state, sections, t = null) {
    const has = (name) => sections === null || sections.has(name);
    if (has("signals")) this.updateSignals(state.signals || {});
    if (has("detectors") || has("lanes")) this.updateLanes(state.detectors || {}, state.lanes || {});
    if (has("detectors")) this.updateDetectors(state.detectors || {});
    if (has("zones")) this.updateZones(state.zones || {});
    if (has("devices") || has("gates") || has("stations") || has("signs") || has("radars")) this.updateDevices(state);
    if (has("sensor_faults")) this.updateMarkers(this.faults, state.sensor_faults || {}, (lane, entry) =>
      `<span class="dev dev-fault" data-testid="sensor-fault" title="detector fault on ${escape(lane)}: ${escape(entry.fault)}">&#10005;</span>`, [20, 16]);
    // Detections stay on the map for INCIDENT_SHOWN_S after the latest one on their lane.
    const recent = Object.fromEntries(Object.entries(state.incidents || {})
      .map(([lane, e]) => [lane, e && t !== null && t - e.t <= INCIDENT_SHOWN_S ? e : null]));
    this.updateMarkers(this.incidents, recent, (lane) =>
      `<span class="dev dev-incident" data-testid="incident" title="incident detected on ${escape(lane)}">&#9650; incident</span>`, [76, 18]);
  }

  updateSignals(signals) {
    for (const [tls, s] of this.signals) {
      const look = signalLook(signals[tls]);
      if (look.className === s.look.className && look.letter === s.look.letter) continue;
      s.look = look;
      s.marker.setIcon(divIcon(this.signalHtml(tls, look)));
    }
  }

  updateLanes(detectors, lanes) {
    for (const [id, lane] of this.lanes) {
      const closed = lanes[id] && lanes[id].closed;
      const queue = detectors[id] ? detectors[id].queue || 0 : 0;
      const style = closed ? "closed" : queue >= QUEUE_LONG ? "queue" : "normal";
      if (style === lane.style) continue;
      lane.style = style;
      lane.line.setStyle(
        style === "closed" ? { color: "#c8102e", weight: 4, dashArray: "6 5" }
          : style === "queue" ? { color: "#b07800", weight: 5, dashArray: null }
            : { color: "#8b8c88", weight: 2.5, dashArray: null });
    }
  }

  // A stop-line detector with a vehicle on it is drawn solid and thicker (as its feed reports).
  updateDetectors(detectors) {
    for (const [lane, stopline] of this.stoplines) {
      const occupied = Boolean(detectors[lane] && detectors[lane].present > 0);
      if (occupied === stopline.occupied) continue;
      stopline.occupied = occupied;
      stopline.zone.setStyle(occupied ? { color: "#2e2f32", weight: 2, opacity: 0.9 } : { color: "#4b4c4f", weight: 1, opacity: 0.6 });
    }
  }

  updateZones(zones) {
    for (const [id, zone] of this.zones) {
      const entry = zones[id];
      if (!entry) continue;
      const share = entry.bays ? entry.sensed_occupied / entry.bays : 0;
      const style = share >= ZONE_FULL ? "full" : `${Math.round(share * 4)}`;
      zone.line.setTooltipContent(
        `${escape(zone.props.name || id)}: ${entry.sensed_occupied}/${entry.bays} bays taken (${Math.round(share * 100)}%)` +
        (entry.price ? `, ${entry.price.toFixed(2)}/h` : "") + (style === "full" ? " - FULL" : ""));
      if (style === zone.style) continue;
      zone.style = style;
      // Occupancy as darkness of grey; a full zone turns amber and thicker (shape and colour).
      zone.line.setStyle(style === "full" ? { color: "#c08a00", weight: 7, opacity: 0.95 }
        : { color: "#3f4044", weight: 5, opacity: 0.3 + 0.15 * Number(style) });
    }
  }

  updateDevices(state) {
    const deployed = state.devices || {};
    const place = (kind, id) => this.places.get(`${kind}:${id}`);
    for (const gate of deployed.gates || []) {
      const g = (state.gates || {})[gate];
      this.device("gate", gate, place("edge", gate),
        `<span class="dev dev-gate" data-testid="gate" title="access gate ${escape(gate)}${g ? `: ${g.reads} reads, ${g.hits} watch-list hits` : ""}">GATE</span>`, [40, 18]);
    }
    for (const station of deployed.air || []) {
      const s = (state.stations || {})[station];
      const index = s ? Math.round(s.index) : null;
      const abnormal = index !== null && index >= 100;
      this.device("air", station, place("junction", station),
        `<span class="dev dev-air${abnormal ? " abnormal" : ""}" data-testid="air-station"
          title="air quality at ${escape(station)}${s ? `: index ${index} (${escape(s.category)}), NOx ${s.nox_1h_ugm3} ug/m3, PM10 ${s.pm10_1h_ugm3} ug/m3 (1 h)` : ""}">${abnormal ? "&#9650; " : ""}AQ ${index ?? "-"}</span>`, [52, 18]);
    }
    for (const sign of deployed.info_signs || []) {
      const s = (state.signs || {})[sign];
      const text = s ? `${s.travel_time_s} s to centre, ${s.free_bays} free bays${s.warnings.length ? ", " + s.warnings.join("; ") : ""}` : "dark";
      // Drawn just right of its edge's middle, beside the gate that shares the edge.
      this.device("sign", sign, place("edge", sign),
        `<span class="dev dev-sign" data-testid="info-sign" title="message sign ${escape(sign)}: ${escape(text)}">${s && s.warnings.length ? "&#9650; " : ""}i</span>`, [24, 18], [-24, 9]);
    }
  }

  device(kind, id, point, html, size, anchor) {
    if (!point) return;
    const key = `${kind}:${id}`;
    const existing = this.devices.get(key);
    if (existing) {
      if (existing.html !== html) {
        existing.marker.setIcon(divIcon(html, size, anchor));
        existing.html = html;
      }
      return;
    }
    const marker = L.marker(toLatLng(point), { icon: divIcon(html, size, anchor), keyboard: false }).addTo(this.layers);
    this.devices.set(key, { marker, html });
  }

  // One marker per lane with an entry; markers of lanes whose entry is gone are removed.
  updateMarkers(markers, entries, html, size) {
    for (const [lane, marker] of markers) {
      if (!entries[lane]) {
        marker.remove();
        markers.delete(lane);
      }
    }
    for (const [lane, entry] of Object.entries(entries)) {
      const point = this.places.get(`lane:${lane}`);
      if (!entry || !point || markers.has(lane)) continue;
      const marker = L.marker(toLatLng(point), { icon: divIcon(html(lane, entry), size), keyboard: false })
        .addTo(this.layers);
      markers.set(lane, marker);
    }
  }

  // Centre the map on a geometry (an alarm's location) and ring it for a moment.
  focus(geometry) {
    const point = anchor(geometry);
    if (!point) return false;
    const latlng = toLatLng(point);
    this.map.setView(latlng, Math.max(this.map.getZoom(), 0.5));
    if (this.ring) this.ring.remove();
    this.ring = L.marker(latlng, {
      icon: divIcon('<span class="focus-ring" data-testid="map-focus"></span>', [44, 44]), interactive: false,
    }).addTo(this.layers);
    return true;
  }

  center() {
    const c = this.map.getCenter();
    return [c.lng, c.lat];
  }
}
