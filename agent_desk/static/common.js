// Shared by the desk and the wallboard: the session (login, token in
// sessionStorage), the REST helper, and the live connection to the /desk
// Socket.IO namespace with per-room sequence numbers, replay and resync.
//
// Rule for every page: text that comes from customers, e-mails or the server
// is inserted with textContent (el() below does that); never innerHTML.
"use strict";

const CW = (() => {
  const SESSION_KEY = "callwright.session";

  // -- DOM --------------------------------------------------------------------

  /** el("td", {class: "x", title: "y"}, "text", childNode, ...): strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  // -- time -------------------------------------------------------------------

  let serverOffset = 0; // server epoch seconds minus this browser's

  function serverNow() {
    return Date.now() / 1000 + serverOffset;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function clockTime(value) {
    if (value === null || value === undefined) return "";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  }

  // -- session and REST -------------------------------------------------------

  function loadSession() {
    try {
      const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (session && session.token && Date.parse(session.expires_at) > Date.now()) return session;
    } catch (e) {
      /* a damaged entry is no session */
    }
    sessionStorage.removeItem(SESSION_KEY);
    return null;
  }

  function saveSession(session) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  }

  function clearSession() {
    sessionStorage.removeItem(SESSION_KEY);
  }

  let onUnauthorized = () => {};

  /** api("POST", "/api/...", body, {idempotencyKey}) -> {ok, status, body}; never throws. */
  async function api(method, path, body, options) {
    const session = loadSession();
    const headers = { Accept: "application/json" };
    if (session) headers.Authorization = `Bearer ${session.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (options && options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      return { ok: false, status: 0, body: { error: "unreachable", message: "server unreachable" } };
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = { error: "bad_response", message: `HTTP ${resp.status}` };
    }
    if (resp.status === 401 && path !== "/api/login") onUnauthorized();
    return { ok: resp.ok, status: resp.status, body: data };
  }

  function errorText(result) {
    const body = result.body || {};
    return body.message || body.error || `HTTP ${result.status}`;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  }

  /** Wire the page's login form; ``onSession(session)`` after a good login. */
  function bindLogin(form, errorNode, onSession) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      setText(errorNode, "");
      const result = await api("POST", "/api/login", {
        username: String(data.get("username") || ""),
        password: String(data.get("password") || ""),
      });
      button.disabled = false;
      if (!result.ok) {
        setText(errorNode, result.status === 401 ? "Wrong username or password." : errorText(result));
        return;
      }
      form.reset();
      saveSession(result.body);
      onSession(result.body);
    });
  }

  // -- the live connection ------------------------------------------------------

  const EVENT_TYPES = ["offer", "reservation", "task", "call", "agent_state", "queue_stats", "queue_interval", "recording"];
  const REFUSALS = new Set(["unauthorized", "forbidden", "unknown_agent", "invalid_auth"]);

  /**
   * new Live({token, onSync(sync), onEvent(envelope), onBanner(state), onRefused(reason)})
   *
   * onSync gets {principal, settings, snapshot} (replace everything) or nothing to
   * replace (missed envelopes are passed to onEvent one by one, in order).
   * Banner states: "connecting", "live", "disconnected", "resyncing".
   */
  class Live {
    constructor(options) {
      this.options = options;
      this.epoch = null;
      this.seqs = {}; // room -> last sequence number applied
      this.principal = null;
      this.settings = {};
      this.synced = false;
      this.resyncing = false;
      this.stopped = false;
      this.banner("connecting");
      this.socket = io("/desk", {
        auth: (cb) => cb(this.authPayload()),
        reconnectionDelay: 500,
        reconnectionDelayMax: 5000,
      });
      // python-socketio sends the hello before the connect acknowledgement;
      // the client holds it and runs its handler before "connect" fires.
      this.socket.on("connect", () => {
        if (!this.synced) this.banner("resyncing");
      });
      this.socket.on("hello", (hello) => this.sync(hello));
      for (const type of EVENT_TYPES) this.socket.on(type, (envelope) => this.receive(envelope));
      this.socket.on("disconnect", (reason) => {
        this.synced = false;
        this.banner("disconnected");
        // The server closed us: socket.io does not retry by itself.
        if (reason === "io server disconnect" && !this.stopped) this.retry(1000);
      });
      this.socket.on("connect_error", (err) => {
        this.banner("disconnected");
        const reason = err && err.message;
        if (REFUSALS.has(reason)) {
          this.stop();
          this.options.onRefused(reason);
        } else if (!this.socket.active) {
          this.retry(2000);
        }
      });
    }

    authPayload() {
      const payload = { token: this.options.token };
      if (this.epoch !== null) payload.resume = { epoch: this.epoch, rooms: { ...this.seqs } };
      return payload;
    }

    banner(state) {
      this.state = state;
      this.options.onBanner(state);
    }

    retry(delay) {
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (!this.stopped && !this.socket.connected) this.socket.connect();
      }, delay);
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.retryTimer);
      this.socket.disconnect();
    }

    /** A hello, or a resync acknowledgement: the snapshot or the missed envelopes. */
    sync(sync) {
      if (sync.principal) this.principal = sync.principal;
      if (sync.settings) this.settings = sync.settings; // the hello's: [desk], queues
      serverOffset = sync.now - Date.now() / 1000;
      this.epoch = sync.epoch;
      if (sync.snapshot) {
        this.seqs = { ...sync.rooms };
        this.options.onSync({ principal: this.principal, settings: this.settings, snapshot: sync.snapshot });
      } else {
        for (const envelope of sync.missed || []) this.apply(envelope);
        this.seqs = { ...this.seqs, ...sync.rooms };
      }
      this.synced = true;
      this.resyncing = false;
      document.documentElement.dataset.lastSync = sync.snapshot ? "snapshot" : "replay";
      this.banner("live");
    }

    receive(envelope) {
      if (!this.synced || this.resyncing) return; // the coming sync covers it
      const last = this.seqs[envelope.room] || 0;
      if (envelope.seq <= last) return; // already applied
      if (envelope.seq > last + 1) {
        this.resync(); // a gap: ask for what is missing (or a snapshot)
        return;
      }
      this.apply(envelope);
    }

    apply(envelope) {
      const last = this.seqs[envelope.room] || 0;
      if (envelope.seq <= last) return;
      this.seqs[envelope.room] = envelope.seq;
      try {
        this.options.onEvent(envelope);
      } catch (e) {
        console.error("applying", envelope.type, e);
      }
    }

    async resync() {
      if (this.resyncing) return;
      this.resyncing = true;
      this.banner("resyncing");
      try {
        const ack = await this.socket
          .timeout(10000)
          .emitWithAck("resync", { rooms: { ...this.seqs }, epoch: this.epoch });
        if (ack && ack.ok) {
          this.sync(ack);
          return;
        }
        console.warn("resync refused", ack);
      } catch (e) {
        console.warn("resync timed out", e);
      }
      this.resyncing = false;
      // Start over from a fresh connection (and a fresh snapshot).
      this.epoch = null;
      this.socket.disconnect();
      this.retry(1000);
    }

    /** Send a client event; resolves to the ack ({ok: false, ...} on a timeout). */
    async request(event, payload) {
      if (!this.socket.connected) return { ok: false, error: "disconnected", message: "not connected" };
      try {
        return await this.socket.timeout(10000).emitWithAck(event, payload);
      } catch (e) {
        return { ok: false, error: "timeout", message: "no answer from the server" };
      }
    }
  }

  function setBanner(node, state) {
    const labels = {
      connecting: "connecting",
      live: "live",
      disconnected: "disconnected",
      resyncing: "resyncing",
    };
    node.dataset.state = state;
    setText(node, labels[state] || state);
  }

  return {
    el,
    append,
    setText,
    show,
    serverNow,
    duration,
    clockTime,
    loadSession,
    saveSession,
    clearSession,
    api,
    errorText,
    newKey,
    bindLogin,
    Live,
    setBanner,
    set onUnauthorized(fn) {
      onUnauthorized = fn;
    },
  };
})();
