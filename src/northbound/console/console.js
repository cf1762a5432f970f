// The live alarm list: fed by the SSE stream (fetch-read, so a reconnect always sends
// Last-Event-ID, also after a refused or dropped connection), filters kept in the URL,
// grouping, highlights, acting with the token, the detail pane, sound and the keyboard.
"use strict";

(() => {
  const { el, duration, since, clock, auth, getJson, post, RANK, SEVERITIES } = noctua;
  const $ = (id) => document.getElementById(id);

  const state = {
    alarms: new Map(),     // alarmId → alarm, suppressed and lingering cleared ones included
    changed: new Map(),    // alarmId → local ms of its last change (highlight)
    clearedAt: new Map(),  // alarmId → local ms it cleared (linger)
    rows: new Map(),       // alarmId → { version, tr }
    versions: new Map(),   // alarmId → notificationId the row was built from
    lastSeq: null,
    selected: null,
    devices: new Map(),    // name → { site, role, parent }
    highlightMs: 15000,
    lingerMs: 300000,
    targets: {},
    writes: false,
    detailOpen: null,
    soundOn: false,
    snoozeUntil: 0,
    notifyOn: false,
  };
  window.noctuaConsole = state; // for the browser tests and the curious

  // ---- filters, in the URL ----
  const form = $("filters");
  const FILTERS = ["severity", "category", "state", "site", "device", "q", "group"];
  function readUrl() {
    const p = new URLSearchParams(location.search);
    for (const k of FILTERS) if (form.elements[k]) form.elements[k].value = p.get(k) || "";
  }
  function writeUrl() {
    const p = new URLSearchParams();
    for (const k of FILTERS) { const v = form.elements[k].value.trim(); if (v) p.set(k, v); }
    const qs = p.toString();
    history.replaceState(null, "", qs ? `?${qs}` : location.pathname);
  }
  function filters() {
    const f = {};
    for (const k of FILTERS) f[k] = form.elements[k].value.trim();
    f.q = f.q.toLowerCase();
    return f;
  }
  function site(a) { const d = state.devices.get(a.device); return (d && d.site) || ""; }
  function passes(a, f) {
    if (f.severity && !a.alarmClearedTime && RANK[a.perceivedSeverity] < RANK[f.severity.toUpperCase()]) return false;
    if (f.category && a.category !== f.category) return false;
    if (f.state === "suppressed") { if (!a.suppressedBy) return false; }
    else if (a.suppressedBy && !a.alarmClearedTime) return false;
    if (f.state === "acknowledged" && a.ackState !== "ACKNOWLEDGED") return false;
    if (f.state === "unacknowledged" && a.ackState !== "UNACKNOWLEDGED") return false;
    if (f.site && site(a) !== f.site) return false;
    if (f.device && a.device !== f.device) return false;
    if (f.q) {
      const hay = `${a.device} ${a.object} ${a.condition} ${a.additionalText} ${site(a)}`.toLowerCase();
      if (!hay.includes(f.q)) return false;
    }
    return true;
  }

  // ---- the list ----
  function newestFirst(a, b) {
    return Date.parse(b.alarmChangedTime || b.alarmRaisedTime) - Date.parse(a.alarmChangedTime || a.alarmRaisedTime)
      || Number(b.alarmId) - Number(a.alarmId);
  }
  function stateText(a) {
    if (a.alarmClearedTime) return a.clearUserId ? `cleared by ${a.clearUserId}` : "cleared";
    const parts = [];
    if (a.ackState === "ACKNOWLEDGED") parts.push(`ack ${a.ackUserId || ""}`.trim());
    if (a.suppressedBy === "root_cause") parts.push("suppressed: root cause");
    else if (a.suppressedBy === "maintenance") parts.push("in maintenance");
    else if (a.suppressedBy === "flapping") parts.push("suppressed: flapping");
    return parts.join(", ") || "open";
  }
  function buildRow(a) {
    const sev = a.alarmClearedTime ? "CLEARED" : a.perceivedSeverity;
    return el("tr", { class: `sev-${sev.toLowerCase()}`, "data-id": a.alarmId, tabindex: "-1",
      onclick: () => { select(a.alarmId); openDetail(a.alarmId); } },
      el("td", { class: "sev" }, sev.toLowerCase()),
      el("td", {}, a.device),
      el("td", {}, site(a)),
      el("td", {}, a.object),
      el("td", {}, a.condition),
      el("td", { class: "text" }, a.additionalText),
      el("td", {}, stateText(a)),
      el("td", { class: "age", "data-at": a.alarmChangedTime || a.alarmRaisedTime }, clock(a.alarmChangedTime || a.alarmRaisedTime)),
      el("td", { class: "num" }, String(a.count)));
  }
  function rowOf(a) {
    const have = state.rows.get(a.alarmId);
    const version = `${a.notificationId}/${a.alarmClearedTime ? 1 : 0}`;
    if (have && have.version === version) return have.tr;
    const tr = buildRow(a);
    state.rows.set(a.alarmId, { version, tr });
    return tr;
  }

  let dirty = false;
  function invalidate() {
    if (dirty) return;
    dirty = true;
    requestAnimationFrame(render);
  }
  /** Renders the list; returns the ms it took (the browser tests read it). */
  function render() {
    const t0 = performance.now();
    dirty = false;
    const now = Date.now();
    for (const [id, at] of state.clearedAt) {
      if (now - at > state.lingerMs) { state.alarms.delete(id); state.clearedAt.delete(id); state.rows.delete(id); state.changed.delete(id); }
    }
    const f = filters();
    const shown = [...state.alarms.values()].filter((a) => passes(a, f)).sort(newestFirst);
    const out = [];
    if (f.group) {
      const groups = new Map();
      for (const a of shown) {
        const key = (f.group === "site" ? site(a) : a.device) || "(no site)";
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(a);
      }
      const collapsed = JSON.parse(sessionStorage.getItem("noctua.collapsed") || "{}");
      for (const key of [...groups.keys()].sort()) {
        const list = groups.get(key);
        const worst = list.reduce((w, a) => (RANK[a.perceivedSeverity] > RANK[w] ? a.perceivedSeverity : w), "CLEARED");
        const closed = collapsed[`${f.group}:${key}`];
        out.push(el("tr", { class: `group sev-${worst.toLowerCase()}` },
          el("td", { colspan: "9" },
            el("button", { type: "button", class: "fold", "aria-expanded": String(!closed),
              onclick: () => { collapsed[`${f.group}:${key}`] = !closed; sessionStorage.setItem("noctua.collapsed", JSON.stringify(collapsed)); invalidate(); } },
              closed ? "▸" : "▾"),
            ` ${f.group} ${key} — ${list.length} alarm${list.length === 1 ? "" : "s"}, worst ${worst.toLowerCase()}`)));
        if (!closed) for (const a of list) out.push(rowOf(a));
      }
    } else {
      for (const a of shown) out.push(rowOf(a));
    }
    for (const tr of out) {
      const id = tr.dataset.id;
      if (!id) continue;
      tr.classList.toggle("fresh", now - (state.changed.get(id) || 0) < state.highlightMs);
      tr.classList.toggle("selected", id === state.selected);
    }
    $("rows").replaceChildren(...out);
    if (state.selected && !shown.some((a) => a.alarmId === state.selected)) state.selected = null;
    $("shown").textContent = `${shown.length} shown of ${state.alarms.size}`;
    renderCounts();
    const took = performance.now() - t0;
    state.lastRenderMs = took;
    return took;
  }
  function renderCounts() {
    const counts = { CRITICAL: 0, MAJOR: 0, MINOR: 0, WARNING: 0 };
    for (const a of state.alarms.values()) {
      if (!a.alarmClearedTime && !a.suppressedBy && counts[a.perceivedSeverity] !== undefined) counts[a.perceivedSeverity]++;
    }
    $("counts").replaceChildren(...SEVERITIES.map((s) =>
      el("span", { class: `count sev-${s.toLowerCase()}`, title: `${s.toLowerCase()} active` }, `${s.toLowerCase()} ${counts[s]}`)));
  }
  // Highlights fade and lingering clears go by time, not only on events: re-render each
  // second while one is pending, and only then.
  setInterval(() => {
    const now = Date.now();
    const fading = [...state.changed.values()].some((at) => now - at < state.highlightMs + 1500);
    if (fading || state.clearedAt.size) invalidate();
  }, 1000);

  // ---- the stream ----
  function apply(e, live) {
    if (state.lastSeq !== null && e.seq <= state.lastSeq) return; // never twice
    state.lastSeq = e.seq;
    const a = e.alarm;
    const id = a.alarmId;
    if (e.kind === "cleared") state.clearedAt.set(id, Date.now());
    else state.clearedAt.delete(id);
    // Gone to another cluster member, which carries it on: not this member's to show.
    if (e.kind === "handed_over") state.alarms.delete(id);
    else state.alarms.set(id, a);
    if (["raised", "escalated", "cleared", "de_escalated"].includes(e.kind)) state.changed.set(id, Date.now());
    if (live && e.notified && (e.kind === "raised" || e.kind === "escalated")) alert(a);
    if (state.detailOpen === id) openDetail(id);
    invalidate();
  }
  function snapshot(s) {
    state.alarms.clear(); state.clearedAt.clear(); state.rows.clear();
    for (const a of s.activeAlarms) state.alarms.set(a.alarmId, a);
    state.lastSeq = s.lastSeq;
    invalidate();
  }

  let retry = 500;
  async function stream() {
    for (;;) {
      const controller = new AbortController();
      try {
        const headers = { Accept: "text/event-stream" };
        if (state.lastSeq !== null) headers["Last-Event-ID"] = String(state.lastSeq);
        const r = await fetch("/api/v1/alarms/stream?suppressed=true", { headers, signal: controller.signal, cache: "no-store" });
        if (!r.ok) throw new Error(`stream refused: ${r.status}`);
        link(true);
        retry = 500;
        await read(r.body.getReader());
        throw new Error("stream ended");
      } catch (err) {
        controller.abort();
        link(false, err.message);
        await new Promise((ok) => setTimeout(ok, retry));
        retry = Math.min(retry * 2, 10000);
      }
    }
  }
  async function read(reader) {
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        }
        if (!data) continue;
        const body = JSON.parse(data);
        if (name === "snapshot") snapshot(body);
        else if (name === "transition") apply(body, true);
        else if (name === "restarted") toast(`noctua restarted at ${clock(body.startedAt)}; catching up`);
      }
    }
  }
  function link(up, why) {
    const banner = $("banner");
    $("link").textContent = up ? "live" : "reconnecting…";
    $("link").className = up ? "link up" : "link down";
    banner.hidden = up;
    if (!up) banner.textContent = `Reconnecting to noctua (${why}); the list resumes where it stopped, with nothing missed.`;
  }

  // ---- acting ----
  function toast(text, bad) {
    const t = $("toast");
    t.textContent = text;
    t.className = bad ? "toast bad" : "toast";
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
  }
  function canWrite() {
    if (!state.writes) { toast("writes are disabled on this daemon: no http.token is configured", true); return false; }
    if (!auth.token()) { toast("read-only: enter the token first", true); $("login-dialog").showModal(); return false; }
    return true;
  }
  async function act(id, action, note) {
    if (!canWrite()) return;
    try {
      const body = { user: auth.user() || "console" };
      if (note) body.note = note;
      const r = await post(`/api/v1/alarms/${encodeURIComponent(id)}/${action}`, body);
      toast(`${action} alarm ${id}: ${r.transitions.length ? r.transitions.map((t) => t.kind).join(", ") : "no change"}`);
    } catch (err) {
      toast(`${action} alarm ${id} failed: ${err.message}`, true);
    }
  }
  async function noteFault(faultId, text) {
    if (!canWrite()) return;
    try {
      await post(`/api/v1/faults/${encodeURIComponent(faultId)}/notes`, { by: auth.user() || "console", text });
      toast(`note added to fault ${faultId}`);
    } catch (err) {
      toast(`note on fault ${faultId} failed: ${err.message}`, true);
    }
  }
  /** Approves or rejects an action waiting for it, as the signed-in user; then shows the alarm again. */
  async function decide(actionId, verb, alarmId) {
    if (!canWrite()) return;
    try {
      const r = await post(`/api/v1/actions/${encodeURIComponent(actionId)}/${verb}`, { by: auth.user() || "console" });
      toast(`action ${actionId} ${verb === "approve" ? "approved" : "rejected"}: now ${r.state}`);
    } catch (err) {
      toast(`${verb} action ${actionId} failed: ${err.message}`, true);
    }
    if (state.detailOpen === alarmId) openDetail(alarmId);
  }
  /** Asks for a note in a dialog; resolves to the text or null if cancelled. */
  function askNote(title) {
    const d = $("note-dialog");
    $("note-title").textContent = title;
    d.querySelector("textarea").value = "";
    d.showModal();
    return new Promise((ok) => d.addEventListener("close", () => ok(d.returnValue === "ok" ? d.querySelector("textarea").value : null), { once: true }));
  }
  function toggleAck(id) {
    const a = state.alarms.get(id);
    if (!a || a.alarmClearedTime) return;
    act(id, a.ackState === "ACKNOWLEDGED" ? "unack" : "ack");
  }
  async function clearWithNote(id) {
    const a = state.alarms.get(id);
    if (!a || a.alarmClearedTime || !canWrite()) return;
    const note = await askNote(`Clear alarm ${id} (${a.device} ${a.condition})`);
    if (note !== null) act(id, "clear", note);
  }
  function refreshLogin() {
    $("login").textContent = auth.token() ? `signed in as ${auth.user() || "?"}` : "enter token";
    $("readonly").hidden = Boolean(auth.token()) && state.writes;
    $("readonly").textContent = state.writes
      ? "Read-only: enter the API token to acknowledge, clear and add notes."
      : "Read-only: this daemon has no http.token, so writes are disabled.";
  }

  // ---- detail ----
  async function openDetail(id) {
    state.detailOpen = id;
    const pane = $("detail");
    pane.hidden = false;
    let d;
    try { d = await getJson(`/api/v1/alarms/${encodeURIComponent(id)}`); }
    catch (err) { pane.replaceChildren(el("p", { class: "bad" }, `alarm ${id}: ${err.message}`)); return; }
    if (state.detailOpen !== id) return;
    const a = d.alarm, f = d.fault;
    const sev = a.alarmClearedTime ? "CLEARED" : a.perceivedSeverity;
    const target = state.targets[(f ? f.peakSeverity : a.perceivedSeverity).toLowerCase()] || {};
    const now = Date.now();
    const mtta = f && f.ackedAt ? (Date.parse(f.ackedAt) - Date.parse(f.raisedAt)) / 1000 : null;
    const ackSoFar = f && !f.ackedAt ? (now - Date.parse(f.raisedAt)) / 1000 : null;
    const mttr = f && f.clearedAt ? (Date.parse(f.clearedAt) - Date.parse(f.raisedAt)) / 1000 : null;
    const openFor = f && !f.clearedAt ? (now - Date.parse(f.raisedAt)) / 1000 : null;
    const facts = [
      ["severity", sev.toLowerCase()], ["device", a.device], ["site", site(a) || "—"], ["object", a.object],
      ["condition", a.condition], ["category", a.category], ["raised", clock(a.alarmRaisedTime)],
      ["changed", clock(a.alarmChangedTime)], ["count", String(a.count)], ["state", stateText(a)],
    ];
    if (a.suppressedBy === "maintenance") facts.push(["maintenance", "the device is in a maintenance window: recorded, not notified"]);
    if (a.rootCauseAlarmId) facts.push(["root cause", `alarm ${a.rootCauseAlarmId}`]);
    const im = a.impact || {};
    if (im.services && im.services.length) facts.push(["services", im.services.join(", ")]);
    if (im.customers) facts.push(["customers", im.countedIn
      ? `${im.customers.toLocaleString()} behind it, counted in alarm ${im.countedIn}`
      : `${im.customers.toLocaleString()} affected`]);
    if (f && f.impact && f.impact.customerSeconds) facts.push(["customer-minutes", Math.round(f.impact.customerSeconds / 60).toLocaleString()]);
    const fault = f ? el("section", {},
      el("h3", {}, `Fault ${f.id}`),
      el("table", { class: "facts" },
        el("tr", {}, el("th", {}, "time to ack"), el("td", {}, mtta !== null ? duration(mtta) : `not yet (${duration(ackSoFar)} so far)`),
          el("td", {}, target.ackSecs ? `target ${duration(target.ackSecs)}` : "no target"), el("td", { class: f.ackBreached ? "bad" : "" }, f.ackBreached ? "breached" : "")),
        el("tr", {}, el("th", {}, "time to repair"), el("td", {}, mttr !== null ? duration(mttr) : `open ${duration(openFor)}`),
          el("td", {}, target.restoreSecs ? `target ${duration(target.restoreSecs)}` : "no target"), el("td", { class: f.restoreBreached ? "bad" : "" }, f.restoreBreached ? "breached" : "")),
        el("tr", {}, el("th", {}, "peak"), el("td", { colspan: "3" }, f.peakSeverity.toLowerCase()), ),
        f.reopened ? el("tr", {}, el("th", {}, "reopened"), el("td", { colspan: "3" }, `${f.reopened} times`)) : null)) : null;
    const notes = el("section", {}, el("h3", {}, `Notes (${d.notes.length})`),
      d.notes.length ? el("ul", { class: "notes" }, d.notes.map((n) => el("li", {}, el("b", {}, n.by), ` ${clock(n.at)}: `, n.text))) : el("p", {}, "none"),
      f ? el("button", { type: "button", onclick: async () => { const t = await askNote(`Note on fault ${f.id}`); if (t) noteFault(f.id, t); } }, "add note (n)") : null);
    const children = d.children.length ? el("section", {}, el("h3", {}, `Suppressed below it (${d.children.length})`),
      el("ul", { class: "tree" }, d.children.map((c) => el("li", { class: `sev-${c.perceivedSeverity.toLowerCase()}` },
        el("button", { type: "button", class: "linkish", onclick: () => openDetail(c.alarmId) }, `${c.device} ${c.object} ${c.condition}`),
        ` ${c.perceivedSeverity.toLowerCase()}`)))) : null;
    const automated = d.actions.length ? el("section", {}, el("h3", {}, `Automated actions (${d.actions.length})`),
      el("ul", { class: "automated" }, d.actions.map((x) => el("li", { class: `action-${x.state}` },
        el("b", {}, x.rule), ` · ${x.mode} · `, el("b", {}, x.state), x.reason ? ` — ${x.reason}` : "",
        x.decision ? el("div", {}, `${x.decision.approved ? "approved" : "rejected"} by ${x.decision.by} at ${clock(x.decision.at)}`) : null,
        x.state === "awaiting-approval" && x.expiresAt ? el("div", {}, `expires ${clock(x.expiresAt)}`) : null,
        el("ol", {}, x.steps.map((s) => el("li", {}, s.what, " ",
          el("span", { class: `outcome-${s.outcome || "none"}` }, s.outcome || (s.startedAt ? "under way" : "not started")),
          s.detail ? ` ${s.detail}` : "", s.output ? el("pre", {}, s.output) : null))),
        x.state === "awaiting-approval" ? el("p", {},
          el("button", { type: "button", onclick: () => decide(x.id, "approve", id) }, `approve action ${x.id}`), " ",
          el("button", { type: "button", onclick: () => decide(x.id, "reject", id) }, "reject")) : null)))) : null;
    const history = el("section", {}, el("h3", {}, `History (${d.history.length})`),
      el("ol", { class: "history" }, d.history.map((e) => el("li", {}, `${clock(e.at)} `, el("b", {}, e.kind.replace("_", " ")),
        ` ${e.alarm.perceivedSeverity.toLowerCase()}${e.notified ? "" : " (recorded, not notified)"}`))));
    const actions = a.alarmClearedTime ? null : el("p", { class: "actions" },
      el("button", { type: "button", onclick: () => toggleAck(id) }, a.ackState === "ACKNOWLEDGED" ? "unack (a)" : "ack (a)"), " ",
      el("button", { type: "button", onclick: () => clearWithNote(id) }, "clear… (c)"));
    // (replaceChildren would write an absent section as the text "null".)
    pane.replaceChildren(...[
      el("button", { type: "button", class: "close", onclick: closeDetail, title: "close (Esc)" }, "×"),
      el("h2", { class: `sev-${sev.toLowerCase()}` }, `${sev.toLowerCase()} · ${a.device} · ${a.condition}`),
      el("p", { class: "text" }, a.additionalText),
      actions,
      el("table", { class: "facts" }, facts.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
      fault, automated, children, notes, history].filter(Boolean));
  }
  function closeDetail() { state.detailOpen = null; $("detail").hidden = true; }

  // ---- keyboard ----
  function visibleIds() { return [...$("rows").querySelectorAll("tr[data-id]")].map((tr) => tr.dataset.id); }
  function select(id) {
    state.selected = id;
    for (const tr of $("rows").querySelectorAll("tr.selected")) tr.classList.remove("selected");
    const tr = $("rows").querySelector(`tr[data-id="${CSS.escape(String(id))}"]`);
    if (tr) { tr.classList.add("selected"); tr.scrollIntoView({ block: "nearest" }); }
  }
  function move(step) {
    const ids = visibleIds();
    if (!ids.length) return;
    const at = ids.indexOf(state.selected);
    select(ids[at < 0 ? 0 : Math.max(0, Math.min(ids.length - 1, at + step))]);
  }
  document.addEventListener("keydown", async (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (ev.key === "Escape") { if (typing) document.activeElement.blur(); closeDetail(); return; }
    if (typing || document.querySelector("dialog[open]")) return;
    const id = state.selected;
    switch (ev.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": if (id) openDetail(id); break;
      case "a": if (id) toggleAck(id); break;
      case "c": if (id) clearWithNote(id); break;
      case "n": if (id) { const d = await getJson(`/api/v1/alarms/${encodeURIComponent(id)}`); if (d.fault) { const t = await askNote(`Note on fault ${d.fault.id}`); if (t) noteFault(d.fault.id, t); } } break;
      case "/": $("q").focus(); break;
      case "g": { const g = form.elements.group; g.selectedIndex = (g.selectedIndex + 1) % g.options.length; writeUrl(); invalidate(); break; }
      case "?": $("help").showModal(); break;
      default: return;
    }
    ev.preventDefault();
  });

  // ---- sound and notifications ----
  const TONES = { CRITICAL: [880, 3], MAJOR: [660, 2], MINOR: [520, 1], WARNING: [440, 1] };
  let audio = null;
  function beep(sev) {
    const [freq, times] = TONES[sev] || [440, 1];
    audio = audio || new AudioContext();
    for (let i = 0; i < times; i++) {
      const o = audio.createOscillator(), g = audio.createGain();
      const t = audio.currentTime + i * 0.25;
      o.frequency.value = freq;
      g.gain.setValueAtTime(0.15, t);
      g.gain.exponentialRampToValueAtTime(0.001, t + 0.2);
      o.connect(g).connect(audio.destination);
      o.start(t); o.stop(t + 0.2);
    }
  }
  function alert(a) {
    if (!passes(a, filters())) return;
    if (state.soundOn && Date.now() > state.snoozeUntil) beep(a.perceivedSeverity);
    if (state.notifyOn && RANK[a.perceivedSeverity] >= RANK.MAJOR && "Notification" in window && Notification.permission === "granted") {
      new Notification(`${a.perceivedSeverity.toLowerCase()}: ${a.device}`, { body: `${a.condition}\n${a.additionalText}`, tag: `noctua-${a.alarmId}` });
    }
  }
  $("sound").addEventListener("click", () => {
    state.soundOn = !state.soundOn;
    $("sound").textContent = `sound: ${state.soundOn ? "on" : "off"}`;
    $("snooze").hidden = !state.soundOn;
    if (state.soundOn) beep("WARNING"); // a click lets the page play sound; this one says so
  });
  $("snooze").addEventListener("click", () => {
    state.snoozeUntil = Date.now() + 15 * 60 * 1000;
    $("snooze").textContent = `snoozed until ${new Date(state.snoozeUntil).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
  });
  $("notify").addEventListener("click", async () => {
    if (!state.notifyOn && "Notification" in window && Notification.permission !== "granted") await Notification.requestPermission();
    state.notifyOn = !state.notifyOn && "Notification" in window && Notification.permission === "granted";
    $("notify").textContent = `notifications: ${state.notifyOn ? "on" : "off"}`;
  });

  // ---- start ----
  $("help-open").addEventListener("click", () => $("help").showModal());
  $("login").addEventListener("click", () => {
    const d = $("login-dialog");
    d.querySelector("[name=user]").value = auth.user() || "";
    d.querySelector("[name=token]").value = "";
    d.showModal();
  });
  $("login-dialog").addEventListener("close", () => {
    const d = $("login-dialog");
    if (d.returnValue === "ok") auth.set(d.querySelector("[name=user]").value.trim(), d.querySelector("[name=token]").value);
    if (d.returnValue === "forget") auth.forget();
    d.querySelector("[name=token]").value = "";
    refreshLogin();
  });
  form.addEventListener("input", () => { writeUrl(); invalidate(); });
  form.addEventListener("submit", (ev) => ev.preventDefault());
  noctua.wireTheme($("theme"), $("wall"));
  readUrl();

  getJson("/api/v1/console").then((s) => {
    for (const d of s.devices) state.devices.set(d.name, d);
    state.highlightMs = s.highlightSecs * 1000;
    state.lingerMs = s.clearedLingerSecs * 1000;
    state.targets = s.targets;
    state.writes = s.writes;
    const sites = [...new Set(s.devices.map((d) => d.site).filter(Boolean))].sort();
    $("sites").replaceChildren(...sites.map((x) => el("option", { value: x })));
    $("devices").replaceChildren(...s.devices.map((d) => el("option", { value: d.name })));
    state.rows.clear();
    refreshLogin();
    invalidate();
  }).catch((err) => toast(`cannot read the console settings: ${err.message}`, true));
  refreshLogin();
  stream();
  state.render = render;
  state.apply = apply;
})();
