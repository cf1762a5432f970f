// The MTTR dashboard: MTTA/MTTR by severity, category and site over 24 h, 7 d and 30 d with
// the tier targets, open faults by age, target breaches, and alarms per hour. Drawn with
// uPlot from GET /api/v1/mttr and /api/v1/faults; refreshed every minute (reports change
// slowly, and a report costs a scan of the fault records).
"use strict";

(() => {
  const { el, duration, getJson } = noctua;
  const $ = (id) => document.getElementById(id);
  const charts = new Map();
  /** The log axis starts at 6 s (0.1 min); shorter durations are drawn there. */
  const LOG_FLOOR = 0.1;
  let windowName = "24h";
  let targets = {};
  window.noctuaDashboard = { ready: false };

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function minutes(stats) { return stats ? Math.round((stats.median_secs / 60) * 10) / 10 : null; }
  function width(id) { return Math.max(320, $(id).clientWidth || 520); }

  /** Bars over named groups (one or two series); `extra` adds point-only series (targets). With `log`,
   *  the y axis is logarithmic from 0.1: durations run from seconds to the days of a minor
   *  tier's restore target, and a linear axis would flatten the short ones. */
  function bars(id, groups, series, extra, log) {
    const xs = groups.map((_, i) => i);
    const floor = (v) => (v === null || !log ? v : Math.max(v, LOG_FLOOR));
    const data = [xs, ...series.map((s) => s.values.map(floor)), ...(extra || []).map((s) => s.values.map(floor))];
    const n = series.length;
    const y = log
      ? { distr: 3, log: 10, range: (u, lo, hi) => [LOG_FLOOR, Math.max(10, (hi || 1) * 2)] }
      : { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] };
    const opts = {
      width: width(id), height: 240,
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, groups.length - 0.5)] }, y },
      axes: [
        { stroke: css("--fg"), grid: { show: false }, values: (u, splits) => splits.map((v) => (Number.isInteger(v) && groups[v] !== undefined ? groups[v] : "")), splits: () => xs },
        { stroke: css("--fg"), grid: { stroke: css("--line") } },
      ],
      series: [
        { label: "group", value: (u, v) => (v === null || groups[v] === undefined ? "—" : groups[v]) },
        ...series.map((s, i) => ({
          label: s.label, fill: s.color, stroke: s.color, width: 0, fillTo: () => (log ? LOG_FLOOR : 0),
          // Two series side by side: the first left of its tick, the second right of it.
          paths: uPlot.paths.bars({ size: [0.8 / n, 80], align: n === 1 ? 0 : i === 0 ? -1 : 1 }),
          points: { show: false }, value: (u, v) => (v === null ? "—" : `${v} min`),
        })),
        ...(extra || []).map((s) => ({
          label: s.label, stroke: s.color, width: 0, paths: () => null,
          points: { show: true, size: 11, stroke: s.color, fill: s.color, width: 2 }, value: (u, v) => (v === null ? "—" : `${v} min`),
        })),
      ],
      legend: { show: true },
    };
    const old = charts.get(id);
    if (old) old.destroy();
    charts.set(id, new uPlot(opts, data, $(id)));
  }

  function table(rows, head) {
    return el("table", {}, el("tr", {}, head.map((h) => el("th", {}, h))), rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))));
  }

  function mttaMttr(id, report, withTargets) {
    const rows = report.rows;
    const groups = rows.map((r) => r.group);
    const series = [
      { label: "MTTA", color: css("--warning"), values: rows.map((r) => minutes(r.mtta)) },
      { label: "MTTR", color: css("--major"), values: rows.map((r) => minutes(r.mttr)) },
    ];
    const extra = withTargets ? [
      { label: "ack target", color: css("--cleared"), values: groups.map((g) => { const t = targets[g]; return t && t.ackSecs ? t.ackSecs / 60 : null; }) },
      { label: "restore target", color: css("--critical"), values: groups.map((g) => { const t = targets[g]; return t && t.restoreSecs ? t.restoreSecs / 60 : null; }) },
    ] : [];
    if (rows.length) bars(id, groups, series, extra, true);
    else { const old = charts.get(id); if (old) { old.destroy(); charts.delete(id); } $(id).replaceChildren(el("p", { class: "legend-note" }, `no faults raised in the last ${report.window}`)); }
    const all = [...rows, report.total];
    $(`${id}-table`).replaceChildren(table(all.map((r) => [r.group, String(r.faults), String(r.open),
      r.mtta ? duration(r.mtta.median_secs) : "—", r.mtta ? duration(r.mtta.p90_secs) : "—",
      r.mttr ? duration(r.mttr.median_secs) : "—", r.mttr ? duration(r.mttr.p90_secs) : "—"]),
    ["group", "faults", "open", "MTTA median", "MTTA p90", "MTTR median", "MTTR p90"]));
  }

  const AGES = [["< 15 m", 900], ["15–30 m", 1800], ["30 m–1 h", 3600], ["1–4 h", 14400], ["4–24 h", 86400], ["> 1 d", Infinity]];
  function ages(open) {
    const now = Date.now();
    const counts = AGES.map(() => 0);
    for (const f of open) {
      const age = (now - Date.parse(f.raisedAt)) / 1000;
      counts[AGES.findIndex(([, upto]) => age < upto)]++;
    }
    bars("ages", AGES.map(([l]) => l), [{ label: "open faults", color: css("--major"), values: counts }]);
    charts.get("ages").series[1].value = (u, v) => (v === null ? "—" : String(v));
    const oldest = open.reduce((o, f) => (!o || f.raisedAt < o.raisedAt ? f : o), null);
    $("ages-note").textContent = oldest ? `${open.length} open; oldest: ${oldest.device} ${oldest.condition}, ${duration((now - Date.parse(oldest.raisedAt)) / 1000)}` : "no open faults";
  }

  function perHour(recent) {
    const hour = 3600;
    const end = Math.ceil(Date.now() / 1000 / hour) * hour;
    const xs = [], counts = [];
    for (let t = end - 24 * hour; t < end; t += hour) { xs.push(t); counts.push(0); }
    for (const f of recent) {
      const i = Math.floor((Date.parse(f.raisedAt) / 1000 - (end - 24 * hour)) / hour);
      if (i >= 0 && i < 24) counts[i]++;
    }
    const old = charts.get("per-hour");
    if (old) old.destroy();
    charts.set("per-hour", new uPlot({
      width: width("per-hour"), height: 220,
      axes: [{ stroke: css("--fg"), grid: { show: false } }, { stroke: css("--fg"), grid: { stroke: css("--line") } }],
      scales: { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] } },
      series: [{}, { label: "alarms", fill: css("--warning"), stroke: css("--warning"), paths: uPlot.paths.bars({ size: [0.8, 60], align: 1 }), points: { show: false } }],
    }, [xs, counts], $("per-hour")));
  }

  function breaches(report) {
    const rows = [...report.rows, report.total];
    $("breaches").replaceChildren(table(rows.map((r) => [r.group, String(r.faults), String(r.ack_breaches), String(r.restore_breaches),
      r.faults ? `${Math.round((100 * (r.faults - Math.max(r.ack_breaches, r.restore_breaches))) / r.faults)} %` : "—"]),
    ["severity", "faults", "ack target missed", "restore target missed", "within targets"]));
  }

  async function refresh() {
    try {
      const [settings, sev, cat, site, open, recent] = await Promise.all([
        getJson("/api/v1/console"),
        getJson("/api/v1/mttr?by=severity"), getJson("/api/v1/mttr?by=category"), getJson("/api/v1/mttr?by=site"),
        getJson("/api/v1/faults?open=true&limit=5000"), getJson("/api/v1/faults?since=24h&limit=5000"),
      ]);
      targets = settings.targets;
      const pick = (reports) => reports.find((r) => r.window === windowName) || reports[0];
      mttaMttr("by-severity", pick(sev), true);
      mttaMttr("by-category", pick(cat), false);
      mttaMttr("by-site", pick(site), false);
      breaches(pick(sev));
      ages(open.items);
      perHour(recent.items);
      $("updated").textContent = `updated ${new Date().toLocaleTimeString([], { hourCycle: "h23" })}`;
      window.noctuaDashboard.ready = true;
    } catch (err) {
      const t = $("toast");
      t.textContent = `cannot load the reports: ${err.message}`;
      t.className = "toast bad";
      t.hidden = false;
    }
  }

  for (const b of $("windows").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      windowName = b.dataset.window;
      for (const o of $("windows").querySelectorAll("button")) o.setAttribute("aria-pressed", String(o === b));
      refresh();
    });
  }
  noctua.wireTheme($("theme"), $("wall"));
  $("theme").addEventListener("click", refresh); // the charts take their colours from the theme
  refresh();
  setInterval(refresh, 60000);
})();
