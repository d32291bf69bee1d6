// The agent desk: state, offers with the screen-pop, call controls, e-mail
// tasks, wrap-up, customer search. Live data comes from the /desk namespace
// (common.js); actions on calls and e-mails go through the REST API.
"use strict";

(() => {
  const { el, setText, show, serverNow, duration, clockTime, api, errorText, newKey } = CW;
  const $ = (id) => document.getElementById(id);

  // The wrap-up codes and the transfer queues come from the server (the hello's
  // settings: [desk] in config.toml).
  const settings = () => (live && live.settings) || {};
  const label = (code) => code.charAt(0).toUpperCase() + code.slice(1).replace(/_/g, " ");
  const MAX_FINISHED = 5;

  let session = null;
  let live = null;
  const desk = {
    agent: null, // agent json (state, reason, since, ...)
    offers: new Map(), // reservation id -> {data, view}
    tasks: new Map(), // task id -> TaskCard
    finished: new Map(), // task id -> TaskCard (completed: wrap-up still possible)
    calls: new Map(), // call id -> {call, task_id, agent_ids, event}
    recordings: new Map(), // call id -> recording state (the `recording` event)
    queues: new Map(), // queue id -> queue json
  };

  // -- log in / out ---------------------------------------------------------------

  function start(current) {
    session = current;
    show($("login"), false);
    show($("desk"), true);
    show($("logout"), true);
    const agent = session.agent || {};
    setText($("who"), `${agent.display_name || agent.username || ""} · ext ${agent.extension || "–"}`);
    live = new CW.Live({
      token: session.token,
      onSync: applySnapshot,
      onEvent: applyEvent,
      onBanner: (state) => CW.setBanner($("banner"), state),
      onRefused: (reason) => loggedOut(reason === "unauthorized" ? "Your session has ended; log in again." : `Refused: ${reason}`),
    });
  }

  function loggedOut(message) {
    recordingAccess = null;
    if (live) live.stop();
    live = null;
    CW.clearSession();
    session = null;
    reset();
    show($("desk"), false);
    show($("logout"), false);
    show($("login"), true);
    setText($("who"), "");
    setText($("login-error"), message || "");
    CW.setBanner($("banner"), "disconnected");
  }

  function reset() {
    desk.agent = null;
    for (const offer of desk.offers.values()) offer.view.remove();
    for (const card of [...desk.tasks.values(), ...desk.finished.values()]) card.root.remove();
    desk.offers.clear();
    for (const card of otherCalls.values()) card.root.remove();
    otherCalls.clear();
    desk.tasks.clear();
    desk.finished.clear();
    desk.calls.clear();
    desk.queues.clear();
    renderQueues();
  }

  CW.onUnauthorized = () => loggedOut("Your session has ended; log in again.");
  CW.bindLogin($("login-form"), $("login-error"), start);
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    loggedOut("");
  });

  // -- applying what the server says ----------------------------------------------

  function applySnapshot({ snapshot }) {
    if (!snapshot.agent) {
      loggedOut("This page is for agents; supervisors use /wallboard.");
      return;
    }
    desk.agent = snapshot.agent;
    desk.calls = new Map(snapshot.calls.map((c) => [c.call.id, c]));
    desk.recordings.clear(); // read again (GET .../recording) for the calls on screen
    desk.queues = new Map(snapshot.queues.map((q) => [q.queue_id, q]));
    const offerIds = new Set(snapshot.offers.map((o) => o.reservation_id));
    for (const [rid, offer] of desk.offers) {
      if (!offerIds.has(rid)) removeOffer(rid);
    }
    for (const offer of snapshot.offers) showOffer(offer);
    const mine = snapshot.tasks.filter((t) => t.state === "assigned" || t.state === "wrapping");
    const ids = new Set(mine.map((t) => t.task_id));
    for (const [taskId, card] of desk.tasks) {
      if (!ids.has(taskId)) finishTask(taskId, card.task);
    }
    for (const task of mine) upsertTask(task);
    renderAgent();
    renderQueues();
    refreshCalls();
  }

  function applyEvent(envelope) {
    const data = envelope.data;
    const mineRoom = envelope.room.startsWith("agent:");
    switch (envelope.type) {
      case "agent_state":
        if (mineRoom) {
          desk.agent = data;
          renderAgent();
        }
        break;
      case "offer":
        showOffer(data);
        break;
      case "reservation":
        removeOffer(data.reservation_id);
        break;
      case "task":
        if (mineRoom) {
          applyTask(data);
          renderOtherCalls();
        }
        break;
      case "call":
        if (data.event === "ended") desk.calls.delete(data.call.id);
        else desk.calls.set(data.call.id, data);
        refreshCalls();
        break;
      case "recording":
        desk.recordings.set(data.call_id, data);
        refreshCalls();
        break;
      case "queue_stats":
        desk.queues.set(data.queue_id, data);
        renderQueues();
        break;
    }
  }

  function applyTask(task) {
    if (task.state === "assigned" || task.state === "wrapping") {
      upsertTask(task);
    } else if (task.state === "completed") {
      finishTask(task.task_id, task);
    } else {
      // waiting again (offer rejected or timed out, requeued) or canceled: not mine
      const card = desk.tasks.get(task.task_id);
      if (card) {
        card.root.remove();
        desk.tasks.delete(task.task_id);
      }
    }
  }

  // -- my state -------------------------------------------------------------------

  function renderAgent() {
    const agent = desk.agent;
    if (!agent) return;
    const node = $("state-name");
    node.dataset.state = agent.state;
    setText(node, agent.state.replace("_", "-"));
    setText($("state-reason"), agent.reason ? `(${agent.reason})` : "");
    show($("end-wrap-up"), agent.state === "wrap_up");
    tick();
  }

  async function setState(state, reason) {
    setText($("state-error"), "");
    const payload = { state };
    if (reason) payload.reason = reason;
    const ack = await live.request("set_state", payload);
    if (!ack.ok) setText($("state-error"), ack.message || ack.error);
    else if (ack.agent) {
      desk.agent = ack.agent;
      renderAgent();
    }
  }

  $("go-available").addEventListener("click", () => setState("available"));
  $("go-offline").addEventListener("click", () => setState("offline"));
  $("go-break").addEventListener("click", () => {
    const reason = $("break-reason").value.trim();
    if (!reason) {
      setText($("state-error"), "A break needs a reason.");
      return;
    }
    setState("break", reason);
  });
  $("end-wrap-up").addEventListener("click", async () => {
    const ack = await live.request("end_wrap_up", {});
    if (!ack.ok) setText($("state-error"), ack.message || ack.error);
  });

  // -- the screen-pop card --------------------------------------------------------

  /**
   * The customer's record as a pop shows it. ``identify``: on a task's card, an
   * unknown caller can be created as a customer or linked to one
   * ({interactionId, onLinked(result)}).
   */
  function popCard(pop, fallbackNumber, identify) {
    const card = el("div", { class: "pop" });
    const customer = pop && pop.customer;
    const number = (pop && pop.caller_number) || fallbackNumber || "";
    if (customer) {
      card.append(
        el("h3", { class: "customer-name" }, customer.name),
        el(
          "dl",
          { class: "facts" },
          fact("Numbers", customer.phones.length ? phoneList(customer.phones) : "–"),
          fact("E-mail", customer.emails.join(", ") || "–"),
          fact("Account", customer.account_number || "–"),
          customer.notes ? fact("Notes", customer.notes) : null,
          number ? fact("Calling from", number) : null,
        ),
      );
    } else {
      card.append(
        el("h3", { class: "customer-name unknown" }, number || "no number", " ", el("span", { class: "tag" }, "unknown caller")),
      );
      if (identify && identify.interactionId) card.append(identifyForm(number, identify));
    }
    const ivrBox = ivrFacts(pop && pop.ivr);
    if (ivrBox) card.append(ivrBox);
    const recent = (pop && pop.recent_interactions) || [];
    if (customer) {
      card.append(el("h4", {}, "Recent interactions"));
      if (!recent.length) card.append(el("p", { class: "muted" }, "No earlier interactions."));
      else {
        card.append(historyTable(recent));
        addRecordings(card, customer.id);
      }
      const open = (pop && pop.open_emails) || [];
      if (open.length) card.append(el("h4", {}, "Open e-mails"), openEmails(open));
    }
    return card;
  }

  /** What the caller told the IVR (pop.ivr: choices, digits, language), as text. */
  function ivrFacts(ivr) {
    const data = (ivr && ivr.data) || {};
    const keys = Object.keys(data);
    if (!ivr || (!keys.length && !ivr.language)) return null;
    return el(
      "section",
      { class: "ivr", "aria-label": "IVR" },
      el("h4", {}, "In the IVR"),
      el(
        "dl",
        { class: "facts" },
        ivr.language ? fact("Language", ivr.language) : null,
        keys.map((key) => fact(label(key), String(data[key]))),
      ),
    );
  }

  /** Numbers, each with a click-to-dial button (the agent's phone rings first). */
  function phoneList(numbers) {
    const extension = session && session.agent && session.agent.extension;
    return numbers.map((number) =>
      el(
        "span",
        { class: "phone" },
        number,
        extension ? el("button", { type: "button", class: "small dial", title: `Call ${number}`, onclick: (e) => dial(number, extension, e.target) }, "Call") : null,
        " ",
      ),
    );
  }

  /** The customer's open e-mail threads; a click opens the thread (read only). */
  function openEmails(threads) {
    return el(
      "ul",
      { class: "open-emails" },
      threads.map((t) => {
        const box = el("div", { class: "thread", hidden: true });
        const error = el("p", { class: "error", role: "alert" });
        const button = el("button", { type: "button", class: "link", title: "Open the thread" }, t.subject || "(no subject)");
        button.addEventListener("click", async () => {
          if (!box.hidden) {
            show(box, false);
            return;
          }
          setText(error, "");
          const result = await api("GET", `/api/interactions/${encodeURIComponent(t.id)}/emails`);
          if (!result.ok) {
            setText(error, `thread: ${errorText(result)}`);
            return;
          }
          box.replaceChildren(...result.body.messages.map(messageView));
          show(box, true);
        });
        return el("li", { dataset: { interaction: String(t.id) } }, button, " ", el("span", { class: "muted" }, clockTime(t.started_at)), error, box);
      }),
    );
  }

  /** An unknown caller: create a customer (the number pre-filled) or link one. */
  function identifyForm(number, identify) {
    const error = el("p", { class: "error", role: "alert" });
    const name = el("input", { maxlength: 200, placeholder: "name", "aria-label": "New customer name" });
    const phone = el("input", { maxlength: 64, value: number || "", "aria-label": "New customer phone" });
    const create = el("button", { type: "button" }, "Create customer");
    const query = el("input", { maxlength: 100, placeholder: "name, number, e-mail or account", "aria-label": "Find customer to link" });
    const find = el("button", { type: "button" }, "Find");
    const results = el("ul", { class: "results link-results" });
    const send = async (body, buttons) => {
      setText(error, "");
      buttons.forEach((b) => (b.disabled = true));
      const result = await api("POST", `/api/interactions/${encodeURIComponent(identify.interactionId)}/customer`, body);
      buttons.forEach((b) => (b.disabled = false));
      if (result.ok) identify.onLinked(result.body);
      else setText(error, errorText(result));
    };
    create.addEventListener("click", () => {
      if (!name.value.trim()) {
        setText(error, "A new customer needs a name.");
        return;
      }
      const body = { name: name.value.trim() };
      body.phone = phone.value.trim() || null;
      send(body, [create]);
    });
    find.addEventListener("click", async () => {
      const text = query.value.trim();
      if (!text || !live) return;
      setText(error, "");
      const ack = await live.request("search_customers", { text, limit: 10 });
      if (!ack.ok) {
        setText(error, ack.message || ack.error);
        return;
      }
      if (!ack.customers.length) setText(error, "Nobody found.");
      results.replaceChildren(
        ...ack.customers.map((c) => {
          const link = el("button", { type: "button", class: "small" }, "Link");
          link.addEventListener("click", () => send({ customer_id: c.id }, [link]));
          return el(
            "li",
            { class: "customer", dataset: { customer: String(c.id) } },
            el("strong", { class: "customer-name" }, c.name),
            " ",
            el("span", { class: "muted" }, c.phones.join(", ")),
            " ",
            link,
          );
        }),
      );
    });
    return el(
      "div",
      { class: "identify" },
      el("h4", {}, "Who is calling?"),
      el("div", { class: "buttons" }, name, phone, create),
      el("div", { class: "buttons" }, query, find),
      results,
      error,
    );
  }

  // -- recordings in the customer's history ---------------------------------------------
  // Play buttons only for those who may press them: GET /api/recordings/access says
  // "all" (supervisors, admins), "own" (an agent, when [recordings] agent_may_play:
  // the list is then narrowed to their own calls by the server) or "none".

  let recordingAccess = null; // a promise of "all" | "own" | "none", once per login

  function loadRecordingAccess() {
    if (!recordingAccess) {
      recordingAccess = api("GET", "/api/recordings/access").then((r) => (r.ok ? r.body.may_play : "none"));
    }
    return recordingAccess;
  }

  /** A Play button on each history row with a stored recording (one request per card). */
  async function addRecordings(card, customerId) {
    if ((await loadRecordingAccess()) === "none") return;
    const result = await api("GET", `/api/recordings?customer_id=${encodeURIComponent(customerId)}&state=stored&limit=100`);
    if (!result.ok || !result.body.recordings.length) return;
    const byInteraction = new Map();
    for (const rec of result.body.recordings) {
      const list = byInteraction.get(String(rec.interaction_id)) || [];
      list.push(rec);
      byInteraction.set(String(rec.interaction_id), list);
    }
    const table = card.querySelector("table.history");
    if (!table) return;
    table.querySelector("thead tr").append(el("th", {}, "recording"));
    for (const tr of table.querySelectorAll("tbody tr")) {
      const recs = byInteraction.get(tr.dataset.interaction) || [];
      tr.append(
        el(
          "td",
          { class: "rec" },
          recs.map((rec) =>
            el(
              "button",
              { type: "button", class: "small play", dataset: { recording: rec.id }, onclick: () => playRecording(card, rec) },
              "Play",
              rec.duration_ms ? ` ${duration(rec.duration_ms / 1000)}` : "",
            ),
          ),
        ),
      );
    }
  }

  async function playRecording(card, rec) {
    let box = card.querySelector(".pop-player");
    if (!box) {
      box = el("div", { class: "pop-player" }, el("audio", { controls: true, preload: "metadata" }), el("p", { class: "error", role: "alert" }));
      card.append(box);
    }
    const [audio, error] = [box.querySelector("audio"), box.querySelector(".error")];
    setText(error, "");
    const result = await api("GET", `/api/recordings/${encodeURIComponent(rec.id)}/playback`);
    if (!result.ok) {
      setText(error, `cannot play: ${errorText(result)}`);
      return;
    }
    audio.dataset.recording = rec.id;
    audio.src = result.body.url;
    audio.play().catch(() => {
      if (audio.error) setText(error, "the recording could not be loaded");
    });
  }

  function fact(label, value) {
    return [el("dt", {}, label), el("dd", {}, value)];
  }

  function historyTable(items) {
    return el(
      "table",
      { class: "grid history" },
      el("thead", {}, el("tr", {}, ["when", "channel", "queue", "disposition", "notes"].map((h) => el("th", {}, h)))),
      el(
        "tbody",
        {},
        items.map((i) =>
          el(
            "tr",
            { dataset: { interaction: String(i.id) } },
            el("td", {}, clockTime(i.started_at)),
            el("td", {}, [i.channel, i.direction].filter(Boolean).join(" ")),
            el("td", {}, i.queue || ""),
            el("td", { class: "disposition" }, i.disposition || "–"),
            el("td", { class: "notes" }, i.notes || i.subject || ""),
          ),
        ),
      ),
    );
  }

  // -- offers ---------------------------------------------------------------------

  function showOffer(offer) {
    const existing = desk.offers.get(offer.reservation_id);
    if (existing) {
      existing.data = offer;
      return;
    }
    const countdown = el("span", { class: "countdown clock" });
    const error = el("p", { class: "error", role: "alert" });
    const accept = el("button", { type: "button", class: "primary" }, "Accept");
    const reject = el("button", { type: "button" }, "Reject");
    const label = offer.channel === "email" ? "e-mail" : offer.channel;
    const view = el(
      "article",
      { class: "card offer", dataset: { reservation: offer.reservation_id, channel: offer.channel } },
      el("header", {}, el("h2", {}, `Incoming ${label}`), el("span", { class: "muted" }, offer.queue_name || offer.queue_id), countdown),
      popCard(offer.pop, offer.attributes && offer.attributes.caller_number),
      el("div", { class: "buttons" }, accept, reject),
      error,
    );
    const act = async (verb) => {
      accept.disabled = reject.disabled = true;
      const ack = await live.request(verb, { reservation_id: offer.reservation_id });
      if (!ack.ok) {
        setText(error, ack.message || ack.error);
        accept.disabled = reject.disabled = false;
      }
    };
    accept.addEventListener("click", () => act("accept"));
    reject.addEventListener("click", () => act("reject"));
    const entry = { data: offer, view, countdown };
    desk.offers.set(offer.reservation_id, entry);
    $("offers").append(view);
    updateTitle();
    tick();
  }

  function removeOffer(reservationId) {
    const entry = desk.offers.get(reservationId);
    if (!entry) return;
    entry.view.remove();
    desk.offers.delete(reservationId);
    updateTitle();
  }

  function updateTitle() {
    document.title = desk.offers.size ? "● Incoming · Callwright desk" : "Callwright desk";
  }

  // -- tasks (assigned or wrapping) and finished tasks ------------------------------

  function upsertTask(task) {
    let card = desk.tasks.get(task.task_id) || desk.finished.get(task.task_id);
    if (card) {
      desk.finished.delete(task.task_id);
      card.update(task);
    } else {
      card = new TaskCard(task);
    }
    desk.tasks.set(task.task_id, card);
    if (card.root.parentNode !== $("tasks")) $("tasks").append(card.root);
  }

  function finishTask(taskId, task) {
    const card = desk.tasks.get(taskId);
    if (!card) return;
    desk.tasks.delete(taskId);
    card.update({ ...card.task, ...task, state: "completed" });
    desk.finished.set(taskId, card);
    $("finished").prepend(card.root);
    while (desk.finished.size > MAX_FINISHED) {
      const [oldest, old] = desk.finished.entries().next().value;
      old.root.remove();
      desk.finished.delete(oldest);
    }
  }

  function refreshCalls() {
    for (const card of desk.tasks.values()) card.renderCall();
    renderOtherCalls();
  }

  // -- calls outside my tasks (click-to-dial, a call transferred to me) -----------------

  const otherCalls = new Map(); // call id -> {root, render(entry)}

  function renderOtherCalls() {
    const me = session && session.agent ? String(session.agent.id) : "";
    const inTasks = new Set();
    for (const card of desk.tasks.values()) {
      const entry = callOf(card.task);
      if (entry) inTasks.add(entry.call.id);
    }
    const wanted = new Map();
    for (const entry of desk.calls.values()) {
      if (entry.agent_ids.includes(me) && !inTasks.has(entry.call.id)) wanted.set(entry.call.id, entry);
    }
    for (const [id, card] of otherCalls) {
      if (wanted.has(id)) continue;
      if (card.interactionId && !card.closed) {
        card.ended(); // the call is over: its wrap-up stays until the agent closes it
      } else {
        card.root.remove();
        otherCalls.delete(id);
      }
    }
    for (const [id, entry] of wanted) {
      let card = otherCalls.get(id);
      if (!card) {
        card = callCard(id);
        otherCalls.set(id, card);
        $("calls").append(card.root);
      }
      card.render(entry);
    }
  }

  /** Disposition and notes for an interaction (codes from the settings). */
  function wrapUpForm(interactionId, error) {
    const disposition = el(
      "select",
      { "aria-label": "Disposition" },
      el("option", { value: "" }, "disposition…"),
      (settings().dispositions || []).map((code) => el("option", { value: code }, label(code))),
    );
    const notes = el("textarea", { rows: 2, maxlength: settings().notes_max_chars || 2000, placeholder: "notes", "aria-label": "Notes" });
    const save = el("button", { type: "button" }, "Save wrap-up");
    const saved = el("span", { class: "muted saved" });
    save.addEventListener("click", async () => {
      setText(error, "");
      if (!disposition.value) {
        setText(error, "Choose a disposition.");
        return;
      }
      save.disabled = true;
      const result = await api("POST", `/api/interactions/${encodeURIComponent(interactionId())}/disposition`, {
        disposition: disposition.value,
        notes: notes.value,
      });
      save.disabled = false;
      if (result.ok) {
        setText(saved, `saved: ${label(result.body.interaction.disposition)}`);
        refreshRecord(result.body.interaction.customer_id);
      } else setText(error, `wrap-up not saved: ${errorText(result)}`);
    });
    return el("div", {}, el("h4", {}, "Wrap-up"), el("div", { class: "buttons" }, disposition, save, saved), notes);
  }

  /** A call with no task card: its parties and the call controls. */
  function callCard(callId) {
    const parties = el("span", { class: "muted parties" });
    const state = el("p", { class: "call-state" });
    const error = el("p", { class: "error", role: "alert" });
    const hangup = el("button", { type: "button", class: "danger" }, "Hang up");
    const hold = el("button", { type: "button" }, "Hold");
    const target = el("input", { placeholder: "extension or number", maxlength: 32, "aria-label": "Transfer target", class: "target" });
    const kind = el("select", { "aria-label": "Transfer to" }, el("option", { value: "agent" }, "extension"), el("option", { value: "number" }, "number"));
    const blind = el("button", { type: "button" }, "Blind transfer");
    const controls = el("div", { class: "controls" }, el("div", { class: "buttons" }, hangup, hold), el("div", { class: "buttons" }, target, kind, blind));
    const wrapSlot = el("div", { class: "wrap-up" });
    const close = el("button", { type: "button", class: "small", hidden: true }, "Close");
    const root = el(
      "article",
      { class: "card call-only", dataset: { call: callId } },
      el("header", {}, el("h2", {}, "Call"), parties, close),
      state,
      controls,
      wrapSlot,
      error,
    );
    let current = null;
    const act = async (action, body) => {
      setText(error, "");
      const key = newKey();
      const buttons = root.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      const payload = action === "transfer" ? { ...body, idempotency_key: key } : body;
      const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/${action}`, payload, { idempotencyKey: key });
      buttons.forEach((b) => (b.disabled = false));
      if (!result.ok) setText(error, `${action}: ${errorText(result)}`);
    };
    hangup.addEventListener("click", () => act("hangup"));
    hold.addEventListener("click", () => act(current && current.call.held ? "unhold" : "hold"));
    blind.addEventListener("click", () => {
      const to = target.value.trim();
      if (!to) setText(error, "Enter an extension or a number to transfer to.");
      else act("transfer", { target: to, kind: "blind", to: kind.value });
    });
    const card = {
      root,
      interactionId: null,
      closed: false,
      render(entry) {
        current = entry;
        const call = entry.call;
        setText(parties, [...new Set([call.caller.number, call.callee.number].filter(Boolean))].join(" → "));
        setText(state, call.held ? "on hold" : call.bridged ? "connected" : call.state);
        state.dataset.call = call.state;
        setText(hold, call.held ? "Resume" : "Hold");
        if (entry.interaction_id && !card.interactionId) {
          // A click-to-dial call is an interaction of its own: wrap it up here.
          card.interactionId = entry.interaction_id;
          wrapSlot.append(wrapUpForm(() => card.interactionId, error));
        }
      },
      ended() {
        setText(state, "ended");
        state.dataset.call = "ended";
        show(controls, false);
        show(close, true);
      },
    };
    close.addEventListener("click", () => {
      card.closed = true;
      renderOtherCalls();
    });
    return card;
  }

  function callOf(task) {
    const callId = task.pop && task.pop.call_id;
    if (callId && desk.calls.has(callId)) return desk.calls.get(callId);
    for (const c of desk.calls.values()) if (c.task_id === task.task_id) return c;
    return null;
  }

  const TASK_TITLES = { voice: "Call", email: "E-mail", callback: "Callback", chat: "Chat" };

  class TaskCard {
    constructor(task) {
      this.task = task;
      this.popFor = undefined;
      this.status = el("span", { class: "task-state" });
      this.popSlot = el("div");
      this.callSlot = el("div", { class: "call" });
      this.emailSlot = el("div", { class: "email" });
      this.callbackSlot = el("div", { class: "callback" });
      this.wrapSlot = el("div", { class: "wrap-up" });
      this.error = el("p", { class: "error", role: "alert" });
      this.root = el(
        "article",
        { class: "card task", dataset: { task: task.task_id, channel: task.channel || "" } },
        el("header", {}, el("h2", {}, TASK_TITLES[task.channel] || task.channel || "Task"), this.status),
        this.popSlot,
        this.callSlot,
        this.emailSlot,
        this.callbackSlot,
        this.wrapSlot,
        this.error,
      );
      this.buildCallControls();
      this.buildWrapUp();
      if (task.channel === "email") this.buildEmail();
      if (task.channel === "callback") this.buildCallback();
      this.update(task);
    }

    get interactionId() {
      return this.task.pop ? this.task.pop.interaction_id : null;
    }

    /** The customer was identified from this card: show the record now (the
     * server also sends the task again with the new pop). */
    linked(result) {
      const pop = result.pop || { ...(this.task.pop || {}), customer: result.customer };
      this.update({ ...this.task, customer_id: String(result.customer.id), pop });
    }

    update(task) {
      this.task = { ...this.task, ...task, pop: task.pop || this.task.pop };
      this.root.dataset.state = this.task.state;
      setText(this.status, this.task.state);
      if (this.popFor !== this.task.pop) {
        this.popFor = this.task.pop;
        const identify = { interactionId: this.interactionId, onLinked: (result) => this.linked(result) };
        // A callback request's caller is the number to call back.
        const attrs = this.task.attributes || {};
        this.popSlot.replaceChildren(popCard(this.task.pop, attrs.caller_number || attrs.callback_number, identify));
      }
      this.renderCall();
      show(this.callbackSlot, this.task.channel === "callback" && this.task.state !== "completed");
    }

    // call controls ----------------------------------------------------------------

    buildCallControls() {
      this.callState = el("p", { class: "call-state" });
      this.hangup = el("button", { type: "button", class: "danger" }, "Hang up");
      this.hold = el("button", { type: "button" }, "Hold");
      this.target = el("input", { placeholder: "extension or number", maxlength: 32, "aria-label": "Transfer target", class: "target" });
      this.targetKind = el(
        "select",
        { "aria-label": "Transfer to" },
        el("option", { value: "agent" }, "extension"),
        el("option", { value: "number" }, "number"),
        el("option", { value: "queue" }, "queue"),
      );
      this.queueList = el("datalist", { id: `queues-${this.task.task_id}` });
      this.targetKind.addEventListener("change", () => {
        const queue = this.targetKind.value === "queue";
        this.target.placeholder = queue ? "queue" : "extension or number";
        this.attended.disabled = queue; // a transfer to a queue is blind
        if (queue) this.target.setAttribute("list", this.queueList.id);
        else this.target.removeAttribute("list");
        this.queueList.replaceChildren(...(settings().queues || []).map((q) => el("option", { value: q.id }, q.name)));
      });
      this.blind = el("button", { type: "button" }, "Blind transfer");
      this.attended = el("button", { type: "button" }, "Attended transfer");
      this.complete = el("button", { type: "button", hidden: true }, "Complete transfer");
      this.cancel = el("button", { type: "button", hidden: true }, "Cancel transfer");
      // The card payment line: the caller types the card number to the IVR with the
      // recording paused, then comes back to this agent (README, "Card payments").
      this.payment = el(
        "button",
        { type: "button", class: "payment", hidden: !settings().payment, title: "The caller types the card number with the recording paused, then comes back to you" },
        "Card payment",
      );
      this.controls = el(
        "div",
        { class: "controls" },
        el("div", { class: "buttons" }, this.hangup, this.hold, this.payment),
        el("div", { class: "buttons" }, this.target, this.queueList, this.targetKind, this.blind, this.attended, this.complete, this.cancel),
      );
      // The call's recording: its state, and pause/resume (card payments).
      this.recState = el("span", { class: "recording-state", dataset: { recording: "unknown" } });
      this.recToggle = el("button", { type: "button", class: "recording-toggle", hidden: true }, "Pause recording");
      this.recording = el("div", { class: "recording" }, this.recState, this.recToggle);
      this.recToggle.addEventListener("click", () => this.toggleRecording());
      this.callSlot.append(this.callState, this.recording, this.controls);
      this.hangup.addEventListener("click", () => this.callAction("hangup"));
      this.hold.addEventListener("click", () => {
        const c = callOf(this.task);
        this.callAction(c && c.call.held ? "unhold" : "hold");
      });
      this.blind.addEventListener("click", () => this.transfer("blind"));
      this.attended.addEventListener("click", () => this.transfer("attended"));
      this.payment.addEventListener("click", () => this.callAction("transfer", { kind: "blind", to: "payment" }));
      this.complete.addEventListener("click", () => this.callAction("transfer/complete"));
      this.cancel.addEventListener("click", () => this.callAction("transfer/cancel"));
    }

    renderCall() {
      const voice = this.task.channel === "voice";
      const entry = voice ? callOf(this.task) : null;
      const callId = this.task.pop && this.task.pop.call_id;
      show(this.callSlot, voice && this.task.state !== "completed");
      if (!voice) return;
      const mine = entry && session && entry.agent_ids.includes(String(session.agent.id));
      let text;
      if (!entry) text = callId ? "call ended or not connected yet" : "no call";
      else if (entry.call.held) text = "on hold";
      else if (mine) text = entry.call.bridged ? "connected" : entry.call.state;
      else text = entry.call.transferred_to ? `transferred to ${entry.call.transferred_to}` : "you have left the call";
      setText(this.callState, text);
      this.callState.dataset.call = entry ? entry.call.state : "none";
      show(this.controls, Boolean(entry && mine));
      setText(this.hold, entry && entry.call.held ? "Resume" : "Hold");
      if (!entry || !mine) {
        show(this.complete, false);
        show(this.cancel, false);
      }
      this.renderRecording(entry, mine);
    }

    renderRecording(entry, mine) {
      const callId = this.task.pop && this.task.pop.call_id;
      const rec = callId ? desk.recordings.get(callId) : null;
      if (!rec && entry && callId && this.recAskedFor !== callId) {
        this.recAskedFor = callId; // once per call; later changes come as events
        api("GET", `/api/calls/${encodeURIComponent(callId)}/recording`).then((result) => {
          if (result.ok && !desk.recordings.has(callId)) {
            desk.recordings.set(callId, result.body);
            this.renderCall();
          }
        });
      }
      const state = rec ? rec.state : "unknown";
      const words = {
        recording: "● Recording",
        paused: "Recording paused",
        not_recorded: "Not recorded",
        ended: "Recording ended",
        stored: "Recording saved",
        failed: "Recording failed",
        unknown: "",
      };
      this.recState.dataset.recording = state;
      setText(this.recState, words[state] === undefined ? state : words[state]);
      show(this.recording, Boolean(entry) && state !== "unknown");
      const live = Boolean(entry && mine) && (state === "recording" || state === "paused");
      show(this.recToggle, live);
      setText(this.recToggle, state === "paused" ? "Resume recording" : "Pause recording");
    }

    async toggleRecording() {
      const callId = this.task.pop && this.task.pop.call_id;
      const rec = callId ? desk.recordings.get(callId) : null;
      if (!rec) return;
      setText(this.error, "");
      const action = rec.state === "paused" ? "resume" : "pause";
      this.recToggle.disabled = true;
      const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/recording/${action}`, { source: "desk" });
      this.recToggle.disabled = false;
      if (result.ok) {
        desk.recordings.set(callId, result.body);
        this.renderCall();
      } else {
        setText(this.error, `${action} recording: ${errorText(result)}`);
      }
    }

    async callAction(action, body) {
      const callId = this.task.pop && this.task.pop.call_id;
      if (!callId) return;
      setText(this.error, "");
      const key = newKey();
      const payload = action.startsWith("transfer") && body ? { ...body, idempotency_key: key } : body;
      const buttons = this.controls.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      const result = await api("POST", `/api/calls/${encodeURIComponent(callId)}/${action}`, payload, { idempotencyKey: key });
      buttons.forEach((b) => (b.disabled = false));
      if (!result.ok) setText(this.error, `${action}: ${errorText(result)}`);
      return result;
    }

    async transfer(kind) {
      const target = this.target.value.trim();
      if (!target) {
        setText(this.error, "Enter an extension or a number to transfer to.");
        return;
      }
      const result = await this.callAction("transfer", { target, kind, to: this.targetKind.value });
      if (result && result.ok && kind === "attended") {
        show(this.complete, true);
        show(this.cancel, true);
      }
    }

    // wrap-up ------------------------------------------------------------------------

    buildWrapUp() {
      this.disposition = el(
        "select",
        { "aria-label": "Disposition" },
        el("option", { value: "" }, "disposition…"),
        (settings().dispositions || []).map((code) => el("option", { value: code }, label(code))),
      );
      this.notes = el("textarea", { rows: 2, maxlength: settings().notes_max_chars || 2000, placeholder: "notes", "aria-label": "Notes" });
      this.save = el("button", { type: "button" }, "Save wrap-up");
      this.saved = el("span", { class: "muted saved" });
      this.wrapSlot.append(el("h4", {}, "Wrap-up"), el("div", { class: "buttons" }, this.disposition, this.save, this.saved), this.notes);
      this.save.addEventListener("click", () => this.saveWrapUp());
    }

    async saveWrapUp() {
      const id = this.interactionId;
      setText(this.error, "");
      if (!id) {
        setText(this.error, "No interaction to save the wrap-up on.");
        return;
      }
      if (!this.disposition.value) {
        setText(this.error, "Choose a disposition.");
        return;
      }
      this.save.disabled = true;
      const result = await api("POST", `/api/interactions/${id}/disposition`, {
        disposition: this.disposition.value,
        notes: this.notes.value,
      });
      this.save.disabled = false;
      if (result.ok) {
        const saved = result.body.interaction;
        setText(this.saved, `saved: ${label(saved.disposition)}`);
        // The customer's record on the side shows it at once.
        refreshRecord(saved.customer_id);
      } else setText(this.error, `wrap-up not saved: ${errorText(result)}`);
    }

    // e-mail -------------------------------------------------------------------------

    // a callback request (the IVR's voicemail or callback option) ------------------

    buildCallback() {
      const attrs = this.task.attributes || {};
      const number = typeof attrs.callback_number === "string" ? attrs.callback_number : "";
      const extension = session && session.agent && session.agent.extension;
      this.callBack = el("button", { type: "button", class: "primary" }, number ? `Call back ${number}` : "No number to call back");
      this.callBack.disabled = !number || !extension;
      this.done = el("button", { type: "button" }, "Done");
      const seconds = Math.round(Number(attrs.recording_seconds) || 0);
      this.callbackSlot.append(
        el("h4", {}, attrs.voicemail ? "Voicemail: call back" : "Callback request"),
        attrs.voicemail ? el("p", { class: "muted voicemail" }, `The caller left a ${seconds} s message.`) : null,
        el("div", { class: "buttons" }, this.callBack, this.done),
      );
      // Click-to-dial: this agent's phone rings first, then the number.
      this.callBack.addEventListener("click", (e) => dial(number, extension, e.target));
      this.done.addEventListener("click", () => this.completeTask());
    }

    async completeTask() {
      this.done.disabled = true;
      setText(this.error, "");
      const result = await api("POST", `/api/tasks/${encodeURIComponent(this.task.task_id)}/complete`);
      this.done.disabled = false;
      if (!result.ok) setText(this.error, `not done: ${errorText(result)}`);
    }

    buildEmail() {
      this.thread = el("div", { class: "thread" });
      this.reply = el("textarea", { rows: 5, maxlength: 20000, placeholder: "Your reply", "aria-label": "Reply" });
      this.send = el("button", { type: "button", class: "primary" }, "Send reply");
      this.sent = el("span", { class: "muted" });
      this.emailSlot.append(el("h4", {}, "Thread"), this.thread, this.reply, el("div", { class: "buttons" }, this.send, this.sent));
      this.send.addEventListener("click", () => this.sendReply());
      this.renderThread((this.task.pop && this.task.pop.emails) || []);
      this.loadThread();
    }

    async loadThread() {
      const id = this.interactionId;
      if (!id) return;
      const result = await api("GET", `/api/interactions/${id}/emails`);
      if (result.ok) this.renderThread(result.body.messages);
      else setText(this.error, `thread: ${errorText(result)}`);
    }

    renderThread(messages) {
      this.thread.replaceChildren(...messages.map(messageView));
    }

    async sendReply() {
      const id = this.interactionId;
      const text = this.reply.value;
      if (!id || !text.trim()) {
        setText(this.error, "Write a reply first.");
        return;
      }
      this.send.disabled = true;
      setText(this.error, "");
      const agent = (session && session.agent) || {};
      const result = await api("POST", `/api/interactions/${id}/reply`, { text, agent_name: agent.display_name || "Support" });
      this.send.disabled = false;
      if (result.ok) {
        this.reply.value = "";
        setText(this.sent, "sent");
        this.loadThread();
      } else setText(this.error, `reply not sent: ${errorText(result)}`);
    }
  }

  /** One e-mail of a thread, as text. */
  function messageView(m) {
    return el(
      "div",
      { class: `message ${m.direction}`, dataset: { message: String(m.id) } },
      el(
        "div",
        { class: "meta" },
        el("strong", {}, m.from ? m.from.name || m.from.address : ""),
        " ",
        el("span", { class: "muted" }, m.from && m.from.name ? `<${m.from.address}>` : ""),
        " · ",
        el("span", { class: "muted" }, clockTime(m.received_at)),
        m.direction === "outbound" ? el("span", { class: "tag" }, m.status || "sent") : null,
      ),
      el("div", { class: "subject" }, m.subject || "(no subject)"),
      // The text part only, as text: an HTML body is never rendered.
      el("pre", { class: "body" }, m.text || (m.html ? "(HTML-only message; shown as text)\n" + m.html : "")),
    );
  }

  // -- queues -----------------------------------------------------------------------

  function renderQueues() {
    const rows = [...desk.queues.values()].map((q) => {
      const waiting = q.figures ? q.figures.waiting : 0;
      return el(
        "tr",
        { dataset: { queue: q.queue_id } },
        el("td", {}, q.name || q.queue_id),
        el("td", { class: "num waiting" }, String(waiting)),
        el("td", { class: "num clock longest", dataset: { longest: String(q.figures ? q.figures.longest_wait : 0), at: String(serverNow()) } }, waiting ? duration(q.figures.longest_wait) : "–"),
      );
    });
    $("queue-rows").replaceChildren(...rows);
  }

  // -- customer search ----------------------------------------------------------------

  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("search-text").value.trim();
    if (!text || !live) return;
    setText($("search-status"), "searching…");
    const ack = await live.request("search_customers", { text, limit: 20 });
    if (!ack.ok) {
      setText($("search-status"), ack.message || ack.error);
      return;
    }
    setText($("search-status"), ack.customers.length ? `${ack.customers.length} found` : "nobody found");
    $("search-results").replaceChildren(...ack.customers.map(customerItem));
  });

  function customerItem(c) {
    const extension = session && session.agent && session.agent.extension;
    return el(
      "li",
      { class: "customer", dataset: { customer: String(c.id) } },
      el("strong", { class: "customer-name" }, c.name),
      " ",
      el("button", { type: "button", class: "small", title: "Open the customer's record", onclick: () => openRecord(c.id) }, "Record"),
      c.account_number ? el("span", { class: "muted" }, ` · account ${c.account_number}`) : null,
      el(
        "div",
        { class: "phones" },
        c.phones.map((number) =>
          el(
            "span",
            { class: "phone" },
            number,
            extension ? el("button", { type: "button", class: "small dial", title: `Call ${number}`, onclick: () => dial(number, extension) }, "Call") : null,
          ),
        ),
      ),
      c.emails.length ? el("div", { class: "muted" }, c.emails.join(", ")) : null,
      c.notes ? el("div", { class: "notes" }, c.notes) : null,
    );
  }

  /** Click-to-dial: the agent's phone rings first, then the customer's. */
  async function dial(number, extension, button) {
    const status = $("dial-status");
    setText(status, `calling ${number}…`);
    if (button) button.disabled = true;
    const result = await api("POST", "/api/calls", { agent_device: extension, number, idempotency_key: newKey() });
    if (button) button.disabled = false;
    setText(status, result.ok ? `dialing ${number}: your phone rings first` : `not dialed: ${errorText(result)}`);
  }

  // -- a customer's record (from the search, or refreshed after a wrap-up) ----------------

  let shownRecord = null; // the customer id on the record card

  async function openRecord(customerId) {
    const card = $("record");
    const result = await api("GET", `/api/customers/${encodeURIComponent(customerId)}`);
    if (!result.ok) {
      setText($("search-status"), `record: ${errorText(result)}`);
      return;
    }
    shownRecord = customerId;
    const { customer, recent_interactions: recent, open_emails: open } = result.body;
    card.dataset.customer = String(customer.id);
    $("record-body").replaceChildren(
      popCard({ customer, recent_interactions: recent, open_emails: open, caller_number: null }),
    );
    show(card, true);
  }

  function refreshRecord(customerId) {
    if (customerId && shownRecord === customerId) openRecord(customerId);
  }

  $("record-close").addEventListener("click", () => {
    shownRecord = null;
    show($("record"), false);
  });

  // -- the clock ------------------------------------------------------------------------

  function tick() {
    const now = serverNow();
    if (desk.agent) setText($("state-time"), duration(now - desk.agent.since));
    for (const entry of desk.offers.values()) {
      const left = entry.data.expires_at - now;
      setText(entry.countdown, left > 0 ? `answer within ${duration(left)}` : "expired");
      entry.countdown.classList.toggle("urgent", left <= 5);
    }
    for (const cell of document.querySelectorAll("#queue-rows .longest")) {
      const row = cell.closest("tr");
      const waiting = Number(row.querySelector(".waiting").textContent);
      const base = Number(cell.dataset.longest);
      setText(cell, waiting ? duration(base + now - Number(cell.dataset.at)) : "–");
    }
  }
  setInterval(tick, 500);

  // -- go ---------------------------------------------------------------------------

  const existing = CW.loadSession();
  if (existing) start(existing);
  else {
    show($("login"), true);
    CW.setBanner($("banner"), "disconnected");
  }
})();
