// The REST API with the signed-in user's bearer token. Every answer comes back as
// {ok, status, data}; network failures become status 0 with a message, never an exception.

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(path, { method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { detail: `no answer from the server (${error.message})` } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = { detail: response.statusText };
    }
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    return { ok: response.ok, status: response.status, data, retryAfter };
  }

  get(path) {
    return this.request(path);
  }

  post(path, body = {}) {
    return this.request(path, { method: "POST", body });
  }
}

// What a command answer means to an operator, in one line.
export function describeAnswer(answer) {
  const data = answer.data || {};
  if (answer.status === 200) return { refused: false, text: `accepted${data.detail ? ": " + data.detail : ""}` };
  if (answer.status === 202) return { refused: false, text: "sent; waiting for the simulation" };
  return { refused: true, text: `refused (${answer.status || "offline"}): ${data.detail || "no reason given"}` };
}

export const ROLE_RANK = { viewer: 1, operator: 2, engineer: 3, admin: 4 };

export function may(role, needed) {
  return (ROLE_RANK[role] || 0) >= ROLE_RANK[needed];
}
