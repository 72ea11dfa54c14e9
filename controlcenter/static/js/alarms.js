// The alarm list (ISA-18.2 states, sorted by severity, then newest first) and the bar that makes
// a new critical alarm impossible to miss: it stays across the screen, names the alarm, and goes
// only when every critical alarm is acknowledged.
//
// Rows never move under the operator's hand: while the pointer or the keyboard focus is in the
// list, its order is frozen - rows change in place, new alarms wait behind an "N new" button and
// cleared ones stay (marked) - and the list sorts itself again once the pointer leaves. Rows are
// kept by alarm id and rebuilt only when their alarm changed, at most once per animation frame.

import { describeAnswer, may } from "./api.js";
import { clock } from "./format.js";

const RANK = { critical: 5, high: 4, medium: 3, low: 2, informational: 1 };
const SHAPE = { critical: "\u25C6", high: "\u25B2", medium: "\u25A0", low: "\u25CF", informational: "\u25CB" };
const UNACKNOWLEDGED = new Set(["active-unacknowledged", "return-to-normal-unacknowledged"]);
const STATE_TEXT = {
  "active-unacknowledged": "ACTIVE, UNACK",
  "acknowledged": "active, acknowledged",
  "return-to-normal-unacknowledged": "returned to normal, UNACK",
  "shelved": "shelved",
  "out-of-service": "out of service",
  "cleared": "cleared",
};
const SET_APART = new Set(["shelved", "out-of-service"]);

// Severity first, then newest first (by when it was raised: alarms outlive runs, and a new run's
// simulation clock starts again at zero), shelved and out-of-service ones last.
export function sortAlarms(alarms) {
  const shelvedLast = (a) => (SET_APART.has(a.state) ? 1 : 0);
  return [...alarms].sort((a, b) => shelvedLast(a) - shelvedLast(b)
    || (RANK[b.severity] || 0) - (RANK[a.severity] || 0)
    || String(b.dateIssued || "").localeCompare(String(a.dateIssued || ""))
    || b.id - a.id);
}

function testid(node, id) {
  node.setAttribute("data-testid", id);
  return node;
}

export class AlarmList {
  constructor({ list, empty, count, banner, api, role, onFocus, onNewCritical }) {
    Object.assign(this, { list, empty, count, banner, api, role, onFocus, onNewCritical });
    this.criticalSeen = new Set();
    this.alarms = new Map();     // id -> alarm (open ones; cleared ones leave)
    this.rows = new Map();       // id -> {li, signature}
    this.order = [];             // ids as shown
    this.selected = null;
    this.commenting = null;
    this.focusComment = false;
    this.answers = new Map();
    this.runId = null;
    this.runEnded = false;       // the run in progress has ended: its alarms may be cleared by hand
    this.pointerInside = false;
    this.scheduled = false;
    this.newButton = testid(document.createElement("button"), "alarm-new");
    this.newButton.type = "button";
    this.newButton.className = "alarm-new";
    this.newButton.hidden = true;
    this.newButton.addEventListener("click", () => {
      this.pointerInside = false;
      this.render(true);
    });
    // In the heading line, so that showing it moves no row.
    document.getElementById("alarms-title").append(this.newButton);
    list.addEventListener("pointerenter", () => { this.pointerInside = true; });
    list.addEventListener("pointerleave", () => {
      this.pointerInside = false;
      this.schedule();
    });
    list.addEventListener("focusout", () => this.schedule());
    this.banner.querySelector(".critical-ack").addEventListener("click", () => {
      const top = this.topCritical();
      if (top) this.act(top.id, "acknowledge", { note: "" });
    });
    this.banner.querySelector(".critical-show").addEventListener("click", () => {
      const top = this.topCritical();
      if (top) this.choose(top);
    });
  }

  setRunEnded(ended) {
    if (ended === this.runEnded) return;
    this.runEnded = ended;
    this.schedule();
  }

  setRole(role) {
    this.role = role;
    for (const row of this.rows.values()) row.signature = "";  // rebuild with the role's buttons
    this.schedule();
  }

  // A full list (``alarms`` frame) or one changed alarm (``alarm`` frame).
  replace(alarms) {
    this.alarms = new Map(alarms.map((a) => [a.id, a]));
    this.schedule();
  }

  upsert(alarm) {
    if (alarm.state === "cleared") this.alarms.delete(alarm.id);
    else this.alarms.set(alarm.id, alarm);
    this.schedule();
  }

  topCritical() {
    return sortAlarms([...this.alarms.values()].filter((a) => a.severity === "critical" && UNACKNOWLEDGED.has(a.state)))[0];
  }

  async act(id, action, body) {
    const answer = await this.api.post(`/api/alarms/${id}/${action}`, body);
    this.answers.set(id, describeAnswer(answer));
    const row = this.rows.get(id);
    if (row) row.signature = "";
    if (answer.ok && answer.data && answer.data.alarm) this.upsert(answer.data.alarm);
    else this.schedule();
  }

  choose(alarm) {
    const previous = this.rows.get(this.selected);
    if (previous) previous.signature = "";
    this.selected = alarm.id;
    const row = this.rows.get(alarm.id);
    if (row) row.signature = "";
    this.onFocus(alarm);
    this.schedule();
  }

  get frozen() {
    return this.pointerInside || this.list.contains(document.activeElement);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render(false);
    });
  }

  render(force) {
    const sorted = sortAlarms(this.alarms.values());
    this.count.textContent = String(sorted.length);
    const operator = may(this.role, "operator");
    let ids;
    if (this.frozen && !force) {
      // Keep the rows where they are; count what waits.
      ids = this.order;
      const waiting = sorted.filter((a) => !this.rows.has(a.id)).length;
      this.newButton.hidden = waiting === 0;
      this.newButton.textContent = `\u25BC ${waiting} new alarm${waiting === 1 ? "" : "s"} - show`;
    } else {
      ids = sorted.map((a) => a.id);
      this.newButton.hidden = true;
      for (const [id, row] of this.rows) {
        if (!this.alarms.has(id)) {
          row.li.remove();
          this.rows.delete(id);
        }
      }
    }
    const lis = ids.map((id) => this.rowFor(id, operator));
    // Move only what is out of place (a node that stays keeps its focus and hover).
    let cursor = this.list.firstElementChild;
    for (const li of lis) {
      if (li === cursor) cursor = cursor.nextElementSibling;
      else this.list.insertBefore(li, cursor);
    }
    this.order = ids;
    this.empty.hidden = ids.length > 0;
    this.renderBanner(sorted);
  }

  rowFor(id, operator) {
    const alarm = this.alarms.get(id) || { ...this.rows.get(id).alarm, state: "cleared" };
    const answer = this.answers.get(id);
    const signature = JSON.stringify([alarm, operator, this.selected === id, this.commenting === id, answer,
      this.runEnded, this.runId]);
    let row = this.rows.get(id);
    if (!row) {
      row = { li: document.createElement("li"), signature: "" };
      this.wire(row.li, id);
      this.rows.set(id, row);
    }
    if (row.signature !== signature) {
      row.signature = signature;
      row.alarm = alarm;
      this.fill(row.li, alarm, operator, answer);
    }
    return row.li;
  }

  wire(li, id) {
    testid(li, "alarm-row");
    li.tabIndex = 0;
    const choose = () => {
      const alarm = this.alarms.get(id);
      if (alarm) this.choose(alarm);
    };
    li.addEventListener("click", (event) => {
      if (!event.target.closest(".alarm-actions")) choose();
    });
    li.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === li) choose();
    });
  }

  fill(li, alarm, operator, answer) {
    const unack = UNACKNOWLEDGED.has(alarm.state);
    li.className = `alarm-row${unack ? " unack" : ""}${SET_APART.has(alarm.state) ? " shelved" : ""}` +
      `${alarm.state === "cleared" ? " gone" : ""}${this.selected === alarm.id ? " selected" : ""}`;
    li.dataset.alarmId = alarm.id;
    li.dataset.severity = alarm.severity;
    li.dataset.state = alarm.state;
    li.dataset.issued = alarm.dateIssued || "";
    const typing = li.querySelector("[data-testid=alarm-comment-text]");
    const draft = typing ? typing.value : "";

    const sev = document.createElement("span");
    sev.className = `sev sev-${alarm.severity}`;
    sev.innerHTML = `<span class="shape" aria-hidden="true">${SHAPE[alarm.severity] || "?"}</span>`;
    sev.append(alarm.severity);
    const text = document.createElement("span");
    text.className = "alarm-text";
    text.textContent = alarm.description;
    const meta = document.createElement("span");
    meta.className = "alarm-meta";
    const tag = document.createElement("span");
    tag.className = `state-tag${unack ? " unack" : ""}`;
    tag.textContent = STATE_TEXT[alarm.state] || alarm.state;
    const run = this.runId !== null && alarm.run !== undefined && alarm.run !== this.runId ? ` \u00b7 run ${alarm.run}` : "";
    meta.append(tag, `#${alarm.id} ${alarm.subCategory} \u00b7 t ${clock(alarm.t, "")}${run}` +
      (alarm.occurrences > 1 ? ` \u00b7 ${alarm.occurrences}x` : ""));
    const children = [sev, text, meta];
    if (operator && alarm.state !== "cleared") children.push(this.actions(alarm, unack, draft));
    if (answer) {
      const p = document.createElement("span");
      p.className = `answer${answer.refused ? " refused" : ""}`;
      p.style.gridColumn = "2";
      p.textContent = answer.text;
      children.push(p);
    }
    li.replaceChildren(...children);
  }

  actions(alarm, unack, draft) {
    const box = document.createElement("div");
    box.className = "alarm-actions";
    const button = (label, id, onClick) => {
      const b = testid(document.createElement("button"), id);
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", onClick);
      box.append(b);
      return b;
    };
    if (unack) button("Acknowledge", "alarm-ack", () => this.act(alarm.id, "acknowledge", { note: "" }));
    if (alarm.state === "out-of-service") {
      button("Return to service", "alarm-return-to-service", () => this.act(alarm.id, "return-to-service", { note: "" }));
    } else {
      if (alarm.state === "shelved") button("Unshelve", "alarm-unshelve", () => this.act(alarm.id, "unshelve", { note: "" }));
      else button("Shelve 1 h", "alarm-shelve", () => this.act(alarm.id, "shelve", { duration_s: 3600, note: "" }));
      button("Out of service", "alarm-out-of-service", () => this.act(alarm.id, "out-of-service", { note: "" }));
    }
    // An alarm whose run has ended can no longer return to normal: an operator clears it.
    if (alarm.run !== this.runId || this.runEnded) {
      button("Clear", "alarm-clear", () => this.act(alarm.id, "clear", { note: "" }));
    }
    if (this.commenting === alarm.id) {
      const input = testid(document.createElement("input"), "alarm-comment-text");
      input.placeholder = "comment";
      input.maxLength = 2000;
      input.value = draft;
      input.setAttribute("aria-label", `comment on alarm ${alarm.id}`);
      box.append(input);
      const send = () => {
        const text = input.value.trim();
        this.commenting = null;
        if (text) this.act(alarm.id, "comment", { text });
        else this.schedule();
      };
      input.addEventListener("keydown", (event) => { if (event.key === "Enter") send(); });
      button("Save", "alarm-comment-save", send);
      if (this.focusComment) {
        this.focusComment = false;
        setTimeout(() => input.focus({ preventScroll: true }), 0);
      }
    } else {
      button("Comment", "alarm-comment", () => {
        this.commenting = alarm.id;
        this.focusComment = true;
        this.schedule();
      });
    }
    return box;
  }

  renderBanner(sorted) {
    const critical = sorted.filter((a) => a.severity === "critical" && UNACKNOWLEDGED.has(a.state));
    const title = "ccsim control room";
    if (!critical.length) {
      this.banner.hidden = true;
      this.banner.dataset.alarmId = "";
      document.title = title;
      return;
    }
    const fresh = critical.filter((a) => a.state === "active-unacknowledged" && !this.criticalSeen.has(a.id));
    for (const a of fresh) this.criticalSeen.add(a.id);
    if (fresh.length) this.onNewCritical(fresh);
    const top = critical[0];
    const isNew = this.banner.hidden || this.banner.dataset.alarmId !== String(top.id);
    this.banner.hidden = false;
    this.banner.dataset.alarmId = top.id;
    const state = top.state === "active-unacknowledged" ? "active" : "returned to normal";
    this.banner.querySelector(".critical-text").textContent =
      `CRITICAL ALARM${critical.length > 1 ? ` (${critical.length} unacknowledged)` : ""}: ${top.description} (${state})`;
    this.banner.querySelector(".critical-ack").hidden = !may(this.role, "operator");
    if (isNew) {
      // Draw the eye for a few seconds (then stay, without costing the CPU for ever).
      this.banner.classList.remove("arrived");
      void this.banner.offsetWidth;
      this.banner.classList.add("arrived");
    }
    document.title = `\u25C6 ${critical.length} CRITICAL - ${title}`;
  }
}
