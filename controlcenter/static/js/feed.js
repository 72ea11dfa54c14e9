// The websocket feed: authenticates with its first message, reconnects with back-off after a
// drop and asks for the alarm events it missed (``since``), and notices a silent feed.
//
// The connection state is one of: connecting, connected, stale (no frame for a while),
// reconnecting, refused (the token was not accepted) and offline (stopped).

const STALE_AFTER_MS = 6000;
const MAX_BACKOFF_MS = 8000;

export class Feed {
  constructor({ token, since, onFrame, onState }) {
    this.token = token;
    this.since = since;          // () => last alarm sequence number seen, or null
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.attempt = 0;
    this.stopped = true;
    this.lastFrameAt = 0;
    this.watchdog = null;
    this.retryTimer = null;
  }

  start() {
    this.stopped = false;
    this.open();
    this.watchdog = setInterval(() => this.checkStale(), 1000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.setState("offline", "stopped");
  }

  setState(state, detail = "") {
    this.state = state;
    this.onState(state, detail);
  }

  open() {
    this.setState(this.attempt ? "reconnecting" : "connecting", "opening the feed");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "auth", token: this.token, since: this.since() }));
    };
    socket.onmessage = (event) => {
      if (socket !== this.socket) return;
      this.lastFrameAt = Date.now();
      const frame = JSON.parse(event.data);
      if (frame.type === "hello") {
        this.attempt = 0;
        this.setState("connected", `${frame.user} (${frame.role})`);
      } else if (this.state === "stale") {
        this.setState("connected", "");
      }
      this.onFrame(frame);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket || this.stopped) return;
      if (event.code === 1008) {
        this.stopped = true;
        this.setState("refused", event.reason || "the token was not accepted");
        return;
      }
      this.retry(event.reason || `closed (${event.code})`);
    };
  }

  retry(why) {
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.setState("reconnecting", `${why}; again in ${(delay / 1000).toFixed(1)} s`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  checkStale() {
    if (this.stopped || this.state !== "connected") return;
    if (Date.now() - this.lastFrameAt > STALE_AFTER_MS) {
      // A server that stopped answering without closing: drop the socket and start again.
      this.setState("stale", "no data for a while");
      const socket = this.socket;
      this.socket = null;
      socket.close(4000, "stale");
      this.retry("no data");
    }
  }
}
