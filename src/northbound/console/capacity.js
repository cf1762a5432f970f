// The capacity page: every link direction's p95, busy hour, growth and days to 80/90/95 %
// (GET /api/v1/capacity), and for the links nearest to trouble a chart of each day's busy hour
// with the forecast and its 80 % interval (GET /api/v1/capacity/chart), drawn with uPlot.
// Refreshed every 5 minutes: the figures change once a day per link, and with the saved state.
"use strict";

(() => {
  const { el, getJson } = noctua;
  const $ = (id) => document.getElementById(id);
  /** Charts drawn: the links soonest to 90 % (the table lists every link). */
  const CHARTED = 12;
  const charts = [];
  window.noctuaCapacity = { ready: false };

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  const pct = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} %`);
  const growth = (g) => (g === null || g === undefined ? "–" : Math.abs(g) < 0.05 ? "0.0 %" : `${g > 0 ? "+" : ""}${g.toFixed(1)} %`);
  const known = (r) => r.growthPerWeek !== null && r.growthPerWeek !== undefined;
  const days = (r, d) => (!known(r) ? "–" : d === 0 ? "now" : d === null || d === undefined ? "> 1 y" : `${d} d`);
  const name = (r) => `${r.device} ${r.object} ${r.direction}`;
  /** How soon a link reaches 90 %, for its row's colour. */
  function urgency(r) {
    const d = r.daysTo90;
    if (!known(r) || d === null || d === undefined) return "";
    return d <= 1 ? "sev-major" : d <= 7 ? "sev-minor" : d <= 30 ? "sev-warning" : "";
  }

  function table(rows) {
    if (rows.length === 0) return el("p", { class: "legend-note" }, "no links with utilisation yet");
    const head = ["device", "link", "dir", "site", "p95 7 d", "p95 30 d", "busy hour 7 d", "busy hour 30 d", "growth / week", "to 80 %", "to 90 %", "to 95 %", "history"];
    return el("table", { class: "capacity" },
      el("tr", {}, head.map((h) => el("th", {}, h))),
      rows.map((r) => el("tr", { class: urgency(r) }, [
        el("td", { class: "link" }, r.device), el("td", {}, r.object), el("td", {}, r.direction), el("td", {}, r.site || "–"),
        el("td", {}, pct(r.p95Week)), el("td", {}, pct(r.p95Month)), el("td", {}, pct(r.busyHourWeek)), el("td", {}, pct(r.busyHourMonth)),
        el("td", {}, growth(r.growthPerWeek)), el("td", {}, days(r, r.daysTo80)), el("td", {}, days(r, r.daysTo90)), el("td", {}, days(r, r.daysTo95)),
        el("td", {}, known(r) ? `${r.days} d` : `${r.days} d (gathering)`),
      ])));
  }

  /** One link's chart: busy hours as points and line, the forecast dashed inside its band,
   *  the 80/90/95 % levels as flat lines. */
  function draw(box, c) {
    const secs = (iso) => Date.parse(iso) / 1000;
    const xs = [...c.history.map((h) => secs(h[0])), ...c.forecast.map((f) => secs(f[0]))];
    const n = c.history.length;
    const pad = (vals, before) => (before ? [...vals, ...c.forecast.map(() => null)] : [...c.history.map(() => null), ...vals]);
    const busy = pad(c.history.map((h) => h[1]), true);
    const low = pad(c.forecast.map((f) => f[1]), false);
    const mid = pad(c.forecast.map((f) => f[2]), false);
    const high = pad(c.forecast.map((f) => f[3]), false);
    if (n > 0 && c.forecast.length > 0) { mid[n - 1] = busy[n - 1]; } // the forecast starts where the history ends
    const levels = c.levels.map((l) => xs.map(() => l));
    const colours = [css("--minor"), css("--major"), css("--critical")];
    const opts = {
      width: Math.max(320, box.clientWidth || 480), height: 220,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(100, hi || 0)] } },
      axes: [{ stroke: css("--fg"), grid: { stroke: css("--line") } }, { stroke: css("--fg"), grid: { stroke: css("--line") }, values: (u, s) => s.map((v) => `${v} %`) }],
      series: [
        {},
        { label: "busy hour", stroke: css("--fg"), width: 2, points: { show: true, size: 4 }, value: (u, v) => pct(v) },
        { label: "forecast", stroke: css("--warning"), width: 2, dash: [6, 4], points: { show: false }, value: (u, v) => pct(v) },
        { label: "80 % interval low", stroke: css("--line"), width: 1, points: { show: false }, value: (u, v) => pct(v) },
        { label: "high", stroke: css("--line"), width: 1, points: { show: false }, value: (u, v) => pct(v) },
        ...c.levels.map((l, i) => ({ label: `${l} %`, stroke: colours[i], width: 1, points: { show: false }, value: () => `${l} %` })),
      ],
      bands: [{ series: [4, 3], fill: "rgba(30, 136, 229, 0.15)" }],
      legend: { show: true },
    };
    charts.push(new uPlot(opts, [xs, busy, mid, low, high, ...levels], box));
  }

  async function refresh() {
    try {
      const rows = await getJson("/api/v1/capacity?by=device");
      // Soonest to 90 % first across all devices, for the table and for which links get charts.
      const soon = (r) => (known(r) && r.daysTo90 !== null && r.daysTo90 !== undefined ? r.daysTo90 : Infinity);
      rows.sort((a, b) => soon(a) - soon(b) || name(a).localeCompare(name(b)));
      $("links").replaceChildren(table(rows));
      const picked = rows.slice(0, CHARTED);
      const found = await Promise.all(picked.map((r) =>
        getJson(`/api/v1/capacity/chart?device=${encodeURIComponent(r.device)}&object=${encodeURIComponent(r.object)}&direction=${r.direction}`).catch(() => null)));
      while (charts.length) charts.pop().destroy();
      const cards = picked.map((r, i) => {
        const box = el("div", { class: "chart" });
        const soonest = days(r, r.daysTo90);
        const title = `${name(r)}: ${soonest === "now" ? "at 90 % now" : `90 % in ${soonest}`}, growing ${growth(r.growthPerWeek)} a week`;
        return { card: el("section", { class: "card" }, el("h2", {}, title), box), box, chart: found[i] };
      });
      $("charts").replaceChildren(...cards.map((c) => c.card));
      for (const c of cards) if (c.chart) draw(c.box, c.chart);
      if (rows.length > CHARTED) $("charts").append(el("p", { class: "legend-note" }, `${CHARTED} of ${rows.length} link directions charted; the table has them all`));
      $("updated").textContent = `updated ${new Date().toLocaleTimeString([], { hourCycle: "h23" })}`;
      window.noctuaCapacity.ready = true;
    } catch (err) {
      const t = $("toast");
      t.textContent = `cannot load capacity: ${err.message}`;
      t.className = "toast bad";
      t.hidden = false;
    }
  }

  noctua.wireTheme($("theme"), $("wall"));
  $("theme").addEventListener("click", refresh); // the charts take their colours from the theme
  refresh();
  setInterval(refresh, 300000);
})();
