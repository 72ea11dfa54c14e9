// The intersection panel: controller and mode, the current phase and what each link shows, the
// last five minutes of phases as a timeline, why the light last changed (each decision with its
// reason, as the controller, the guard or an operator gave it), approach queues, and - for
// operators - overrides that go through the safety guard (hold, force a plan, flash, automatic).

import { describeAnswer, may } from "./api.js";
import { el } from "./dom.js";
import { clock } from "./format.js";
import { STATE_MEANING, aspect, isAbnormalMode } from "./signals.js";

const WINDOW_S = 300;
// Aspect by height as well as colour (and colours far apart in lightness): green a full bar
// with the phase number, amber a half bar, all red a thin line at the bottom.
const ASPECT_FILL = { green: "#3f6e42", amber: "#e0b000", red: "#8a2f2f", flash: "#e0b000", dark: "#777" };
const BAR = { green: [4, 26], amber: [17, 13], flash: [17, 13], red: [26, 4], dark: [26, 4] };

// The green phase a signal shows or is changing to: the guard's target where ccsim drives
// (``phase`` is then the one SUMO shows, -1 between greens), SUMO's phase where its program runs.
function heading(entry) {
  return entry.target ?? entry.phase;
}

function approachOf(lane) {
  return lane.replace(/_\d+$/, "");
}

export class IntersectionPanel {
  constructor({ element, api, onClose }) {
    Object.assign(this, { element, api, onClose });
    this.tls = null;
    this.history = [];
    this.answer = null;
  }

  async open(tls, feature, context) {
    this.tls = tls;
    this.builtFor = null;
    this.feature = feature;
    this.history = [];
    this.answer = null;
    this.element.hidden = false;
    this.render(context);
    const now = context.t ?? 0;
    const answer = await this.api.get(
      `/api/events?kind=signal.phase&source=${encodeURIComponent(`tls:${tls}`)}` +
      `&since_t=${Math.max(0, now - WINDOW_S)}&limit=5000`);
    if (this.tls !== tls) return;  // another intersection was chosen meanwhile
    if (answer.ok) {
      const earlier = answer.data.items.map((e) => ({ t: e.t, phase: heading(e.payload), state: e.payload.state }));
      const later = this.history.filter((h) => !earlier.length || h.t > earlier[earlier.length - 1].t);
      this.history = [...earlier, ...later];
    }
    this.render(context);
  }

  close() {
    this.tls = null;
    this.element.hidden = true;
    this.onClose();
  }

  // Called with every change of state while the panel is open.
  update(context) {
    if (!this.tls) return;
    const entry = (context.state.signals || {})[this.tls];
    if (entry) {
      const last = this.history[this.history.length - 1];
      if (!last || last.state !== entry.state || last.phase !== heading(entry)) {
        this.history.push({ t: entry.since ?? context.t, phase: heading(entry), state: entry.state });
      }
    }
    this.render(context);
  }

  // The parts that do not change while the panel is open are built once (so that a button is
  // not replaced under the operator's pointer); the rest is refreshed on every frame.
  build(role) {
    const close = el("button", { type: "button", testid: "panel-close", "aria-label": "close" }, "\u2715");
    close.addEventListener("click", () => this.close());
    this.facts = el("dl", { class: "facts" });
    this.links = el("div", { class: "links", "aria-label": "what each link shows" });
    this.timelineBox = el("div");
    this.queueBox = el("div");
    this.whyBox = el("div");
    this.builtFor = { tls: this.tls, role };
    this.element.replaceChildren(
      el("div", { class: "panel-head" }, el("h3", {}, `Signal ${this.tls}`), close),
      this.facts, this.links,
      el("div", { class: "section-title" }, "Last 5 minutes"), this.timelineBox,
      el("div", { class: "section-title" }, "Why it changed"), this.whyBox,
      el("div", { class: "section-title" }, "Approach queues (vehicles)"), this.queueBox,
      ...this.overrides(role));
  }

  render({ state, t, role, live }) {
    if (!this.tls) return;
    if (!this.builtFor || this.builtFor.tls !== this.tls || this.builtFor.role !== role) this.build(role);
    const signal = (state.signals || {})[this.tls] || {};
    const run = state.run || {};
    const props = this.feature ? this.feature.properties : { lanes: [], programs: [] };
    const mode = signal.mode || "automatic";
    const modeText = el("span", { class: isAbnormalMode(mode) ? "mode-abnormal" : "", testid: "panel-mode" },
      isAbnormalMode(mode) ? `\u25B2 ${mode.toUpperCase()}` : mode);
    const since = this.phaseSince(signal);
    const elapsed = since !== null && t !== null ? ` (${Math.max(0, Math.round(t - since))} s)` : "";
    // The green phase the signal shows, or is changing to (through amber / red).
    const changing = signal.phase === -1 || signal.state && aspect(signal.state) !== "green" ? ", changing to it" : "";
    this.facts.replaceChildren(
      el("dt", {}, "controller"), el("dd", { testid: "panel-controller" }, run.controller || "-"),
      el("dt", {}, "mode"), el("dd", {}, modeText),
      el("dt", {}, "program"), el("dd", {}, signal.program ?? "-"),
      el("dt", {}, "phase"), el("dd", { testid: "panel-phase" }, `${heading(signal) ?? "-"}${elapsed}${changing}`));
    const links = [];
    for (const [i, c] of [...(signal.state || "")].entries()) {
      const kind = /[Gg]/.test(c) ? "g" : /[yYu]/.test(c) ? "y" : /[oO]/.test(c) ? "o" : /[rRs]/.test(c) ? "r" : "";
      links.push(el("span", { class: `link ${kind}`, title: `link ${i}: ${c} - ${STATE_MEANING[c] || "unknown"}` }, c));
    }
    this.links.replaceChildren(...links);
    this.timelineBox.replaceChildren(this.timeline(t));
    this.whyBox.replaceChildren(this.decisions((state.decisions || {})[this.tls] || []));
    this.queueBox.replaceChildren(this.queues(props.lanes || [], state.detectors || {}, state.sensor_faults || {}));
    if (this.holdButton) this.holdButton.textContent = `Hold phase ${heading(signal) ?? ""}`.trim();
    // Commands only on a live picture (the server would refuse them on a finished run anyway).
    for (const control of this.commandControls || []) control.disabled = !live;
    this.phase = heading(signal);
  }

  // Since when the signal has been on (or heading to) its current green phase: the start of the
  // latest run of history entries with that phase (a pedestrian link ending does not restart it).
  phaseSince(signal) {
    const phase = heading(signal);
    if (phase === undefined) return null;
    let since = signal.since ?? null;
    for (let i = this.history.length - 1; i >= 0 && this.history[i].phase === phase; i--) {
      since = this.history[i].t;
    }
    return since;
  }

  timeline(now) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${WINDOW_S} 46`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "timeline");
    svg.setAttribute("data-testid", "phase-timeline");
    if (now === null || now === undefined) return svg;
    const start = now - WINDOW_S;
    const kept = this.history.filter((h, i) => i + 1 >= this.history.length || this.history[i + 1].t > start);
    this.history = kept;
    for (const [i, h] of kept.entries()) {
      const from = Math.max(start, h.t);
      const to = i + 1 < kept.length ? kept[i + 1].t : now;
      if (to <= from) continue;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", String(from - start));
      rect.setAttribute("width", String(to - from));
      const shown = aspect(h.state);
      const [y, height] = BAR[shown] || BAR.dark;
      rect.setAttribute("y", String(y));
      rect.setAttribute("height", String(height));
      rect.setAttribute("fill", ASPECT_FILL[shown]);
      rect.setAttribute("stroke", "#fff");
      rect.setAttribute("stroke-width", "0.5");
      rect.setAttribute("data-phase", String(h.phase));
      const title = document.createElementNS(ns, "title");
      title.textContent = `phase ${h.phase}: ${h.state} from t ${Math.round(h.t)} s for ${Math.round(to - from)} s`;
      rect.append(title);
      svg.append(rect);
      if (shown === "green" && to - from >= 8) {
        const label = document.createElementNS(ns, "text");
        label.setAttribute("x", String(from - start + 1.5));
        label.setAttribute("y", "21");
        label.setAttribute("font-size", "10");
        label.setAttribute("fill", "#fff");
        label.textContent = String(h.phase);
        svg.append(label);
      }
    }
    for (const [x, text] of [[2, "-5 min"], [WINDOW_S - 22, "now"]]) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(x));
      label.setAttribute("y", "43");
      label.setAttribute("font-size", "10");
      label.setAttribute("fill", "#55575b");
      label.textContent = text;
      svg.append(label);
    }
    return svg;
  }

  // The latest decisions, newest first: when, who decided (the controller, the guard, an
  // operator, pre-emption), the reason and its figures in words.
  decisions(entries) {
    const list = el("ol", { class: "decisions", testid: "decisions" });
    for (const d of [...entries].reverse()) {
      const to = d.to === undefined ? "" : ` \u2192 ${d.to}`;
      list.append(el("li", { title: d.values ? JSON.stringify(d.values) : "" },
        el("span", { class: "when" }, clock(d.t)), " ",
        el("strong", {}, `${d.reason}${to}`), ` (${d.by}) `,
        el("span", { class: "why" }, d.detail)));
    }
    if (!entries.length) list.append(el("li", { class: "none" }, "no decision yet"));
    return list;
  }

  // Queues by approach, as the detectors report them; an approach with a faulty detector says so
  // (its figure would be a guess).
  queues(lanes, detectors, faults) {
    const approaches = new Map();
    for (const lane of lanes) {
      const entry = approaches.get(approachOf(lane)) || { queue: 0, faulty: false };
      entry.queue += detectors[lane] ? detectors[lane].queue || 0 : 0;
      entry.faulty = entry.faulty || Boolean(faults[lane]);
      approaches.set(approachOf(lane), entry);
    }
    const most = Math.max(1, ...[...approaches.values()].map((a) => a.queue));
    const table = el("table", { class: "queues", testid: "approach-queues" });
    for (const [approach, { queue, faulty }] of [...approaches.entries()].sort()) {
      const bar = el("div", { class: `bar${queue >= 8 ? " long" : ""}` });
      bar.style.width = `${(100 * queue) / most}%`;
      table.append(el("tr", {}, el("td", {}, approach),
        el("td", { class: "num" }, `${queue}${queue >= 8 ? " \u25B2" : ""}`),
        el("td", { style: "width: 45%" }, faulty ? el("span", { class: "fault-note" }, "\u2715 detector fault") : bar)));
    }
    return table;
  }

  overrides(role) {
    this.holdButton = null;
    this.commandControls = [];
    this.answerLine = null;
    if (!may(role, "operator")) return [];
    const props = this.feature ? this.feature.properties : { programs: [] };
    const box = el("div", { class: "overrides", testid: "overrides" });
    const send = async (action, argument = "") => {
      this.answer = { refused: false, text: `${action}: sent` };
      this.renderAnswer();
      const answer = await this.api.post(`/api/signals/${encodeURIComponent(this.tls)}/override`, { action, argument });
      const said = describeAnswer(answer);
      this.answer = { refused: said.refused, text: `${action}: ${said.text}` };
      this.renderAnswer();
    };
    const button = (label, testid, onClick) => {
      const b = el("button", { type: "button", testid }, label);
      b.addEventListener("click", onClick);
      box.append(b);
      return b;
    };
    this.holdButton = button("Hold phase", "override-hold", () => send("hold", String(this.phase ?? "")));
    const programs = el("select", { testid: "override-program", "aria-label": "program" },
      ...(props.programs || []).map((p) => el("option", { value: p }, `plan ${p}`)));
    box.append(programs);
    this.commandControls = [
      this.holdButton, programs,
      button("Force plan", "override-plan", () => send("plan", programs.value)),
      button("Flash", "override-flash", () => send("flash")),
      button("Automatic", "override-automatic", () => send("automatic")),
    ];
    this.answerLine = el("div", { class: "answer", role: "status", testid: "override-answer" });
    this.renderAnswer();
    return [el("div", { class: "section-title" }, "Override (through the safety guard)"), box, this.answerLine];
  }

  renderAnswer() {
    if (!this.answerLine) return;
    this.answerLine.className = `answer${this.answer && this.answer.refused ? " refused" : ""}`;
    this.answerLine.textContent = this.answer ? this.answer.text : "";
  }
}
