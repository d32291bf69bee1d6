// The supervisor wallboard: queues live, the live calls (listen, whisper,
// barge), the agent grid, today's chart, forcing an agent's state. Live data
// from the /desk namespace (common.js); the chart's earlier intervals from
// GET /api/reports/queues/intervals, the current one from queue_interval.
"use strict";

(() => {
  const { el, setText, show, serverNow, duration, api, newKey } = CW;
  const $ = (id) => document.getElementById(id);
  const BUCKET = 15 * 60; // seconds
  const SUPERVISOR_ROLES = new Set(["supervisor", "admin"]);

  let live = null;
  let me = {}; // the logged-in supervisor (extension: the phone spy sessions ring)
  const wb = {
    queues: new Map(), // queue id -> {queue json, at: server time received}
    agents: new Map(), // agent id -> agent json
    waiting: new Map(), // task id -> {task_id, queue_id, state, queued_at, attributes}
    buckets: new Map(), // bucket start (epoch s) -> {queue id -> figures}
    calls: new Map(), // call id -> {call, agent_ids, task_id}
    spies: new Map(), // spied call id -> my session {spy_id, mode, device, started}
    recordings: new Map(), // call id -> recording state (the `recording` event)
    surveys: new Map(), // queue id -> today's post-call survey answers {count, average}
    occupancy: new Map(), // agent id -> today's occupancy (percent, or null)
  };
  const SPY_MODES = [
    ["listen", "Listen"],
    ["whisper", "Whisper"],
    ["barge", "Barge"],
  ];

  // -- log in / out -----------------------------------------------------------------

  function start(session) {
    show($("login"), false);
    show($("board"), true);
    show($("logout"), true);
    const agent = session.agent || {};
    me = agent;
    setText($("who"), `${agent.display_name || agent.username || ""} (${agent.role || ""})`);
    live = new CW.Live({
      token: session.token,
      onSync: applySnapshot,
      onEvent: applyEvent,
      onBanner: (state) => CW.setBanner($("banner"), state),
      onRefused: (reason) => loggedOut(reason === "unauthorized" ? "Your session has ended; log in again." : `Refused: ${reason}`),
    });
  }

  function loggedOut(message) {
    if (live) live.stop();
    live = null;
    CW.clearSession();
    show($("board"), false);
    show($("logout"), false);
    show($("login"), true);
    setText($("who"), "");
    setText($("login-error"), message || "");
    CW.setBanner($("banner"), "disconnected");
  }

  CW.onUnauthorized = () => loggedOut("Your session has ended; log in again.");
  CW.bindLogin($("login-form"), $("login-error"), start);
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    loggedOut("");
  });

  // -- applying what the server says ------------------------------------------------

  function applySnapshot({ principal, snapshot }) {
    if (!SUPERVISOR_ROLES.has(principal.role) || !snapshot.agents) {
      loggedOut("The wallboard is for supervisors; agents use /desk.");
      return;
    }
    const now = serverNow();
    wb.queues = new Map(snapshot.queues.map((q) => [q.queue_id, { ...q, at: now }]));
    wb.agents = new Map(snapshot.agents.map((a) => [a.agent_id, a]));
    wb.waiting = new Map(snapshot.waiting.map((t) => [t.task_id, t]));
    wb.calls = new Map((snapshot.calls || []).map((c) => [c.call.id, c]));
    wb.recordings.clear(); // read again for the calls on screen
    for (const [callId, spy] of wb.spies) {
      if (!wb.calls.has(callId) || !wb.calls.has(spy.spy_id)) wb.spies.delete(callId);
    }
    renderQueues();
    renderCalls();
    restoreSpies();
    renderAgents();
    renderWaiting();
    fillQueueChoice();
    loadHistory();
    loadSurveys();
    loadOccupancy();
  }

  function applyEvent(envelope) {
    const data = envelope.data;
    switch (envelope.type) {
      case "queue_stats":
        wb.queues.set(data.queue_id, { ...data, at: envelope.at });
        renderQueues();
        break;
      case "agent_state":
        wb.agents.set(data.agent_id, data);
        renderAgents();
        renderCalls();
        break;
      case "task":
        applyTask(data, envelope.at);
        break;
      case "call":
        applyCall(data);
        break;
      case "queue_interval":
        applyInterval(data);
        break;
      case "recording":
        wb.recordings.set(data.call_id, data);
        renderCalls();
        break;
    }
  }

  function applyTask(task, at) {
    if (task.state === "waiting" || task.state === "reserved") {
      const before = wb.waiting.get(task.task_id);
      wb.waiting.set(task.task_id, {
        ...(before || {}),
        ...task,
        queued_at: before && before.queue_id === task.queue_id ? before.queued_at : at,
      });
    } else {
      wb.waiting.delete(task.task_id);
    }
    renderWaiting();
  }

  // -- queues ---------------------------------------------------------------------------

  function pct(value) {
    return value === null || value === undefined ? "–" : `${Math.round(value)}%`;
  }

  function renderQueues() {
    const rows = [...wb.queues.values()].map((q) => {
      const f = q.figures;
      const states = f.agents_by_state || {};
      const sl = el("td", { class: "num sl" }, pct(f.service_level));
      if (f.service_level !== null && f.service_level < 80) sl.classList.add("low");
      sl.title = `answered within ${q.service_level_seconds ?? "?"} s (${f.service_level_formula})`;
      return el(
        "tr",
        { dataset: { queue: q.queue_id } },
        el("td", {}, q.name || q.queue_id),
        el("td", { class: "num waiting" }, String(f.waiting)),
        el("td", { class: "num clock longest", dataset: { longest: String(f.longest_wait), at: String(q.at), waiting: String(f.waiting) } }, f.waiting ? duration(f.longest_wait) : "–"),
        sl,
        el("td", { class: "num offered" }, String(f.offered)),
        el("td", { class: "num answered" }, String(f.answered)),
        abandonedCell(f),
        el("td", { class: "num asa" }, duration(f.average_speed_of_answer)),
        el("td", { class: "num aht" }, duration(f.average_handle_time)),
        el("td", { class: "num" }, `${states.available || 0} / ${(states.busy || 0) + (states.wrap_up || 0)}`),
        surveyCell(wb.surveys.get(q.queue_id)),
      );
    });
    $("queue-rows").replaceChildren(...rows);
    tick();
  }

  function abandonedCell(f) {
    // Short abandons (callers who left within the short-abandon threshold) are
    // counted in abandoned and shown apart: they are not in the service level.
    const short = f.short_abandoned || 0;
    const cell = el("td", { class: "num abandoned" }, short ? `${f.abandoned} (${short} short)` : String(f.abandoned));
    cell.title = "callers who hung up while waiting; short: within a few seconds, left out of the service level";
    return cell;
  }

  function surveyCell(survey) {
    const cell = el("td", { class: "num survey" }, survey && survey.count ? `${survey.average.toFixed(1)} (${survey.count})` : "–");
    cell.title = survey && survey.count ? `mean of ${survey.count} post-call survey answer(s) today` : "no post-call survey answer today";
    return cell;
  }

  /** Today's post-call survey answers per queue (customer satisfaction): read at
   * start and every minute; answers come after calls, so a minute is fresh enough. */
  async function loadSurveys() {
    const result = await api("GET", `/api/reports/surveys?since=${dayStart()}`);
    if (!result.ok) return;
    wb.surveys = new Map(Object.entries(result.body.queues));
    renderQueues();
  }

  /** Each agent's occupancy today (the server's day, UTC: its live figures, no
   * store read): at start and every minute (a figure of hours, not of seconds). */
  async function loadOccupancy() {
    const result = await api("GET", "/api/reports/agents");
    if (!result.ok) return;
    wb.occupancy = new Map(Object.entries(result.body.agents).map(([id, t]) => [id, t.occupancy]));
    renderAgents();
  }

  // -- live calls: listen, whisper, barge -----------------------------------------------

  function applyCall(data) {
    const id = data.call.id;
    if (data.event === "ended") {
      wb.calls.delete(id);
      wb.recordings.delete(id);
      wb.spies.delete(id);
      for (const [callId, spy] of wb.spies) if (spy.spy_id === id) wb.spies.delete(callId);
    } else {
      wb.calls.set(id, data);
    }
    renderCalls();
  }

  /** After a (re)load: my sessions still running on the PBX. */
  async function restoreSpies() {
    const result = await api("GET", "/api/spies");
    if (!result.ok) return;
    for (const session of result.body.spies || []) {
      if (me.extension && session.device === me.extension && wb.calls.has(session.call_id)) {
        wb.spies.set(session.call_id, session);
      }
    }
    renderCalls();
  }

  function isSpySession(callId) {
    for (const spy of wb.spies.values()) if (spy.spy_id === callId) return true;
    return callId.startsWith("cw-spy-"); // another supervisor's session
  }

  function agentNames(ids) {
    return ids.map((id) => (wb.agents.get(id) || {}).name || id).join(", ");
  }

  function renderCalls() {
    const calls = [...wb.calls.values()]
      .filter((c) => !isSpySession(c.call.id) && c.agent_ids.length)
      .sort((a, b) => a.call.started_at - b.call.started_at);
    if (!calls.length) {
      $("call-rows").replaceChildren(el("tr", {}, el("td", { class: "muted", colspan: 5 }, "No call with an agent right now.")));
      return;
    }
    $("call-rows").replaceChildren(...calls.map(callRow));
    tick();
  }

  function callRow(data) {
    const call = data.call;
    const caller = call.caller.name || call.caller.number || "unknown caller";
    const answered = call.answered_at !== null && (call.state === "up" || call.state === "held");
    const mine = wb.spies.get(call.id);
    const spyCell = el("td", { class: "spy" });
    if (mine) {
      const live = wb.calls.has(mine.spy_id) && mine.started;
      spyCell.append(
        el("span", { class: "session", dataset: { mode: mine.mode } }, `${mine.mode}${live ? "" : " (ringing your phone)"}`),
        ...SPY_MODES.filter(([mode]) => mode !== mine.mode).map(([mode, label]) => spyButton(call.id, mode, label)),
        el("button", { type: "button", onclick: () => stopSpy(call.id) }, "Stop"),
      );
    } else if (answered) {
      spyCell.append(...SPY_MODES.map(([mode, label]) => spyButton(call.id, mode, label)));
    } else {
      spyCell.append(el("span", { class: "muted" }, "not answered yet"));
    }
    return el(
      "tr",
      { dataset: { call: call.id } },
      el("td", {}, String(caller)),
      el("td", {}, agentNames(data.agent_ids)),
      el("td", { class: "call-state" }, call.state, recordingBadge(call.id)),
      el("td", { class: "num clock", dataset: { since: String(call.answered_at || call.started_at) } }, ""),
      spyCell,
    );
  }

  /** "recording" / "recording paused" (a card payment) next to the call's state. */
  function recordingBadge(callId) {
    const rec = wb.recordings.get(callId);
    if (!rec && !wb.recordings.has(`asked:${callId}`)) {
      wb.recordings.set(`asked:${callId}`, null); // once per call; then the events
      api("GET", `/api/calls/${encodeURIComponent(callId)}/recording`).then((result) => {
        if (result.ok && !wb.recordings.get(callId)) {
          wb.recordings.set(callId, result.body);
          renderCalls();
        }
      });
    }
    const words = { recording: "recording", paused: "recording paused" };
    if (!rec || !words[rec.state]) return "";
    return el("span", { class: "rec", dataset: { recording: rec.state } }, words[rec.state]);
  }

  function spyButton(callId, mode, label) {
    return el("button", { type: "button", dataset: { mode }, onclick: (ev) => spy(callId, mode, ev.currentTarget) }, label);
  }

  async function spy(callId, mode, button) {
    setText($("call-error"), "");
    if (button) button.disabled = true;
    const key = newKey();
    const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/spy`, { mode, idempotency_key: key });
    if (button) button.disabled = false;
    if (!result.ok) {
      setText($("call-error"), `${mode}: ${CW.errorText(result)}`);
      return;
    }
    wb.spies.set(callId, { ...result.body, started: true });
    renderCalls();
  }

  async function stopSpy(callId) {
    setText($("call-error"), "");
    const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/spy/stop`, {});
    if (!result.ok && result.status !== 409) {
      setText($("call-error"), `stop: ${CW.errorText(result)}`);
      return;
    }
    wb.spies.delete(callId);
    renderCalls();
  }

  // -- waiting contacts -------------------------------------------------------------------

  function renderWaiting() {
    const items = [...wb.waiting.values()].sort((a, b) => (a.queued_at || 0) - (b.queued_at || 0));
    if (!items.length) {
      $("waiting").replaceChildren(el("li", { class: "muted" }, "Nobody is waiting."));
      return;
    }
    $("waiting").replaceChildren(
      ...items.map((t) => {
        const attrs = t.attributes || {};
        const who = attrs.caller_name || attrs.caller_number || attrs.from || t.task_id;
        const queue = wb.queues.get(t.queue_id);
        return el(
          "li",
          { dataset: { task: t.task_id } },
          el("strong", {}, String(who)),
          " ",
          el("span", { class: "muted" }, `${t.channel || ""} · ${queue ? queue.name : t.queue_id}${t.state === "reserved" ? " · offered" : ""}`),
          el("span", { class: "since clock", dataset: { since: String(t.queued_at || t.arrived_at || serverNow()) } }, ""),
        );
      }),
    );
    tick();
  }

  // -- agents -------------------------------------------------------------------------------

  const agentCards = new Map(); // agent id -> {root, parts}

  function renderAgents() {
    const agents = [...wb.agents.values()].sort((a, b) => String(a.name || a.agent_id).localeCompare(String(b.name || b.agent_id)));
    const seen = new Set();
    for (const agent of agents) {
      seen.add(agent.agent_id);
      let card = agentCards.get(agent.agent_id);
      if (!card) {
        card = agentCard(agent);
        agentCards.set(agent.agent_id, card);
      }
      card.update(agent);
    }
    for (const [id, card] of agentCards) {
      if (!seen.has(id)) {
        card.root.remove();
        agentCards.delete(id);
      }
    }
    $("agents").replaceChildren(...agents.map((a) => agentCards.get(a.agent_id).root));
    tick();
  }

  function agentCard(agent) {
    const name = el("span", { class: "name" });
    const since = el("span", { class: "since clock" });
    const state = el("span", { class: "state" });
    const reason = el("span", { class: "muted reason" });
    const detail = el("div", { class: "muted detail" });
    const occupancy = el("div", { class: "muted occupancy", title: "busy and wrap-up time over the time ready for work, today" });
    const choice = el(
      "select",
      { "aria-label": "Force state" },
      ["available", "break", "offline"].map((s) => el("option", { value: s }, s)),
    );
    const why = el("input", { placeholder: "reason", maxlength: 64, "aria-label": "Reason", value: "Supervisor" });
    const force = el("button", { type: "button" }, "Force");
    const root = el(
      "div",
      { class: "agent", dataset: { agent: agent.agent_id } },
      el("div", {}, name, since),
      el("div", {}, state, " ", reason),
      detail,
      occupancy,
      el("div", { class: "force" }, choice, why, force),
    );
    force.addEventListener("click", async () => {
      setText($("agent-error"), "");
      const payload = { agent_id: agent.agent_id, state: choice.value };
      if (choice.value === "break") payload.reason = why.value.trim() || "Supervisor";
      force.disabled = true;
      const ack = await live.request("set_state", payload);
      force.disabled = false;
      if (!ack.ok) setText($("agent-error"), `${agent.name || agent.agent_id}: ${ack.message || ack.error}`);
    });
    return {
      root,
      update(a) {
        root.dataset.state = a.state;
        setText(name, `${a.name || a.agent_id}${a.extension ? ` · ${a.extension}` : ""}`);
        state.dataset.state = a.state;
        setText(state, a.state.replace("_", "-"));
        setText(reason, a.reason ? `(${a.reason})` : "");
        const load = Object.entries(a.load || {}).filter(([, n]) => n > 0).map(([ch, n]) => `${ch} ${n}`);
        setText(detail, [a.queues.join(", "), load.join(", "), a.external_busy ? "on a direct call" : ""].filter(Boolean).join(" · "));
        since.dataset.since = String(a.since);
        const busy = wb.occupancy.get(a.agent_id);
        setText(occupancy, busy === undefined || busy === null ? "occupancy today –" : `occupancy today ${Math.round(busy)}%`);
      },
    };
  }

  // -- the chart: calls per 15 minutes and service level, today ----------------------------

  function fillQueueChoice() {
    const select = $("chart-queue");
    const current = select.value;
    select.replaceChildren(...[...wb.queues.values()].map((q) => el("option", { value: q.queue_id }, q.name || q.queue_id)));
    if (current && wb.queues.has(current)) select.value = current;
  }
  $("chart-queue").addEventListener("change", drawChart);

  function dayStart() {
    const d = new Date(serverNow() * 1000);
    d.setHours(0, 0, 0, 0);
    return d.getTime() / 1000;
  }

  function bucketOf(t) {
    const start = dayStart();
    return start + Math.floor((t - start) / BUCKET) * BUCKET;
  }

  let historyDay = null;

  /** Today's intervals so far, in one request; queue_interval keeps the current one live. */
  async function loadHistory() {
    const start = dayStart();
    if (historyDay !== start) wb.buckets.clear();
    historyDay = start;
    setText($("chart-status"), "loading today's figures…");
    const result = await api("GET", `/api/reports/queues/intervals?since=${start}&until=${serverNow()}&seconds=${BUCKET}`);
    if (!result.ok) {
      setText($("chart-status"), `history: ${CW.errorText(result)}`);
      return;
    }
    for (const [queueId, series] of Object.entries(result.body.queues)) {
      for (const interval of series) setBucket(queueId, interval, false);
    }
    setText($("chart-status"), "");
    drawChart();
  }

  function setBucket(queueId, interval, live) {
    const start = interval.start;
    const known = wb.buckets.get(start) || {};
    // A live update is never older than the report; the report never
    // overwrites an interval a live update already filled.
    if (!live && known[queueId] && known[queueId].live) return;
    known[queueId] = { ...interval, live };
    wb.buckets.set(start, known);
  }

  function applyInterval(data) {
    if (historyDay !== null && data.start < historyDay) return; // yesterday's
    setBucket(data.queue_id, data, true);
    drawChart();
  }

  function drawChart() {
    const canvas = $("chart");
    const queueId = $("chart-queue").value;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 220;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = { left: 34, right: 40, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const start = dayStart();
    const slots = 96;
    const series = [];
    for (let i = 0; i < slots; i++) {
      const figures = (wb.buckets.get(start + i * BUCKET) || {})[queueId];
      series.push(figures ? { calls: figures.offered, answered: figures.answered, sl: figures.service_level } : null);
    }
    const maxCalls = Math.max(4, ...series.map((s) => (s ? s.calls : 0)));
    const x = (i) => pad.left + (i / slots) * plotW;
    const yCalls = (n) => pad.top + plotH - (n / maxCalls) * plotH;
    const ySl = (p) => pad.top + plotH - (p / 100) * plotH;

    // axes and grid
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5c6670";
    ctx.strokeStyle = "#d8dde2";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    for (let h = 0; h <= 24; h += 2) {
      const px = x(h * 4);
      ctx.beginPath();
      ctx.moveTo(px + 0.5, pad.top);
      ctx.lineTo(px + 0.5, pad.top + plotH);
      ctx.stroke();
      ctx.fillText(`${String(h).padStart(2, "0")}h`, px, height - 6);
    }
    ctx.textAlign = "right";
    for (let k = 0; k <= 4; k++) {
      const n = Math.round((maxCalls * k) / 4);
      ctx.fillText(String(n), pad.left - 4, yCalls(n) + 4);
    }
    ctx.textAlign = "left";
    for (const p of [0, 50, 100]) ctx.fillText(`${p}%`, width - pad.right + 4, ySl(p) + 4);

    // bars: calls per 15 minutes
    ctx.fillStyle = "#9ec5fe";
    const barW = Math.max(1, plotW / slots - 1);
    series.forEach((s, i) => {
      if (!s || !s.calls) return;
      ctx.fillRect(x(i), yCalls(s.calls), barW, pad.top + plotH - yCalls(s.calls));
    });

    // line: service level per interval
    ctx.strokeStyle = "#cf222e";
    ctx.fillStyle = "#cf222e";
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    series.forEach((s, i) => {
      if (!s || s.sl === null || s.sl === undefined) {
        drawing = false;
        return;
      }
      const px = x(i) + barW / 2;
      const py = ySl(s.sl);
      if (drawing) ctx.lineTo(px, py);
      else ctx.moveTo(px, py);
      drawing = true;
    });
    ctx.stroke();
    series.forEach((s, i) => {
      if (s && s.sl !== null && s.sl !== undefined) {
        ctx.beginPath();
        ctx.arc(x(i) + barW / 2, ySl(s.sl), 2.5, 0, Math.PI * 2);
        ctx.fill();
      }
    });

    // now
    const nowX = pad.left + ((serverNow() - start) / (slots * BUCKET)) * plotW;
    ctx.strokeStyle = "#24292f";
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(nowX, pad.top);
    ctx.lineTo(nowX, pad.top + plotH);
    ctx.stroke();
    ctx.setLineDash([]);
    canvas.dataset.calls = String(series.reduce((sum, s) => sum + (s ? s.calls : 0), 0));
    canvas.dataset.answered = String(series.reduce((sum, s) => sum + (s ? s.answered : 0), 0));
    const lastSl = series.filter((s) => s && s.sl !== null && s.sl !== undefined).pop();
    canvas.dataset.serviceLevel = lastSl ? String(Math.round(lastSl.sl)) : "";
  }
  window.addEventListener("resize", drawChart);

  // -- the clock --------------------------------------------------------------------------

  function tick() {
    const now = serverNow();
    for (const cell of document.querySelectorAll("#queue-rows .longest")) {
      const waiting = Number(cell.dataset.waiting);
      setText(cell, waiting ? duration(Number(cell.dataset.longest) + now - Number(cell.dataset.at)) : "–");
    }
    for (const node of document.querySelectorAll("#agents .since, #waiting .since, #call-rows .clock")) {
      setText(node, duration(now - Number(node.dataset.since)));
    }
  }
  setInterval(tick, 1000);
  setInterval(() => {
    if (live && historyDay !== null && historyDay !== dayStart()) loadHistory();
    else drawChart();
    if (live) {
      loadSurveys();
      loadOccupancy();
    }
  }, 60000);

  // -- go -----------------------------------------------------------------------------------

  const existing = CW.loadSession();
  if (existing) start(existing);
  else {
    show($("login"), true);
    CW.setBanner($("banner"), "disconnected");
  }
})();
