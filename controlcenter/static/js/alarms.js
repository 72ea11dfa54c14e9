// The alarm list (ISA-18.2 states, sorted by severity, then newest first) and the banner that
// makes a new critical alarm impossible to miss: it stays on top of the map, names the alarm,
// pulses, and goes only when every critical alarm is acknowledged.

import { describeAnswer, may } from "./api.js";

const RANK = { critical: 5, high: 4, medium: 3, low: 2, informational: 1 };
const SHAPE = { critical: "\u25C6", high: "\u25B2", medium: "\u25A0", low: "\u25CF", informational: "\u25CB" };
const UNACKNOWLEDGED = new Set(["active-unacknowledged", "return-to-normal-unacknowledged"]);
const STATE_TEXT = {
  "active-unacknowledged": "ACTIVE, UNACK",
  "acknowledged": "active, acknowledged",
  "return-to-normal-unacknowledged": "cleared, UNACK",
  "shelved": "shelved",
  "cleared": "cleared",
};

export function sortAlarms(alarms) {
  const shelvedLast = (a) => (a.state === "shelved" ? 1 : 0);
  return [...alarms].sort((a, b) => shelvedLast(a) - shelvedLast(b)
    || (RANK[b.severity] || 0) - (RANK[a.severity] || 0)
    || (b.t ?? 0) - (a.t ?? 0)
    || b.id - a.id);
}

function clock(t) {
  if (t === null || t === undefined) return "";
  const s = Math.max(0, Math.round(t));
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, "0")).join(":");
}

export class AlarmList {
  constructor({ list, empty, count, banner, api, role, onFocus }) {
    Object.assign(this, { list, empty, count, banner, api, role, onFocus });
    this.alarms = new Map();
    this.selected = null;
    this.commenting = null;
    this.answers = new Map();
    this.banner.querySelector(".critical-ack").addEventListener("click", () => {
      const top = this.topCritical();
      if (top) this.act(top.id, "acknowledge", { note: "" });
    });
    this.banner.querySelector(".critical-show").addEventListener("click", () => {
      const top = this.topCritical();
      if (top) this.choose(top);
    });
  }

  setRole(role) {
    this.role = role;
    this.render();
  }

  // A full list (``alarms`` frame) or one changed alarm (``alarm`` frame).
  replace(alarms) {
    this.alarms = new Map(alarms.map((a) => [a.id, a]));
    this.render();
  }

  upsert(alarm) {
    if (alarm.state === "cleared") this.alarms.delete(alarm.id);
    else this.alarms.set(alarm.id, alarm);
    this.render();
  }

  topCritical() {
    return sortAlarms([...this.alarms.values()].filter((a) => a.severity === "critical" && UNACKNOWLEDGED.has(a.state)))[0];
  }

  async act(id, action, body) {
    const answer = await this.api.post(`/api/alarms/${id}/${action}`, body);
    this.answers.set(id, describeAnswer(answer));
    if (answer.ok && answer.data && answer.data.alarm) this.upsert(answer.data.alarm);
    else this.render();
  }

  choose(alarm) {
    this.selected = alarm.id;
    this.onFocus(alarm);
    this.render();
  }

  render() {
    const sorted = sortAlarms(this.alarms.values());
    this.count.textContent = String(sorted.length);
    this.empty.hidden = sorted.length > 0;
    const operator = may(this.role, "operator");
    const typing = this.list.querySelector("[data-testid=alarm-comment-text]");
    const draft = typing ? typing.value : "";
    const rows = sorted.map((alarm) => this.row(alarm, operator));
    this.list.replaceChildren(...rows);
    const input = this.list.querySelector("[data-testid=alarm-comment-text]");
    if (input && draft) input.value = draft;
    this.renderBanner(sorted);
  }

  row(alarm, operator) {
    const li = document.createElement("li");
    const unack = UNACKNOWLEDGED.has(alarm.state);
    li.className = `alarm-row${unack ? " unack" : ""}${alarm.state === "shelved" ? " shelved" : ""}` +
      `${this.selected === alarm.id ? " selected" : ""}`;
    li.dataset.testid = "alarm-row";
    li.setAttribute("data-testid", "alarm-row");
    li.dataset.alarmId = alarm.id;
    li.dataset.severity = alarm.severity;
    li.dataset.state = alarm.state;
    li.tabIndex = 0;

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
    meta.append(tag, `#${alarm.id} ${alarm.subCategory} \u00b7 t ${clock(alarm.t)}` +
      (alarm.occurrences > 1 ? ` \u00b7 ${alarm.occurrences}x` : ""));
    li.append(sev, text, meta);

    const choose = () => this.choose(alarm);
    li.addEventListener("click", (event) => {
      if (!event.target.closest(".alarm-actions")) choose();
    });
    li.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === li) choose();
    });

    if (operator) li.append(this.actions(alarm, unack));
    const answer = this.answers.get(alarm.id);
    if (answer) {
      const p = document.createElement("span");
      p.className = `answer${answer.refused ? " refused" : ""}`;
      p.style.gridColumn = "2";
      p.textContent = answer.text;
      li.append(p);
    }
    return li;
  }

  actions(alarm, unack) {
    const box = document.createElement("div");
    box.className = "alarm-actions";
    const button = (label, testid, onClick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.testid = testid;
      b.setAttribute("data-testid", testid);
      b.addEventListener("click", onClick);
      box.append(b);
      return b;
    };
    if (unack) button("Acknowledge", "alarm-ack", () => this.act(alarm.id, "acknowledge", { note: "" }));
    if (alarm.state === "shelved") button("Unshelve", "alarm-unshelve", () => this.act(alarm.id, "unshelve", { note: "" }));
    else button("Shelve 1 h", "alarm-shelve", () => this.act(alarm.id, "shelve", { duration_s: 3600, note: "" }));
    if (this.commenting === alarm.id) {
      const input = document.createElement("input");
      input.placeholder = "comment";
      input.maxLength = 2000;
      input.dataset.testid = "alarm-comment-text";
      input.setAttribute("data-testid", "alarm-comment-text");
      box.append(input);
      const send = () => {
        const text = input.value.trim();
        this.commenting = null;
        if (text) this.act(alarm.id, "comment", { text });
        else this.render();
      };
      input.addEventListener("keydown", (event) => { if (event.key === "Enter") send(); });
      button("Save", "alarm-comment-save", send);
      setTimeout(() => input.focus({ preventScroll: true }), 0);
    } else {
      button("Comment", "alarm-comment", () => { this.commenting = alarm.id; this.render(); });
    }
    return box;
  }

  renderBanner(sorted) {
    const critical = sorted.filter((a) => a.severity === "critical" && UNACKNOWLEDGED.has(a.state));
    const title = "ccsim control room";
    if (!critical.length) {
      this.banner.hidden = true;
      document.title = title;
      return;
    }
    const top = critical[0];
    this.banner.hidden = false;
    this.banner.dataset.alarmId = top.id;
    this.banner.querySelector(".critical-text").textContent =
      `CRITICAL ALARM${critical.length > 1 ? ` (${critical.length})` : ""}: ${top.description}`;
    this.banner.querySelector(".critical-ack").hidden = !may(this.role, "operator");
    document.title = `\u25C6 ${critical.length} CRITICAL - ${title}`;
  }
}
