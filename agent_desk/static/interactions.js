// The interaction list for supervisors: filters, paging, and each interaction's
// recordings played in an <audio> element whose source is a short-lived signed
// URL from GET /api/recordings/{id}/playback (the element seeks with Range
// requests). Everything shown is inserted with textContent (CW.el).
"use strict";

(() => {
  const { el, setText, show, duration, clockTime, api, errorText } = CW;
  const $ = (id) => document.getElementById(id);
  const SUPERVISOR_ROLES = new Set(["supervisor", "admin"]);
  const PER_PAGE = 50;

  let page = 1;
  let total = 0;
  let playing = null; // recording id in the player

  // -- log in / out -----------------------------------------------------------------

  function start(session) {
    const agent = session.agent || {};
    if (!SUPERVISOR_ROLES.has(agent.role)) {
      loggedOut("This page is for supervisors and admins.");
      return;
    }
    show($("login"), false);
    show($("page"), true);
    show($("logout"), true);
    setText($("who"), `${agent.display_name || agent.username || ""} (${agent.role})`);
    load(1);
  }

  function loggedOut(message) {
    CW.clearSession();
    stopPlayer();
    show($("page"), false);
    show($("logout"), false);
    show($("login"), true);
    setText($("who"), "");
    setText($("login-error"), message || "");
    $("rows").replaceChildren();
    CW.setBanner($("banner"), "disconnected");
  }

  CW.onUnauthorized = () => loggedOut("Your session has ended; log in again.");
  CW.bindLogin($("login-form"), $("login-error"), start);
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    loggedOut("");
  });

  // -- the list ---------------------------------------------------------------------

  function dayStart(value, plusDays) {
    // A date input's day, local midnight, as ISO 8601 (UTC).
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + plusDays).toISOString();
  }

  function query(pageNumber) {
    const params = new URLSearchParams({ page: String(pageNumber), per_page: String(PER_PAGE) });
    const from = $("f-from").value;
    const to = $("f-to").value;
    if (from) params.set("from", dayStart(from, 0));
    if (to) params.set("to", dayStart(to, 1)); // the whole "to" day
    for (const [id, name] of [["f-queue", "queue"], ["f-agent", "agent_id"], ["f-customer", "customer_id"], ["f-channel", "channel"]]) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    if ($("f-recorded").checked) params.set("recorded", "true");
    return params;
  }

  async function load(pageNumber) {
    setText($("list-error"), "");
    setText($("list-status"), "loading…");
    const result = await api("GET", `/api/interactions?${query(pageNumber)}`);
    if (!result.ok) {
      setText($("list-status"), "");
      setText($("list-error"), errorText(result));
      CW.setBanner($("banner"), result.status === 0 ? "disconnected" : "live");
      return;
    }
    CW.setBanner($("banner"), "live");
    page = result.body.page;
    total = result.body.total;
    const items = result.body.interactions;
    $("rows").replaceChildren(...items.map(row));
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    setText($("list-status"), `${total} interaction${total === 1 ? "" : "s"}`);
    setText($("page-label"), `page ${page} of ${pages}`);
    $("prev").disabled = page <= 1;
    $("next").disabled = page >= pages;
    historyLabel();
  }

  function lengthOf(i) {
    if (!i.ended_at) return "–";
    const begin = Date.parse(i.answered_at || i.started_at);
    return duration((Date.parse(i.ended_at) - begin) / 1000);
  }

  function row(i) {
    const recs = i.recordings || [];
    return el(
      "tr",
      { dataset: { interaction: String(i.id) } },
      el("td", {}, clockTime(i.started_at)),
      el(
        "td",
        { class: "customer" },
        i.customer
          ? el("button", { type: "button", class: "link", title: "This customer's history", onclick: () => showCustomer(i.customer) }, i.customer.name)
          : "–",
      ),
      el("td", {}, [i.channel, i.direction].filter(Boolean).join(" ")),
      el("td", {}, i.queue || ""),
      el("td", {}, i.agent ? i.agent.display_name : "–"),
      el("td", { class: "disposition" }, i.disposition || "–"),
      el("td", { class: "num survey" }, i.survey_score == null ? "–" : `${i.survey_score}/5`),
      el("td", { class: "num" }, lengthOf(i)),
      el("td", { class: "rec" }, recs.length ? recs.map((r) => recordingControls(r, i)) : el("span", { class: "muted" }, "–")),
    );
  }

  function recordingControls(rec, interaction) {
    if (rec.state !== "stored") {
      return el("span", { class: "tag", dataset: { recording: rec.id }, title: `recording ${rec.id}` }, rec.state);
    }
    const label = rec.duration_ms ? duration(rec.duration_ms / 1000) : "";
    return el(
      "span",
      { class: "recording", dataset: { recording: rec.id } },
      el("button", { type: "button", class: "small play", onclick: () => play(rec, interaction) }, "Play", label ? ` ${label}` : ""),
      el("button", { type: "button", class: "small download", onclick: () => download(rec) }, "Download"),
    );
  }

  /** The customer's history: every interaction of theirs, newest first. */
  function showCustomer(customer) {
    $("f-customer").value = String(customer.id);
    load(1);
  }

  function historyLabel() {
    const id = $("f-customer").value.trim();
    const row = id && document.querySelector("#rows td.customer button");
    setText($("history-of"), id && row ? `history of ${row.textContent}` : "");
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    load(1);
  });
  $("prev").addEventListener("click", () => load(page - 1));
  $("next").addEventListener("click", () => load(page + 1));

  // -- playback -------------------------------------------------------------------------

  async function play(rec, interaction) {
    setText($("player-error"), "");
    const result = await api("GET", `/api/recordings/${encodeURIComponent(rec.id)}/playback`);
    show($("player-card"), true);
    if (!result.ok) {
      setText($("player-error"), `cannot play: ${errorText(result)}`);
      return;
    }
    const player = $("player");
    playing = rec.id;
    player.dataset.recording = rec.id;
    player.src = result.body.url;
    const who = interaction.customer ? interaction.customer.name : "unknown caller";
    setText($("player-label"), `${who} · ${clockTime(interaction.started_at)}`);
    setText($("player-expiry"), `link valid until ${clockTime(result.body.expires_at)}`);
    for (const tr of document.querySelectorAll("#rows tr")) tr.classList.toggle("playing", tr.dataset.interaction === String(interaction.id));
    try {
      await player.play();
    } catch (e) {
      // Autoplay refused or the source failed: the controls are there to try again.
      if (playing === rec.id && player.error) setText($("player-error"), "the recording could not be loaded");
    }
  }

  $("player").addEventListener("error", () => {
    if (playing) setText($("player-error"), "the recording could not be loaded (the link may have expired: press Play again)");
  });

  function stopPlayer() {
    const player = $("player");
    playing = null;
    player.pause();
    player.removeAttribute("src");
    delete player.dataset.recording;
    show($("player-card"), false);
  }

  async function download(rec) {
    const result = await api("GET", `/api/recordings/${encodeURIComponent(rec.id)}/playback?purpose=download`);
    if (!result.ok) {
      show($("player-card"), true);
      setText($("player-error"), `cannot download: ${errorText(result)}`);
      return;
    }
    const link = el("a", { href: result.body.url, download: `recording-${rec.id}.wav`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  }

  // -- go ---------------------------------------------------------------------------------

  const existing = CW.loadSession();
  if (existing) start(existing);
  else {
    show($("login"), true);
    CW.setBanner($("banner"), "disconnected");
  }
})();
