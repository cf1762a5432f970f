// What both pages share: building elements (text only, never markup: sysName, ifAlias and
// trap varbinds are attacker-controlled), durations for people, the theme, and API calls.
"use strict";

const noctua = (() => {
  const SEVERITIES = ["CRITICAL", "MAJOR", "MINOR", "WARNING"];
  const RANK = { CRITICAL: 4, MAJOR: 3, MINOR: 2, WARNING: 1, INDETERMINATE: 0, CLEARED: -1 };

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  /** "45s", "12m", "3h 05m", "2d 4h": rounded the way a person says it. */
  function duration(secs) {
    if (secs === null || secs === undefined || !isFinite(secs)) return "—";
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  }

  function since(iso, now) {
    return duration(((now || Date.now()) - Date.parse(iso)) / 1000);
  }

  /** Local wall-clock time of an RFC 3339 instant, with the date when not today. */
  function clock(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    return today ? t : `${d.toLocaleDateString()} ${t}`;
  }

  // Theme: "auto" follows prefers-color-scheme (the CSS does that by itself); a choice is kept.
  const THEMES = ["auto", "dark", "light"];
  function applyTheme(button) {
    const t = localStorage.getItem("noctua.theme") || "auto";
    if (t === "auto") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = t;
    document.documentElement.classList.toggle("wall", localStorage.getItem("noctua.wall") === "1");
    if (button) button.textContent = `theme: ${t}`;
  }
  function wireTheme(themeButton, wallButton) {
    applyTheme(themeButton);
    themeButton.addEventListener("click", () => {
      const t = localStorage.getItem("noctua.theme") || "auto";
      localStorage.setItem("noctua.theme", THEMES[(THEMES.indexOf(t) + 1) % THEMES.length]);
      applyTheme(themeButton);
    });
    if (wallButton) wallButton.addEventListener("click", () => {
      const on = localStorage.getItem("noctua.wall") === "1";
      localStorage.setItem("noctua.wall", on ? "0" : "1");
      applyTheme(themeButton);
    });
  }

  // The token lives in this tab's sessionStorage only: never in a URL, a cookie or a log.
  const auth = {
    token: () => sessionStorage.getItem("noctua.token"),
    user: () => sessionStorage.getItem("noctua.user"),
    set(user, token) {
      sessionStorage.setItem("noctua.user", user);
      sessionStorage.setItem("noctua.token", token);
    },
    forget() {
      sessionStorage.removeItem("noctua.token");
    },
  };

  /** GET a JSON document; throws an Error with the API's own message. */
  async function getJson(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    return answer(r);
  }

  /** POST JSON with the token; throws an Error with the API's own message. */
  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${auth.token() || ""}` },
      body: JSON.stringify(body),
    });
    return answer(r);
  }

  async function answer(r) {
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    return body;
  }

  return { SEVERITIES, RANK, el, duration, since, clock, wireTheme, auth, getJson, post };
})();
