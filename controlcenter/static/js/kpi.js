// The KPI panel: small live charts of the run (simulation time on x), and - for operators and
// above - the simulation controls (pause, resume, speed; a new run once the run has ended).

import { describeAnswer, may } from "./api.js";

const KEEP_S = 3600;
const ENDED = new Set(["finished", "stopped", "failed"]);

// Each chart: how to read its value from the live state (null: nothing to show yet).
const CHARTS = [
  { key: "delay", label: "Delay, 5 min", unit: "s/veh", digits: 1,
    about: "mean delay of the vehicles that arrived in the last closed 5-minute interval",
    read: (s) => num((s.interval || {}).mean_delay_arrived_s) },
  { key: "throughput", label: "Throughput, 5 min", unit: "veh/h", digits: 0,
    about: "vehicles that arrived in the last closed 5-minute interval, per hour",
    read: (s) => num((s.interval || {}).throughput_veh_h) },
  { key: "running", label: "Vehicles now", unit: "veh", digits: 0,
    about: "vehicles in the district now (departed and not yet arrived)",
    read: (s) => num((s.kpis || {}).running) },
  { key: "occupancy", label: "Parking taken", unit: "%", digits: 0,
    about: "bays the bay sensors report taken, of all bays",
    read: (s) => {
      const zones = Object.values(s.zones || {}).filter(Boolean);
      const bays = zones.reduce((sum, z) => sum + (z.bays || 0), 0);
      return bays ? (100 * zones.reduce((sum, z) => sum + (z.sensed_occupied || 0), 0)) / bays : null;
    } },
  { key: "air", label: "Air index, worst", unit: "", digits: 0,
    about: "the worst station's air-quality index (100: the 1-hour standard)",
    read: (s) => {
      const values = Object.values(s.stations || {}).filter(Boolean).map((v) => v.index);
      return values.length ? Math.max(...values) : null;
    } },
  { key: "violations", label: "Violations", unit: "", digits: 0,
    about: "traffic violations the enforcement devices recorded since the run started",
    read: (s) => num((s.kpis || {}).violations) },
];

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export class KpiPanel {
  constructor({ charts, controls, api }) {
    Object.assign(this, { api, controls });
    this.series = new Map(CHARTS.map((c) => [c.key, []]));
    this.views = new Map();
    const ns = "http://www.w3.org/2000/svg";
    for (const chart of CHARTS) {
      const value = document.createElement("span");
      value.className = "value";
      value.dataset.kpi = chart.key;
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 100 30");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", chart.label);
      const line = document.createElementNS(ns, "polyline");
      svg.append(line);
      const box = document.createElement("div");
      box.className = "kpi";
      box.setAttribute("data-testid", `kpi-${chart.key}`);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = chart.label;
      label.title = chart.about;
      box.append(label, value, svg);
      charts.append(box);
      this.views.set(chart.key, { value, line, box });
    }
    this.wireControls();
  }

  reset() {
    for (const values of this.series.values()) values.length = 0;
    this.draw();
  }

  // Intervals closed before this page connected (``GET /api/kpis``), so the charts start full.
  async backfill() {
    const answer = await this.api.get("/api/kpis?scope=network&period=interval");
    if (!answer.ok) return;
    const wanted = { mean_delay_arrived_s: "delay", throughput_veh_h: "throughput" };
    for (const row of answer.data.items) {
      const key = wanted[row.metric];
      if (!key || row.value === null) continue;
      const values = this.series.get(key);
      if (!values.some((p) => p[0] === row.end_s)) values.push([row.end_s, row.value]);
    }
    for (const values of this.series.values()) values.sort((a, b) => a[0] - b[0]);
    this.draw();
  }

  sample(state, t) {
    if (t === null || t === undefined) return;
    for (const chart of CHARTS) {
      const value = chart.read(state);
      if (value === null) continue;
      const values = this.series.get(chart.key);
      const last = values[values.length - 1];
      if (last && last[0] >= t) {
        if (last[0] === t) last[1] = value;
        continue;
      }
      values.push([t, value]);
      while (values.length && values[0][0] < t - KEEP_S) values.shift();
    }
    this.draw();
  }

  draw() {
    for (const chart of CHARTS) {
      const values = this.series.get(chart.key);
      const view = this.views.get(chart.key);
      const last = values[values.length - 1];
      view.value.textContent = last ? `${last[1].toFixed(chart.digits)} ${chart.unit}`.trim() : "-";
      if (values.length < 2) {
        view.line.setAttribute("points", last ? "0,15 100,15" : "");
        continue;
      }
      // The range of the series itself (a flat one is drawn across the middle).
      const t0 = values[0][0], t1 = last[0];
      let lo = Math.min(...values.map((p) => p[1])), hi = Math.max(...values.map((p) => p[1]));
      if (hi - lo < 1e-9) [lo, hi] = [lo - 1, hi + 1];
      const points = values.map(([t, v]) =>
        `${(100 * (t - t0)) / (t1 - t0 || 1)},${27 - (24 * (v - lo)) / (hi - lo)}`).join(" ");
      view.box.title = `${chart.label}: ${lo.toFixed(chart.digits)} .. ${hi.toFixed(chart.digits)} ${chart.unit}`.trim();
      view.line.setAttribute("points", points);
    }
  }

  // --- simulation controls (operators: the server's rule) ---------------------------------------

  setRole(role) {
    this.controls.hidden = !may(role, "operator");
  }

  // ``live``: the controls act (a live run, or a replay: then seeking too). ``connected``: the
  // feed is, so the run's status shown is the server's (a new run may start once it has ended).
  showRun(run, live, connected) {
    const newRun = this.controls.querySelector("#sim-new-run");
    newRun.hidden = Boolean(run.replay);  // a replay shows a finished run; it starts none
    newRun.disabled = !connected || !ENDED.has(run.status) || this.starting;
    const seekBox = this.controls.querySelector("#sim-seek-box");
    seekBox.hidden = !run.replay;
    if (run.replay) {
      const range = this.controls.querySelector("#sim-seek");
      range.min = String(Math.floor(run.begin_s ?? 0));
      range.max = String(Math.ceil(run.end_t ?? 0));
      if (document.activeElement !== range) range.value = String(Math.round(run.t ?? 0));
      for (const control of seekBox.querySelectorAll("input, button")) control.disabled = !live;
    }
    const select = this.controls.querySelector("#sim-speed");
    const speed = run.speed === null ? "max" : run.speed === undefined ? "" : String(run.speed);
    if (speed && document.activeElement !== select) {
      if (![...select.options].some((o) => o.value === speed)) select.add(new Option(`x${speed}`, speed));
      select.value = speed;
    }
    this.controls.querySelector("#sim-pause").disabled = !live || Boolean(run.paused);
    this.controls.querySelector("#sim-resume").disabled = !live || !run.paused;
    select.disabled = !live;
  }

  wireControls() {
    const answerLine = this.controls.querySelector("#sim-answer");
    const say = async (what, promise) => {
      const said = describeAnswer(await promise);
      answerLine.className = `answer${said.refused ? " refused" : ""}`;
      answerLine.textContent = `${what}: ${said.text}`;
    };
    this.controls.querySelector("#sim-pause").addEventListener("click",
      () => say("pause", this.api.post("/api/simulation/pause")));
    this.controls.querySelector("#sim-resume").addEventListener("click",
      () => say("resume", this.api.post("/api/simulation/resume")));
    const seekTo = (value) => {
      if (value === "" || Number.isNaN(Number(value))) return;
      say(`go to t ${value} s`, this.api.post("/api/simulation/seek", { t: Number(value) }))
        .then(() => { if (this.onSeek) this.onSeek(); });
    };
    this.controls.querySelector("#sim-seek").addEventListener("change", (event) => seekTo(event.target.value));
    this.controls.querySelector("#sim-seek-go").addEventListener("click",
      () => seekTo(this.controls.querySelector("#sim-seek-t").value));
    // The answer names the new run (or why not); the feed then moves the page on to it.
    const newRun = this.controls.querySelector("#sim-new-run");
    newRun.addEventListener("click", async () => {
      this.starting = true;  // one request at a time (the server refuses a second anyway)
      newRun.disabled = true;
      try {
        await say("new run", this.api.post("/api/runs"));
      } finally {
        this.starting = false;
      }
    });
    this.controls.querySelector("#sim-speed").addEventListener("change", (event) => {
      const value = event.target.value;
      say("speed", this.api.post("/api/simulation/speed", { speed: value === "max" ? null : Number(value) }));
    });
  }
}
