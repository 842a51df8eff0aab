// Hotline wallboard: queues and agents, live over the JSON-RPC WebSocket at /rpc.
//
// Token: the page is opened as /#token=TOKEN (the daemon prints that URL with a
// read-only "viewer" token). A URL fragment is never sent to the server, so
// the token stays out of access logs and Referer headers; the page moves it to
// sessionStorage and removes it from the address bar. Without one it asks.
//
// Data flow: auth.login, events.subscribe(["queue.*", "agent.*"]), then the
// snapshots (queue.list + queue.stats per queue, agent.list, system.ping for
// the server's clock); then queue.stats and agent.state notifications keep the
// tables current. A lost connection reconnects with backoff and reloads.
// Plain JavaScript, no build step, no CDN: the wallboard works offline.
"use strict";

(() => {
  const TOKEN_KEY = "hotline.wallboard.token";
  const STATES = ["available", "ringing", "on_call", "wrap_up", "break"];
  const LABELS = { on_call: "on call", wrap_up: "wrap-up" };  // other states read as they are
  const queues = new Map();   // queue name -> last queue.stats
  const agents = new Map();   // agent id -> {agent, state, reason, call, queue, since}
  const pending = new Map();  // request id -> {resolve, reject}
  let ws = null;
  let nextId = 1;
  let clockOffset = 0;        // server clock - local clock, seconds
  let backoff = 1;

  const $ = (id) => document.getElementById(id);

  function takeTokenFromUrl() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function setStatus(state, text) {
    const el = $("status");
    el.dataset.state = state;
    el.textContent = text;
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token").focus();
  }

  function call(method, params) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected"));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      const msg = { jsonrpc: "2.0", method, id };
      if (params !== undefined) msg.params = params;
      ws.send(JSON.stringify(msg));
    });
  }

  function now() {
    return Date.now() / 1000 + clockOffset;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function percent(x) {
    return x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`;
  }

  function rowFor(tbody, templateId, key, attr) {
    let row = tbody.querySelector(`tr[${attr}="${CSS.escape(key)}"]`);
    if (!row) {
      row = $(templateId).content.firstElementChild.cloneNode(true);
      row.setAttribute(attr, key);
      const rows = Array.from(tbody.children);
      const after = rows.find((r) => r.getAttribute(attr) > key);
      tbody.insertBefore(row, after || null);
    }
    return row;
  }

  function setField(row, field, text) {
    const el = row.querySelector(`[data-field="${field}"]`);
    if (el.textContent !== String(text)) el.textContent = text;
    return el;
  }

  function renderQueue(q) {
    const row = rowFor($("queues").tBodies[0], "queue-row", q.queue, "data-queue");
    const by = q.agents_by_state || {};
    setField(row, "queue", q.queue);
    setField(row, "waiting", q.waiting);
    setField(row, "longest_wait", duration(q.longest_wait));
    setField(row, "service_level", percent(q.service_level));
    for (const s of STATES) setField(row, s, by[s] || 0);
    setField(row, "answered", q.answered ?? 0);
    setField(row, "abandoned", q.abandoned ?? 0);
    row.classList.toggle("alert", q.waiting > 0 && (by.available || 0) === 0);
  }

  function renderAgent(a) {
    const row = rowFor($("agents").tBodies[0], "agent-row", a.agent, "data-agent");
    setField(row, "agent", a.agent);
    const state = setField(row, "state", LABELS[a.state] || a.state);
    state.dataset.state = a.state;
    setField(row, "reason", a.reason ? `(${a.reason})` : "");
    setField(row, "call", a.call || "");
    setField(row, "queue", a.queue || "");
    setField(row, "time_in_state", a.since ? duration(now() - a.since) : "–");
  }

  function tick() {
    for (const a of agents.values()) {
      const row = $("agents").tBodies[0].querySelector(`tr[data-agent="${CSS.escape(a.agent)}"]`);
      if (row) setField(row, "time_in_state", a.since ? duration(now() - a.since) : "–");
    }
    $("clock").textContent = new Date(now() * 1000).toLocaleTimeString();
  }

  function onEvent(method, p) {
    if (method === "agent.state") {
      const a = { ...(agents.get(p.agent) || {}), agent: p.agent, state: p.state, reason: p.reason,
                  call: p.call, queue: p.queue, since: p.time };
      agents.set(p.agent, a);
      renderAgent(a);
    } else if (method === "queue.stats") {
      queues.set(p.queue, p);
      renderQueue(p);
    } else if (method === "events.dropped") {
      load().catch(() => {});
    }
  }

  async function load() {
    const ping = await call("system.ping");
    clockOffset = ping.time - Date.now() / 1000;
    const qs = await call("queue.list");
    for (const q of qs) {
      const stats = await call("queue.stats", { queue: q.queue });
      queues.set(stats.queue, stats);
      renderQueue(stats);
    }
    for (const a of await call("agent.list")) {
      agents.set(a.agent, a);
      renderAgent(a);
    }
  }

  function connect() {
    const token = takeTokenFromUrl();
    if (!token) {
      setStatus("offline", "no token");
      showLogin();
      return;
    }
    setStatus("connecting", "connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/rpc`);
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.id !== undefined && pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
        else resolve(msg.result);
      } else if (msg.method) {
        onEvent(msg.method, msg.params || {});
      }
    };
    ws.onopen = async () => {
      try {
        await call("auth.login", { token });
        await call("events.subscribe", { topics: ["queue.*", "agent.*"] });
        await load();
        backoff = 1;
        $("login").hidden = true;
        $("board").hidden = false;
        setStatus("live", "live");
        document.body.dataset.ready = "true";
      } catch (err) {
        if (err.code === -32001) {
          sessionStorage.removeItem(TOKEN_KEY);
          ws.onclose = null;
          ws.close();
          setStatus("offline", "not signed in");
          showLogin("That token was refused.");
        } else {
          setStatus("offline", `error: ${err.message}`);
        }
      }
    };
    ws.onclose = () => {
      for (const { reject } of pending.values()) reject(new Error("connection lost"));
      pending.clear();
      document.body.dataset.ready = "false";
      setStatus("offline", `reconnecting in ${backoff} s`);
      setTimeout(connect, backoff * 1000);
      backoff = Math.min(backoff * 2, 30);
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("token").value.trim();
      if (value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        $("token").value = "";
        connect();
      }
    });
    setInterval(tick, 1000);
    connect();
  });
})();
