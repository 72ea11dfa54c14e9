// The control room: sign-in, then the map, the alarm list, the intersection panel, the lanes
// and the KPI panel, all fed by one websocket. After a dropped connection (or a server restart) the feed
// reconnects and the page resyncs from the snapshot and the alarm events it missed - no reload.

import { Accounts } from "./accounts.js";
import { AlarmList } from "./alarms.js";
import { Api } from "./api.js";
import { Feed } from "./feed.js";
import { clock } from "./format.js";
import { KpiPanel } from "./kpi.js";
import { LanesPanel } from "./lanes.js";
import { DistrictMap } from "./map.js";
import { IntersectionPanel } from "./panel.js";
import { Chime } from "./sound.js";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "ccsim.token";
const FLAT_SECTIONS = new Set(["run", "kpis", "interval"]);

const page = {
  api: null,
  feed: null,
  user: null,
  role: "viewer",
  state: {},
  t: null,
  runId: null,
  alarmSeq: null,
  network: null,
};
window.ccsim = page;  // for the curious (and for the tests: the page is never reloaded)

// --- sign-in --------------------------------------------------------------------------------------

function showLogin(message = "") {
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("login-token").focus();
}

async function signIn(token) {
  clearTimeout(page.retrySignIn);
  const api = new Api(token);
  const answer = await api.get("/api/me");
  if (!answer.ok) {
    if (answer.status === 0 || answer.status >= 500 || answer.status === 429) {
      // The server is down or restarting, or this address is locked out for a while after
      // too many bad tokens (perhaps someone else's): keep the token and try again then.
      const wait = answer.status === 429 ? answer.retryAfter || 30 : 3;
      showLogin(answer.status === 429
        ? `Too many bad tokens from this address: signing in again in ${wait} s.`
        : `The server is not answering (${answer.data.detail || answer.status}); trying again.`);
      $("login-token").value = token;
      page.retrySignIn = setTimeout(() => signIn(token), wait * 1000);
      return false;
    }
    const reason = answer.status === 401 ? "This token is not accepted."
      : `Refused (${answer.status}): ${answer.data.detail || ""}`;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(reason);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  page.api = api;
  page.user = answer.data.name;
  setRole(answer.data.role);
  $("login").hidden = true;
  $("sign-out").hidden = false;
  await start(token);
  return true;
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("login-token").value.trim();
  if (token) signIn(token);
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  if (page.feed) page.feed.stop();
  location.replace("/");
});

function setRole(role) {
  page.role = role;
  $("who").textContent = `${page.user} \u00b7 ${role}`;
  alarms.setRole(role);
  kpis.setRole(role);
  lanes.setRole(role);
  accounts.setUser(page.user, role);
  panel.update(context());
}

// --- the parts of the page -------------------------------------------------------------------------

const map = new DistrictMap($("map"), { onSelectSignal: (tls) => openPanel(tls) });
page.map = map;

const chime = new Chime($("sound-toggle"));
page.chime = chime;

const alarms = new AlarmList({
  onNewCritical: () => chime.play(),
  list: $("alarm-list"), empty: $("alarm-empty"), count: $("alarm-count"), banner: $("critical-banner"),
  api: null, role: "viewer",
  onFocus: (alarm) => {
    if (!map.focus(alarm.location)) return;
    const tls = (alarm.alertSource || "").startsWith("tls:") ? alarm.alertSource.slice(4) : null;
    if (tls && map.signals.has(tls)) openPanel(tls);
  },
});

const panel = new IntersectionPanel({ element: $("intersection-panel"), api: null, onClose: () => map.select(null) });

const kpis = new KpiPanel({ charts: $("kpi-charts"), controls: $("sim-controls"), api: null });
// A replay moved in time: the charts start again from the KPIs up to then.
kpis.onSeek = () => { kpis.reset(); kpis.backfill(); };

const lanes = new LanesPanel({
  list: $("closed-lanes"), empty: $("lanes-empty"), count: $("closed-count"), reported: $("reported-incidents"),
  commands: $("lane-commands"), lanes: $("lane-ids"), api: null,
});

const accounts = new Accounts({
  dialog: $("accounts"), opener: $("accounts-open"), api: null,
  // An admin who rotated their own token carries on with the new one.
  onOwnToken: (token) => signIn(token),
  pauseFeed: () => page.feed && page.feed.stop(),
  resumeFeed: () => page.feed && page.feed.start(),
});
page.accounts = accounts;

// Live: the feed is connected and the run is going. Otherwise the picture is the last one
// received: it is greyed out and says so, and no command can be sent from it. A replay of a
// finished run is never live: only its own pause, speed and seek act.
function isLive() {
  const run = page.state.run || {};
  return page.connection === "connected" && run.status === "running" && !run.replay;
}

function isReplay() {
  return Boolean((page.state.run || {}).replay);
}

function context() {
  return { state: page.state, t: page.t, role: page.role, live: isLive() };
}

function showLiveness() {
  const live = isLive();
  document.body.dataset.live = live ? "yes" : "no";
  const run = page.state.run || {};
  const label = $("replay-label");
  label.hidden = !run.replay;
  if (run.replay) {
    label.textContent = `REPLAY of a finished run${run.paused ? " (paused)" : ""}: commands are off`;
  }
  const note = $("stale-note");
  note.hidden = live || run.replay && page.connection === "connected" || page.connection === "offline" && !page.feed;
  note.textContent = page.connection !== "connected"
    ? `NOT LIVE (${page.connection}): the picture is from simulation time ${clock(page.t)}`
    : run.status && run.status !== "running"
      ? `The run is ${run.status}${run.detail ? ` (${run.detail})` : ""}: its last picture, at ${clock(page.t)}`
      : "Waiting for the run to start";
}

function openPanel(tls) {
  const feature = page.network.features.find((f) => f.properties.kind === "signal" && f.properties.id === tls);
  map.select(tls);
  map.reveal(tls, $("intersection-panel").offsetWidth + 24);
  panel.open(tls, feature, context());
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && panel.tls) panel.close();
});

// --- the feed ---------------------------------------------------------------------------------------

async function start(token) {
  if (page.feed) page.feed.stop();  // signed in again (the feed refused the previous token)
  alarms.api = panel.api = kpis.api = lanes.api = accounts.api = page.api;
  await loadNetwork();
  page.feed = new Feed({
    token,
    since: () => page.alarmSeq,
    onFrame: receive,
    onState: showConnection,
  });
  page.feed.start();
}

async function loadNetwork() {
  const answer = await page.api.get("/api/network");
  if (!answer.ok) {
    showConnection("offline", `cannot load the network (${answer.status}): ${answer.data.detail || ""}`);
    return;
  }
  page.network = answer.data;
  map.load(page.network);
  lanes.load(page.network);
}

function showConnection(state, detail) {
  page.connection = state;
  showLiveness();
  panel.update(context());
  lanes.update(page.state, page.t, isLive());
  kpis.showRun(page.state.run || {}, isLive() || isReplay() && state === "connected", state === "connected");
  const box = $("connection-state");
  box.dataset.state = state;
  box.title = detail || state;
  box.querySelector(".glyph").textContent = state === "connected" ? "\u25CF" : state === "refused" ? "\u2715" : "\u25CC";
  box.querySelector(".text").textContent = state === "connected" ? "live" : state;
  if (state === "refused") showLogin(`The feed refused this token: ${detail}`);
}

async function receive(frame) {
  switch (frame.type) {
    case "hello":
      if (page.runId !== null && frame.run !== page.runId) await newRun();
      page.runId = frame.run;
      alarms.runId = frame.run;
      if (frame.role !== page.role) setRole(frame.role);
      break;
    case "snapshot":
      // The server started a new run (``POST /api/runs``) and resent the whole state.
      if (page.runId !== null && frame.state.run && frame.state.run.id !== undefined
          && frame.state.run.id !== page.runId) {
        moveToRun(frame.state.run.id);
      }
      page.state = frame.state;
      page.t = frame.t;
      render(null);
      break;
    case "delta": {
      for (const [section, entries] of Object.entries(frame.changes)) {
        const target = page.state[section] || (page.state[section] = {});
        for (const [key, value] of Object.entries(entries)) {
          // In a section of things by id, null means gone; in a flat one it is a value
          // (``run.speed`` null: as fast as possible; an interval's delay null: nobody arrived).
          if (value === null && !FLAT_SECTIONS.has(section)) delete target[key];
          else target[key] = value;
        }
      }
      if (frame.t !== null) page.t = frame.t;
      render(new Set(Object.keys(frame.changes)));
      break;
    }
    case "alarms":
      page.alarmSeq = frame.seq;
      alarms.replace(frame.alarms);
      break;
    case "alarm":
      if (page.alarmSeq !== null && frame.seq <= page.alarmSeq) break;  // seen already
      page.alarmSeq = frame.seq;
      alarms.upsert(frame.alarm);
      break;
    default:
      break;
  }
}

// The server restarted with a new run (perhaps of another scenario): start the picture afresh.
async function newRun() {
  page.state = {};
  page.t = null;
  kpis.reset();
  const open = panel.tls;
  await loadNetwork();
  if (open && map.signals.has(open)) openPanel(open);
  else if (open) panel.close();
  render(null);
  kpis.backfill();
}

// The same server moved on to a new run of its scenario (same network): the run's charts start
// afresh and fill from its own KPIs; the earlier run's alarms stay, marked with their run.
function moveToRun(runId) {
  page.runId = runId;
  alarms.runId = runId;
  page.t = null;
  kpis.reset();
  page.backfilled = false;  // the snapshot's render fills the charts again
}

function render(sections) {
  const run = page.state.run || {};
  const speed = run.speed === null ? "max" : run.speed !== undefined ? `x${run.speed}` : "";
  $("run-info").textContent = [run.id !== undefined && `run ${run.id}`, run.scenario, run.controller, run.status && `${run.status}${run.paused ? " (paused)" : ""}`, speed]
    .filter(Boolean).join(" \u00b7 ");
  $("sim-clock").textContent = clock(page.t);
  map.update(page.state, sections, page.t);
  kpis.sample(page.state, page.t);
  kpis.showRun(run, isLive() || isReplay() && page.connection === "connected", page.connection === "connected");
  alarms.setRunEnded(["finished", "stopped", "failed"].includes(run.status));
  panel.update(context());
  lanes.update(page.state, page.t, isLive());
  showLiveness();
  if (sections === null && page.runId !== null && !page.backfilled) {
    page.backfilled = true;
    kpis.backfill();
  }
}

// --- boot -----------------------------------------------------------------------------------------

// A link that carries the token (``make demo`` prints one): take it, and take it out of the
// address bar and the history.
function tokenFromHash() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) history.replaceState(null, "", location.pathname);
  return token;
}

window.addEventListener("hashchange", () => {
  const token = tokenFromHash();
  if (token) signIn(token);
});

const saved = tokenFromHash() || sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else showLogin();
