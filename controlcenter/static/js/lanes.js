// The lanes section: which lanes are closed and who holds each (the operators' hold, each
// incident blocking it - a lane opens only when the last lets go), the incidents operators
// reported, and - for operators - closing or opening a lane and reporting an incident on it.

import { describeAnswer, may } from "./api.js";
import { el } from "./dom.js";
import { clock } from "./format.js";

const CAUSE = { stopped_vehicle: "stopped vehicle", blocked_lane: "lane blocked" };

// "operator:ana" -> "operator ana"; an incident keeps its id.
function holder(owner) {
  return owner.startsWith("operator:") ? `operator ${owner.slice("operator:".length)}` : owner;
}

export class LanesPanel {
  // ``commands``: the operators' box (folded away by default) with the lane and incident form.
  constructor({ list, empty, count, reported, commands, lanes, api }) {
    Object.assign(this, { list, empty, count, reported, commands, lanes, api });
    this.role = "viewer";
    const $ = (testid) => commands.querySelector(`[data-testid=${testid}]`);
    this.laneInput = $("lane-id");
    this.incidentRow = $("incident-form");
    this.answerLine = $("lane-answer");
    this.controls = [...commands.querySelectorAll("form button, form input, form select")];
    $("lane-close").addEventListener("click", () => this.laneCommand("close"));
    $("lane-open").addEventListener("click", () => this.laneCommand("open"));
    $("incident-submit").addEventListener("click", () => this.report({
      cause: $("incident-cause").value,
      pos_m: Number($("incident-pos").value),
      duration_s: Number($("incident-duration").value),
    }));
    commands.querySelector("form").addEventListener("submit", (event) => event.preventDefault());
  }

  setRole(role) {
    this.role = role;
    this.commands.hidden = !may(role, "operator");
  }

  // The vehicle lanes of the net, offered as the operator types.
  load(network) {
    const ids = network.features
      .filter((f) => f.properties.kind === "lane" && f.properties.allow !== "pedestrian")
      .map((f) => f.properties.id).sort();
    this.lanes.replaceChildren(...ids.map((id) => el("option", { value: id })));
  }

  update(state, t, live) {
    const closed = Object.entries(state.lanes || {}).filter(([, e]) => e && e.closed).sort();
    this.count.textContent = String(closed.length);
    this.empty.hidden = closed.length > 0;
    this.list.replaceChildren(...closed.map(([lane, e]) => el("li", { testid: "closed-lane", "data-lane": lane },
      el("span", { class: "lane-name" }, lane),
      el("span", { class: "holders", testid: "lane-holders" },
        `held by ${(e.owners && e.owners.length ? e.owners : [`operator:${e.user}`]).map(holder).join(", ")}`),
      el("span", { class: "since" }, `since ${clock(e.since)}`))));
    const reported = Object.entries(state.reported_incidents || {}).filter(([, e]) => e).sort();
    this.reported.replaceChildren(...reported.map(([id, e]) => el("li", { testid: "reported-incident", "data-incident": id },
      el("span", { class: "lane-name" }, `\u25B2 ${id}`),
      `${CAUSE[e.cause] || e.cause} on ${e.lane} at ${Math.round(e.pos_m)} m, reported by ${e.user}`,
      el("span", { class: "since" }, `until ${clock(e.until)}`))));
    // Incidents can be reported only where the run has the incident model.
    this.incidentRow.hidden = !("incidents" in (state.devices || {}));
    for (const control of this.controls) control.disabled = !live;
  }

  lane() {
    const lane = this.laneInput.value.trim();
    if (!lane) this.say({ refused: true, text: "name a lane first (e.g. from the list)" });
    return lane;
  }

  async laneCommand(action) {
    const lane = this.lane();
    if (!lane) return;
    this.say({ refused: false, text: `${action} ${lane}: sent` });
    const answer = await this.api.post(`/api/lanes/${encodeURIComponent(lane)}/${action}`);
    const said = describeAnswer(answer);
    this.say({ refused: said.refused, text: `${action} ${lane}: ${said.text}` });
  }

  async report(incident) {
    const lane = this.lane();
    if (!lane) return;
    const cut = lane.lastIndexOf("_");
    const index = Number(lane.slice(cut + 1));
    if (cut <= 0 || !Number.isInteger(index)) {
      this.say({ refused: true, text: `${lane}: expected a lane id, edge_index (e.g. E_C_1)` });
      return;
    }
    this.say({ refused: false, text: `incident on ${lane}: sent` });
    const answer = await this.api.post("/api/incidents", { edge: lane.slice(0, cut), lane: index, ...incident });
    const said = describeAnswer(answer);
    this.say({ refused: said.refused, text: `incident on ${lane}: ${said.text}` });
  }

  say(answer) {
    this.answerLine.className = `answer${answer.refused ? " refused" : ""}`;
    this.answerLine.textContent = answer.text;
  }
}
