// Accounts, for admins: the list of users with their role and tokens, and what an admin does
// with them - create a user, change a role, rotate a token (the new one is shown once, the old
// ones stop working), revoke a user (every token, at once; asked twice). Every answer is the
// server's, in words.

import { describeAnswer } from "./api.js";
import { el } from "./dom.js";

export const ROLES = ["viewer", "operator", "engineer", "admin"];

function when(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "-";
}

export class Accounts {
  // ``onOwnToken(token)``: the signed-in user's own token was rotated; ``pauseFeed()`` stops
  // the feed before that (the server closes the old token's sessions).
  constructor({ dialog, opener, api, onOwnToken, pauseFeed, resumeFeed }) {
    Object.assign(this, { dialog, opener, api, onOwnToken, pauseFeed, resumeFeed });
    this.user = null;
    this.users = [];
    this.confirming = null;
    this.list = dialog.querySelector("[data-testid=user-list]");
    this.answerLine = dialog.querySelector("[data-testid=accounts-answer]");
    this.tokenBox = dialog.querySelector("[data-testid=token-shown]");
    opener.addEventListener("click", () => this.open());
    dialog.querySelector("[data-testid=accounts-close]").addEventListener("click", () => this.close());
    dialog.addEventListener("keydown", (event) => { if (event.key === "Escape") this.close(); });
    dialog.querySelector("[data-testid=token-copy]").addEventListener("click", () => {
      navigator.clipboard?.writeText(this.tokenBox.querySelector("code").textContent).catch(() => {});
    });
    const form = dialog.querySelector("[data-testid=user-create]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = form.querySelector("[data-testid=new-user-name]").value.trim();
      const role = form.querySelector("[data-testid=new-user-role]").value;
      this.create(name, role, form);
    });
  }

  setUser(name, role) {
    this.user = name;
    this.opener.hidden = role !== "admin";
    if (role !== "admin") this.close();
  }

  async open() {
    this.dialog.hidden = false;
    this.tokenBox.hidden = true;
    this.say("", false);
    await this.load();
    this.dialog.querySelector("[data-testid=new-user-name]").focus();
  }

  close() {
    this.dialog.hidden = true;
    this.tokenBox.hidden = true;  // a token shown once is not left on the screen
    this.tokenBox.querySelector("code").textContent = "";
  }

  say(text, refused) {
    this.answerLine.className = `answer${refused ? " refused" : ""}`;
    this.answerLine.textContent = text;
  }

  showToken(name, token) {
    this.tokenBox.querySelector(".token-for").textContent =
      `Token for ${name} - shown this once, copy it now and hand it over:`;
    this.tokenBox.querySelector("code").textContent = token;
    this.tokenBox.hidden = false;
  }

  async load() {
    const answer = await this.api.get("/api/users");
    if (!answer.ok) {
      this.say(`cannot list the users (${answer.status}): ${answer.data.detail || ""}`, true);
      return;
    }
    this.users = answer.data.items;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.users.map((user) => this.row(user)));
  }

  row(user) {
    const role = el("select", { testid: "user-role", "aria-label": `role of ${user.name}` },
      ...ROLES.map((r) => new Option(r, r, false, r === user.role)));
    role.addEventListener("change", () => this.changeRole(user.name, role.value));
    const actions = el("td", { class: "user-actions" });
    const button = (label, testid, onClick) => {
      const b = el("button", { type: "button", testid }, label);
      b.addEventListener("click", onClick);
      actions.append(b);
    };
    if (this.confirming === user.name) {
      button(`Revoke ${user.name}: sure?`, "user-revoke-confirm", () => this.revoke(user.name));
      button("Cancel", "user-revoke-cancel", () => { this.confirming = null; this.render(); });
    } else {
      button("Rotate token", "user-rotate", () => this.rotate(user.name));
      button("Revoke", "user-revoke", () => { this.confirming = user.name; this.render(); });
    }
    const tokens = user.tokens ? `${user.tokens} (${when(user.token_issued)})` : "none";
    const name = el("td", { class: "user-name" }, user.name, user.name === this.user ? " (you)" : "");
    return el("tr", { testid: "user-row", "data-name": user.name, "data-role": user.role },
      name, el("td", {}, role), el("td", { testid: "user-tokens" }, tokens),
      el("td", {}, when(user.created)), actions);
  }

  async create(name, role, form) {
    const answer = await this.api.post("/api/users", { name, role });
    if (answer.ok) {
      form.reset();
      this.say(`created ${name} (${role})`, false);
      this.showToken(name, answer.data.token);
    } else {
      this.say(`create ${name}: ${describeAnswer(answer).text}`, true);
    }
    await this.load();
  }

  async changeRole(name, role) {
    const answer = await this.api.request(`/api/users/${encodeURIComponent(name)}`, {
      method: "PATCH", body: { role },
    });
    this.say(`${name}: ${answer.ok ? `now ${role}` : describeAnswer(answer).text}`, !answer.ok);
    await this.load();  // a refused change puts the select back
  }

  async rotate(name) {
    const own = name === this.user;
    if (own) this.pauseFeed();  // its session is about to be closed with the old token
    const answer = await this.api.post(`/api/users/${encodeURIComponent(name)}/rotate`);
    if (!answer.ok) {
      if (own) this.resumeFeed();
      this.say(`rotate ${name}: ${describeAnswer(answer).text}`, true);
      return;
    }
    this.say(`${name}: new token; the old one no longer works`, false);
    this.showToken(name, answer.data.token);
    if (own) await this.onOwnToken(answer.data.token);
    await this.load();
  }

  async revoke(name) {
    this.confirming = null;
    const answer = await this.api.request(`/api/users/${encodeURIComponent(name)}`, { method: "DELETE" });
    this.say(`${name}: ${answer.ok ? "revoked and removed" : describeAnswer(answer).text}`, !answer.ok);
    await this.load();
  }
}
