// Spark Connect Router ops dashboard: plain JavaScript, charts drawn as SVG, no external assets.
// Pages: /  (servers, decisions, apps), /apps/{app_id}, /runs/{run_id}. Data: /api/v1/dashboard/...
"use strict";

(function () {
  const ROOT = document.body.dataset.root || "";
  const TOKEN_KEY = "spark-router.api-token";
  const COLORS = { connect: "#2563eb", standalone: "#d97706", fallback: "#dc2626", queued: "#6b7280" };
  const WINDOWS = { "24h": { days: 1, bucket: "hour" }, "7d": { days: 7, bucket: "hour" },
                    "30d": { days: 30, bucket: "day" } };
  const REFRESH_MS = 30000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const main = document.getElementById("main");
  let refreshTimer = null;

  // ------------------------------------------------------------------------------------------- DOM

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  // Links go to this dashboard's own pages or to http(s) URLs, nothing else: a URL from a heartbeat could say
  // javascript:, next to the API token this page keeps.
  const SAFE_HREF = /^(https?:\/\/|[/?#])/i;
  const safeHref = (url) => typeof url === "string" && SAFE_HREF.test(url);

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "href" && !safeHref(value)) continue;
      if (key === "text") node.textContent = value;
      // Through the CSSOM: the page's Content-Security-Policy allows no inline style attribute.
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  // ------------------------------------------------------------------------------------ formatting

  function num(value) {
    return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
  }

  function bytes(value) {
    if (value === null || value === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = Number(value), i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return i === 0 ? `${v.toFixed(0)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
  }

  function millis(value) {
    if (value === null || value === undefined) return "–";
    return seconds(Number(value) / 1000);
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    const v = Number(value);
    if (v < 1) return `${Math.round(v * 1000)} ms`;
    if (v < 60) return `${v.toFixed(v < 10 ? 1 : 0)} s`;
    if (v < 3600) return `${Math.floor(v / 60)} min ${Math.round(v % 60)} s`;
    if (v < 86400) return `${Math.floor(v / 3600)} h ${Math.round((v % 3600) / 60)} min`;
    return `${Math.floor(v / 86400)} d ${Math.round((v % 86400) / 3600)} h`;
  }

  // What was predicted for the mode a run went to, and (once it ended) what it did, with the errors.
  function predictedCell(predicted, actual) {
    if (!predicted) return h("span", { class: "muted", text: "–" });
    const guess = `${seconds(predicted.wall_s)} · ${num(Math.round(predicted.core_s))} core-s`;
    const title = `±${Math.round(predicted.uncertainty * 100)} %, ${predicted.basis}`;
    if (!actual || actual.status !== "succeeded") return h("span", { class: "nowrap", title, text: guess });
    const err = (value) => value === null || value === undefined ? "" : ` (${value > 0 ? "+" : ""}${Math.round(value)} %)`;
    const core = actual.core_s === null || actual.core_s === undefined ? "–" : num(Math.round(actual.core_s));
    return h("span", { class: "nowrap", title, "data-testid": "prediction" }, guess,
      h("div", { class: "muted small", text: `actual ${seconds(actual.wall_s)} · ${core} core-s` +
        ` · error${err(actual.wall_error_pct)}${err(actual.core_s_error_pct)}` }));
  }

  function pct(value) {
    return value === null || value === undefined ? "–" : `${(value * 100).toFixed(value < 0.1 ? 1 : 0)} %`;
  }

  function when(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    const year = date.getFullYear() === new Date().getFullYear() ? undefined : "numeric";
    return date.toLocaleString(undefined, { year, month: "short", day: "numeric",
                                            hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function ago(iso) {
    if (!iso) return "never";
    const secs = (Date.now() - new Date(iso).getTime()) / 1000;
    return secs < 0 ? "just now" : `${seconds(secs)} ago`;
  }

  function time(iso, relative) {  // a <time> with the other form in its tooltip
    if (!iso) return h("span", { class: "muted", text: "–" });
    return h("time", { datetime: iso, title: relative ? when(iso) + " (" + iso + ")" : ago(iso) },
      relative ? ago(iso) : when(iso));
  }

  function metricValue(metric, value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "string") return value;
    const name = metric || "";
    if (name.endsWith("_bytes") || name.endsWith("_memory")) return bytes(value);
    if (name.endsWith("_ms")) return millis(value);
    if (name.endsWith("_s")) return seconds(value);
    return num(value);
  }

  const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;
  const badge = (text, kind) => h("span", { class: `badge ${kind || text || ""}`, text: text || "–" });
  const appLink = (id) => h("a", { href: `${ROOT}/apps/${encodeURIComponent(id)}`, text: id });
  const runLink = (id) => h("a", { href: `${ROOT}/runs/${encodeURIComponent(id)}`, class: "mono", text: id });
  const kind = (d) => (d && d.rule === "fallback" ? "fallback" : d && d.mode);

  // ------------------------------------------------------------------------------------------ data

  class AuthError extends Error {}

  async function api(path, params) {
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    const token = localStorage.getItem(TOKEN_KEY);
    const response = await fetch(`${ROOT}/api/v1/dashboard${path}${query}`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (response.status === 401) throw new AuthError(token ? "The saved token was refused." : "");
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      if (Array.isArray(detail)) {  // a 422: each refused value, where it is and why
        detail = detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      }
      const error = new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function showToken(message) {
    const panel = document.getElementById("token-panel");
    panel.hidden = false;
    if (message) document.getElementById("token-message").textContent = message;
    document.getElementById("token-input").focus();
  }

  function setupToken() {
    document.getElementById("token-button").addEventListener("click", () => {
      const panel = document.getElementById("token-panel");
      panel.hidden = !panel.hidden;
    });
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = document.getElementById("token-input").value.trim();
      if (value) localStorage.setItem(TOKEN_KEY, value);
      document.getElementById("token-input").value = "";
      document.getElementById("token-panel").hidden = true;
      route();
    });
    document.getElementById("token-forget").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      document.getElementById("token-panel").hidden = true;
      route();
    });
  }

  // ---------------------------------------------------------------------------------------- charts

  // The smallest "nice" bound (1, 1.2, 1.5, 2, ... x 10^n of the unit) at or above the value; units make
  // byte axes step in KiB/MiB/GiB and time axes in s/min/h.
  function niceIn(value, units) {
    const unit = units.filter((u) => value >= u).pop() || units[0];
    return niceMax(value / unit) * unit;
  }
  const BYTE_UNITS = [1, 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4, 1024 ** 5];
  const MS_UNITS = [1, 1000, 60000, 3600000, 86400000];

  function shortMillis(value) {
    const v = Number(value);
    const trim = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 1).replace(/\.?0+$/, ""));
    if (v === 0) return "0";
    if (v < 1000) return `${trim(v)} ms`;
    if (v < 60000) return `${trim(v / 1000)} s`;
    if (v < 3600000) return `${trim(v / 60000)} min`;
    return `${trim(v / 3600000)} h`;
  }

  function shortBytes(value) {
    return Number(value) === 0 ? "0" : bytes(value).replace(".00 ", " ").replace(/(\.\d)0 /, "$1 ");
  }

  function chartWidth(columns) {
    const inner = Math.max(480, main.clientWidth - 48);
    return columns === 2 && inner >= 1060 ? Math.floor((inner - 12) / 2) - 26 : inner - 26;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
      if (step * power >= value) return step * power;
    }
    return 10 * power;
  }

  function frame(width, height, margin, yMax, yFormat, ticks) {
    const plotH = height - margin.top - margin.bottom;
    const g = s("g", {});
    for (let i = 0; i <= ticks; i += 1) {
      const v = (yMax * i) / ticks;
      const y = margin.top + plotH - (plotH * i) / ticks;
      g.append(s("line", { class: i === 0 ? "axis" : "grid", x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
      g.append(s("text", { x: margin.left - 8, y: y + 4, "text-anchor": "end" }, yFormat(v)));
    }
    return g;
  }

  // Stacked bars: one per bucket, stacked by the keys (connect, standalone, fallback, queued).
  function barChart(series, keys, { bucket }) {
    const width = chartWidth(1), height = 230, margin = { top: 12, right: 12, bottom: 28, left: 48 };
    const plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom;
    const totals = series.map((row) => keys.reduce((sum, key) => sum + row[key], 0));
    let yMax = niceMax(Math.max(4, ...totals));
    if (!Number.isInteger(yMax / 4)) yMax = 4 * Math.ceil(yMax / 4);  // whole counts on every grid line
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                           "data-testid": "decisions-chart", "aria-label": "Decisions over time by mode" });
    svg.append(frame(width, height, margin, yMax, (v) => num(Math.round(v)), 4));
    const slot = plotW / Math.max(series.length, 1);
    const barW = Math.max(1, Math.min(28, slot * 0.75));
    const labelEvery = Math.max(1, Math.ceil(series.length / 12));
    series.forEach((row, i) => {
      const x = margin.left + slot * i + (slot - barW) / 2;
      let y = margin.top + plotH;
      const date = new Date(row.start);
      const label = bucket === "hour"
        ? date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })
        : date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
      const group = s("g", {}, s("title", {}, `${label}: ` + keys.map((k) => `${row[k]} ${k}`).join(", ")));
      group.append(s("rect", { x: margin.left + slot * i, y: margin.top, width: slot, height: plotH, fill: "transparent" }));
      for (const key of keys) {
        if (!row[key]) continue;
        const barH = (plotH * row[key]) / yMax;
        y -= barH;
        group.append(s("rect", { x, y, width: barW, height: barH, fill: COLORS[key], "data-key": key }));
      }
      svg.append(group);
      if (i % labelEvery === 0) {
        const short = bucket === "hour"
          ? (date.getHours() === 0 || i === 0
            ? date.toLocaleDateString(undefined, { month: "short", day: "numeric" })
            : date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }))
          : date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
        svg.append(s("text", { x: margin.left + slot * i + slot / 2, y: height - 8, "text-anchor": "middle" }, short));
      }
    });
    return svg;
  }

  // Lines with a point per run (oldest left), dashed policy thresholds, a strip of run modes under the axis.
  function lineChart(runs, lines, { yFormat, tickFormat, units, thresholds, testid, label }) {
    const width = chartWidth(2), height = 250, margin = { top: 14, right: 16, bottom: 34, left: 72 };
    const plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom;
    const dataMax = maxOf(runs, lines.map((line) => line.key));
    const shown = (thresholds || []).filter((t) => onChart(t.value, dataMax));
    const yMax = niceIn(Math.max(dataMax, ...shown.map((t) => t.value)) * 1.05 || 1, units);
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                           "data-testid": testid, "aria-label": label });
    svg.append(frame(width, height, margin, yMax, tickFormat, 4));
    const xOf = (i) => margin.left + (runs.length === 1 ? plotW / 2 : (plotW * i) / (runs.length - 1));
    const yOf = (v) => margin.top + plotH - (plotH * v) / yMax;
    for (const t of shown) {
      svg.append(s("line", { class: "threshold", x1: margin.left, x2: width - margin.right, y1: yOf(t.value), y2: yOf(t.value) }));
      svg.append(s("text", { x: width - margin.right - 4, y: yOf(t.value) - 5, "text-anchor": "end" }, t.label));
    }
    for (const line of lines) {
      const points = runs.map((run, i) => `${xOf(i).toFixed(1)},${yOf(run[line.key] || 0).toFixed(1)}`);
      if (runs.length > 1) {
        svg.append(s("polyline", { points: points.join(" "), fill: "none", stroke: line.color, "stroke-width": 2,
                                   "stroke-linejoin": "round" }));
      }
    }
    runs.forEach((run, i) => {
      svg.append(s("rect", { x: xOf(i) - 5, y: height - margin.bottom + 6, width: 10, height: 5, rx: 1,
                             fill: COLORS[kind(run.decision) || run.mode] || "#9ca3af" }));
      for (const line of lines) {
        const tip = `${run.run_id} (${run.mode}, ${run.status})\n${when(run.created_at)}\n${line.name}: ${yFormat(run[line.key] || 0)}`;
        svg.append(s("a", { href: `${ROOT}/runs/${encodeURIComponent(run.run_id)}` },
          s("circle", { cx: xOf(i), cy: yOf(run[line.key] || 0), r: 4, fill: line.color, "data-run": run.run_id },
            s("title", {}, tip))));
      }
    });
    const labelEvery = Math.max(1, Math.ceil(runs.length / Math.max(2, Math.floor(width / 130))));
    runs.forEach((run, i) => {
      const last = i === runs.length - 1;
      if ((i % labelEvery === 0 && runs.length - 1 - i >= labelEvery / 2) || last) {
        const date = new Date(run.created_at);
        const anchor = runs.length === 1 ? "middle" : i === 0 ? "start" : last ? "end" : "middle";
        svg.append(s("text", { x: xOf(i), y: height - 6, "text-anchor": anchor },
          date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" })));
      }
    });
    return svg;
  }

  // Executors a Connect server held over time (the most per step), its dynamic-allocation ceiling dashed.
  // A gap in the heartbeats is a gap in the line.
  function executorChart(points, { since, until, step_s: step }) {
    const width = 380, height = 120, margin = { top: 10, right: 10, bottom: 20, left: 30 };
    const plotW = width - margin.left - margin.right, plotH = height - margin.top - margin.bottom;
    const t0 = new Date(since).getTime(), t1 = new Date(until).getTime();
    const peak = Math.max(1, ...points.map((p) => Math.max(p.executors || 0, p.max_executors || 0)));
    let yMax = niceMax(peak);
    if (!Number.isInteger(yMax / 2)) yMax = 2 * Math.ceil(yMax / 2);  // whole executors on the grid lines
    const xOf = (ms) => margin.left + (plotW * Math.min(Math.max(ms - t0, 0), t1 - t0)) / Math.max(t1 - t0, 1);
    const yOf = (v) => margin.top + plotH - (plotH * v) / yMax;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
                           "data-testid": "executors-chart", "aria-label": "Executors over time" });
    svg.append(frame(width, height, margin, yMax, (v) => num(Math.round(v)), 2));
    const runs = [];  // stretches of consecutive steps
    points.forEach((p, i) => {
      const at = new Date(p.at).getTime();
      if (!i || at - new Date(points[i - 1].at).getTime() > 2 * step * 1000) runs.push([]);
      runs[runs.length - 1].push({ ...p, ms: at });
    });
    for (const stretch of runs) {
      const line = (key) => stretch.flatMap((p) => [`${xOf(p.ms).toFixed(1)},${yOf(p[key] || 0).toFixed(1)}`,
        `${xOf(p.ms + step * 1000).toFixed(1)},${yOf(p[key] || 0).toFixed(1)}`]).join(" ");
      if (stretch.some((p) => p.max_executors !== null)) {
        svg.append(s("polyline", { class: "threshold", points: line("max_executors"), fill: "none" }));
      }
      svg.append(s("polyline", { points: line("executors"), fill: "none", stroke: COLORS.connect, "stroke-width": 2,
                                 "stroke-linejoin": "round", "data-testid": "executors-line" }));
      for (const p of stretch) {
        svg.append(s("rect", { x: xOf(p.ms), y: margin.top, width: Math.max(1, xOf(p.ms + step * 1000) - xOf(p.ms)),
                               height: plotH, fill: "transparent", "data-executors": p.executors },
          s("title", {}, `${when(p.at)}: ${plural(p.executors, "executor")}, ${plural(p.cores, "core")}` +
            (p.max_executors !== null ? ` (ceiling ${num(p.max_executors)})` : ""))));
      }
    }
    for (const [ms, anchor] of [[t0, "start"], [t1, "end"]]) {
      svg.append(s("text", { x: xOf(ms), y: height - 5, "text-anchor": anchor },
        new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })));
    }
    return svg;
  }

  const maxOf = (runs, keys) => Math.max(0, ...runs.flatMap((run) => keys.map((key) => run[key] || 0)));
  // A threshold far above the data would flatten it: it is drawn only when within reach.
  const onChart = (threshold, dataMax) => threshold <= dataMax * 2.5;

  function legend(items) {
    return h("span", { class: "legend" }, items.map(([name, color, dashed]) =>
      h("span", {}, h("i", { class: dashed ? "dash" : "", style: dashed ? "" : `background:${color}` }), name)));
  }

  // ----------------------------------------------------------------------------------------- pages

  function section(title, extra, ...content) {
    return h("section", { class: "section" },
      h("div", { class: "section-head" }, h("h2", { text: title }), extra), ...content);
  }

  function table(columns, rows, { testid, empty, reason } = {}) {
    if (!rows.length) return h("div", { class: "table-wrap" }, h("div", { class: "empty", text: empty || "Nothing yet." }));
    const body = h("tbody", {});
    for (const row of rows) {
      const why = reason ? reason(row) : null;
      body.append(h("tr", { class: why ? "has-reason" : null, "data-testid": testid ? `${testid}-row` : null },
        columns.map((c) => h("td", { class: c.cls || null }, c.cell(row)))));
      if (why) body.append(h("tr", { class: "reason-row" }, h("td", { colspan: columns.length }, why)));
    }
    return h("div", { class: "table-wrap" }, h("table", { "data-testid": testid },
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls || null, text: c.title })))), body));
  }

  function tile(label, value, detail, alert) {
    return h("div", { class: `card tile${alert ? " alert" : ""}` },
      h("div", { class: "label", text: label }), h("div", { class: "value", text: value }),
      h("div", { class: "detail", text: detail || "" }));
  }

  // A Connect server's place in the pool: the predicted cores in flight against its capacity, as placement sees it.
  function loadCell(pool) {
    if (!pool) return h("span", { class: "muted", "data-testid": "load", text: "not in the pool: reports no Connect URL" });
    const share = pool.capacity_cores > 0 ? Math.min(1, pool.in_flight_cores / pool.capacity_cores) : 1;
    return h("span", { "data-testid": "load", title: `capacity: ${pool.capacity_source}` },
      h("span", { class: "load-bar" }, h("span", { class: share >= 1 ? "full" : null, style: `width:${Math.round(share * 100)}%` })),
      ` ${pool.in_flight_cores.toFixed(1)} of ${num(pool.capacity_cores)} cores in flight · ${plural(pool.in_flight_runs, "run")}` +
      (pool.max_runs ? ` of ${num(pool.max_runs)}` : "") + " · ",
      h("strong", { text: `${pool.free_cores.toFixed(1)} free` }));
  }

  function serverCard(server, executors, poolSize) {
    const beat = server.heartbeat || {};
    const points = (executors.servers || {})[server.server_id] || [];
    const restart = server.last_restart;
    const status = server.status;
    const pool = server.pool;
    const drainedTo = poolSize > 1 ? "new runs go to the other servers" : "new runs go standalone";
    const rows = [
      ["Load", loadCell(pool)],
      ["Last heartbeat", server.last_heartbeat_at
        ? h("span", {}, time(server.last_heartbeat_at, true),
          h("span", { class: "muted" }, ` (unhealthy after ${seconds(server.heartbeat_timeout_s)})`))
        : h("span", { class: "muted", text: "never" })],
      ["Uptime", server.uptime_s !== null ? h("span", { title: `started ${when(server.started_at)}`, text: seconds(server.uptime_s) })
        : h("span", { class: "muted", text: server.started_at ? `down (started ${when(server.started_at)})` : "–" })],
      ["Draining", server.draining ? h("strong", { text: `yes: ${drainedTo}` }) : "no"],
      ["Work", [plural(beat.active_sessions, "session"), plural(beat.active_operations, "operation"),
        plural(beat.running_jobs, "job")].join(" · ")],
      ["Executors", h("span", { "data-testid": "executors" }, beat.executors === undefined ? "–"
        : `${plural(beat.executors, "executor")} · ${plural(beat.executor_cores, "core")}` +
          (beat.max_executors !== null && beat.max_executors !== undefined ? ` · ceiling ${num(beat.max_executors)}` : ""))],
      ["Listener", h("span", { "data-testid": "listener" },
        `queue ${num(beat.queue_size)} · spool ${num(beat.spool_files)} files (${bytes(beat.spool_bytes)}) · dropped ${num(beat.dropped_records)}`)],
      ["Last restart", restart
        ? h("span", { "data-testid": "last-restart" }, badge(restart.outcome), " ", time(restart.requested_at, true),
          h("span", { class: "muted" }, ` · waited ${seconds(restart.waited_s)}`),
          restart.message ? h("div", { class: "muted small", text: restart.message }) : null)
        : h("span", { class: "muted", text: "none recorded" })],
    ];
    const connectUrl = (pool && pool.connect_url) || server.connect_url;
    if (connectUrl) rows.push(["Connect URL", h("span", { class: "mono", text: connectUrl })]);
    if (server.ui_url) {
      rows.push(["Spark UI", safeHref(server.ui_url) && /^https?:/i.test(server.ui_url)
        ? h("a", { href: server.ui_url, "data-testid": "spark-ui", text: server.ui_url })
        : h("span", { class: "muted", "data-testid": "spark-ui", text: `${server.ui_url} (not an http(s) URL: no link)` })]);
    }
    return h("div", { class: `card server ${status}`, "data-testid": "server", "data-status": status,
                      "data-server-id": server.server_id },
      h("div", { class: "server-head" },
        h("span", { class: `pill ${status}`, "data-testid": "server-status", text: status.toUpperCase() }),
        h("h3", { class: "mono", text: server.server_id }),
        pool && pool.default && poolSize > 1 ? badge("default", "pinned") : null,
        h("span", { class: "muted", text: `${server.kind}${server.spark_version ? " · Spark " + server.spark_version : ""}` })),
      h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
      h("div", { class: "executors" },
        h("div", { class: "chart-title" }, h("span", { class: "muted small", text: "Executors, last hour" }),
          legend([["held", COLORS.connect], ["dynamic-allocation ceiling", null, true]])),
        points.length ? executorChart(points, executors)
          : h("div", { class: "muted small", text: "No heartbeat in the last hour." })));
  }

  // Where the window's decisions sent their runs: each Connect server of the pool, standalone, fallback reruns,
  // and runs still waiting in the admission queue (or cancelled there).
  function byServerTable(data) {
    const rows = [...data.servers.map((s) => ({ where: s.server_id, mono: true, decisions: s.decisions, color: COLORS.connect })),
      { where: "standalone", decisions: data.standalone, color: COLORS.standalone },
      { where: "fallback reruns", decisions: data.fallback, color: COLORS.fallback },
      { where: "queued", decisions: data.queued, color: COLORS.queued }];
    const total = rows.reduce((sum, row) => sum + row.decisions, 0);
    const most = Math.max(1, ...rows.map((row) => row.decisions));
    return table([
      { title: "Sent to", cell: (r) => h("span", { class: r.mono ? "mono" : null, text: r.where }) },
      { title: "Decisions", cls: "num", cell: (r) => h("div", { class: "bar-cell" },
        h("span", { class: "bar", style: `width:${Math.round((70 * r.decisions) / most)}px;background:${r.color}` }),
        num(r.decisions)) },
      { title: "Share", cls: "num", cell: (r) => (total ? pct(r.decisions / total) : "–") },
    ], rows, { testid: "by-server", empty: "No decision yet." });
  }

  async function overviewPage() {
    const params = new URLSearchParams(location.search);
    const windowName = WINDOWS[params.get("window")] ? params.get("window") : "24h";
    const win = WINDOWS[windowName];
    const [servers, summary, timeline, apps, recent, restarts, quarantine, executors, byServer, accuracy, queue] = await Promise.all([
      api("/servers"), api("/summary", { days: win.days }),
      api("/decisions", { days: win.days, bucket: win.bucket }), api("/apps", { days: win.days, limit: 25 }),
      api("/decisions/recent", { limit: 15 }), api("/restarts", { limit: 10 }), api("/quarantine", { limit: 5 }),
      api("/executors", { minutes: 60 }), api("/decisions/by-server", { days: win.days }),
      api("/predictions", { days: Math.max(1, win.days) }), api("/queue"),
    ]);
    const windows = h("span", { class: "windows" }, Object.keys(WINDOWS).map((name) =>
      h("a", { href: `?window=${name}`, class: name === windowName ? "active" : null, text: name })));
    const connectServers = servers.filter((server) => server.kind === "connect");
    const poolSize = connectServers.filter((server) => server.pool).length;
    const others = servers.filter((server) => server.kind !== "connect");
    const taskH = (mode) => ((summary.task_time_ms[mode] || 0) / 3600000).toFixed(1);
    const maxTask = Math.max(1, ...apps.map((app) => app.task_time_ms));

    const content = [
      section("Connect servers", others.length ? h("span", { class: "muted", text: `and ${others.length} standalone listener(s) reporting` }) : null,
        connectServers.length
          ? h("div", { class: "servers" }, connectServers.map((server) => serverCard(server, executors, poolSize)))
          : h("div", { class: "card error", "data-testid": "no-server" },
            "No Connect server has sent a heartbeat: every auto decision goes standalone (rule server-unhealthy). ",
            "Check that the server runs with the router's listener and reaches this router.")),
      section("Admission queue", h("span", { class: "muted", "data-testid": "queue-total",
        text: `${plural(queue.filter((q) => q.live).length, "run")} waiting for room on a Connect server` }), table([
        { title: "Position", cls: "num", cell: (q) => (q.position ? num(q.position) : h("span", { class: "muted", text: "gave up" })) },
        { title: "App", cell: (q) => appLink(q.app_id) },
        { title: "Run", cls: "nowrap", cell: (q) => runLink(q.run_id) },
        { title: "Waited", cls: "num", cell: (q) => seconds(q.waited_s) },
        { title: "Predicted wait", cls: "num", cell: (q) => (q.predicted_wait_s == null ? "–" : seconds(q.predicted_wait_s)) },
        { title: "Standalone at", cls: "nowrap", cell: (q) => time(q.deadline_at) },
      ], queue, { testid: "queue", empty: "No run waits: every run found room, or went standalone." })),
      section(`Last ${windowName}`, windows,
        h("div", { class: "tiles", "data-testid": "summary" },
          tile("Decisions", num(summary.decisions), `${num(summary.connect)} connect · ${num(summary.standalone)} standalone`),
          tile("On Connect", summary.decisions ? pct(summary.connect / summary.decisions) : "–", "of the decisions"),
          tile("Fallbacks", num(summary.fallbacks), `fallback rate ${pct(summary.fallback_rate)} of Connect runs`,
            summary.fallbacks > 0),
          tile("Connect failures", num(summary.connect_failures),
            `${num(summary.app_failures)} app failures · ${num(summary.cancelled)} cancelled`,
            summary.connect_failures > 0),
          tile("In flight", num(summary.in_flight.connect + summary.in_flight.standalone),
            `${num(summary.in_flight.connect)} connect · ${num(summary.in_flight.standalone)} standalone`),
          tile("Task hours", taskH("connect"), `on Connect · ${taskH("standalone")} standalone`))),
      section(`Decisions by server (last ${windowName})`, null, byServerTable(byServer)),
      h("section", { class: "section" }, h("div", { class: "card chart-card" },
        h("div", { class: "chart-title" }, h("h2", { text: `Decisions per ${win.bucket}` }),
          legend([["connect", COLORS.connect], ["standalone", COLORS.standalone], ["fallback", COLORS.fallback],
            ["queued", COLORS.queued]])),
        barChart(timeline.series, ["connect", "standalone", "fallback", "queued"], timeline))),
      section(`Top apps by task time (last ${windowName})`, null, table([
        { title: "App", cell: (a) => appLink(a.app_id) },
        { title: "Task time", cls: "num", cell: (a) => h("div", { class: "bar-cell" },
          h("span", { class: "bar", style: `width:${Math.round((70 * a.task_time_ms) / maxTask)}px` }), millis(a.task_time_ms)) },
        { title: "Runs", cls: "num", cell: (a) => num(a.runs) },
        { title: "Connect / standalone", cls: "num", cell: (a) => `${num(a.connect_runs)} / ${num(a.standalone_runs)}` },
        { title: "Failed", cls: "num", cell: (a) => num(a.failed_runs) },
        { title: "Fallbacks", cls: "num", cell: (a) => num(a.fallbacks) },
        { title: "Disk spill", cls: "num", cell: (a) => bytes(a.disk_spilled_bytes) },
        { title: "Last run", cls: "nowrap", cell: (a) => time(a.last_run_at, true) },
        { title: "Last decision", cell: (a) => a.last_mode
          ? h("span", {}, badge(a.last_rule === "fallback" ? "fallback" : a.last_mode), " ", h("span", { class: "muted", text: a.last_rule }))
          : h("span", { class: "muted", text: "–" }) },
        { title: "Flags", cell: (a) => h("span", { class: "flags" },
          a.pinned_mode ? badge(`pinned ${a.pinned_mode}${a.pinned_server_id ? " on " + a.pinned_server_id : ""}`, "pinned") : null,
          a.connect_incompatible ? badge("Connect-incompatible", "failed") : null,
          a.connect_failure_streak ? badge(`${a.connect_failure_streak} Connect failure(s) in a row`, "failed") : null) },
      ], apps, { testid: "apps", empty: "No app has run yet." })),
      section("Recent decisions", null, table([
        { title: "Decided", cls: "nowrap", cell: (d) => time(d.decided_at, true) },
        { title: "App", cell: (d) => appLink(d.app_id) },
        { title: "Run", cls: "nowrap", cell: (d) => runLink(d.run_id) },
        { title: "Mode", cell: (d) => badge(kind(d)) },
        { title: "Server", cls: "nowrap", cell: (d) => h("span", { class: "mono", text: d.server_id || "–" }) },
        { title: "Rule", cls: "nowrap", cell: (d) => h("span", { class: "mono", text: d.rule }) },
        { title: "Status", cell: (d) => badge(d.status) },
        { title: "Predicted → actual", cell: (d) => predictedCell(d.predicted, d.actual) },
        { title: "Why", cell: (d) => h("span", { class: "muted", text: d.reason || "" }) },
      ], recent, { testid: "recent", empty: "No decision yet." })),
      section("Prediction accuracy", h("span", { class: "muted",
        text: "succeeded runs against what was predicted for the mode they ran in · GET /api/v1/predictions/accuracy" }), table([
        { title: "App", cell: (a) => a.app_id ? appLink(a.app_id) : h("strong", { text: "all apps" }) },
        { title: "Mode", cell: (a) => badge(a.mode) },
        { title: "Runs", cls: "num", cell: (a) => num(a.runs) },
        { title: "Wall time: median abs. error", cls: "num", cell: (a) => a.wall_median_abs_error_pct === null ? "–" : `${a.wall_median_abs_error_pct} %` },
        { title: "Core-s: median abs. error", cls: "num", cell: (a) => a.core_s_median_abs_error_pct === null ? "–" : `${a.core_s_median_abs_error_pct} %` },
      ], [...accuracy.overall, ...accuracy.apps], { testid: "accuracy", empty: "No prediction has met its run yet." })),
      section("Restarts", null, table([
        { title: "Server", cell: (r) => h("span", { class: "mono", text: r.server_id }) },
        { title: "Requested", cls: "nowrap", cell: (r) => time(r.requested_at) },
        { title: "Outcome", cell: (r) => badge(r.outcome) },
        { title: "Waited", cls: "num", cell: (r) => seconds(r.waited_s) },
        { title: "Restarted", cls: "nowrap", cell: (r) => time(r.restarted_at) },
        { title: "Ready", cls: "nowrap", cell: (r) => time(r.ready_at) },
        { title: "Message", cell: (r) => h("span", { class: "muted", text: r.message || "" }) },
      ], restarts, { testid: "restarts", empty: "No restart recorded (spark-router restart-server records each one)." })),
      section("Quarantined stage records", h("span", { class: "muted", "data-testid": "quarantine-total",
        text: `${num(quarantine.total)} in the last ${num(quarantine.retention_days)} days · GET /api/v1/quarantine lists them` }), table([
        { title: "Received", cls: "nowrap", cell: (q) => time(q.received_at, true) },
        { title: "Server", cell: (q) => h("span", { class: "mono", text: q.server_id }) },
        { title: "App", cell: (q) => q.app_id ? h("span", { class: "mono", text: q.app_id }) : h("span", { class: "muted", text: "–" }) },
        { title: "Why it could not be stored", cell: (q) => h("span", { class: "muted", text: q.reason }) },
      ], quarantine.recent, { testid: "quarantine", empty: "None: every stage record the listeners sent could be stored." })),
    ];
    render([], content);
    scheduleRefresh(overviewPage);
  }

  function runColumns() {
    return [
      { title: "Run", cls: "nowrap", cell: (r) => h("span", {}, runLink(r.run_id),
        r.fallback_of ? h("div", { class: "muted small" }, "fallback of ", runLink(r.fallback_of)) : null,
        r.fell_back_to ? h("div", { class: "muted small" }, "fell back to ", runLink(r.fell_back_to)) : null) },
      { title: "Created", cls: "nowrap", cell: (r) => time(r.created_at) },
      { title: "Mode", cell: (r) => badge(r.mode) },
      { title: "Status", cell: (r) => badge(r.status) },
      { title: "Rule", cls: "nowrap", cell: (r) => h("span", { class: "mono", text: r.decision ? r.decision.rule : "–" }) },
      { title: "Duration", cls: "num", cell: (r) => millis(r.duration_ms) },
      { title: "Predicted → actual", cell: (r) => predictedCell(r.decision && r.decision.predicted, r.decision && r.decision.actual) },
      { title: "Task time", cls: "num", cell: (r) => millis(r.executor_run_time_ms) },
      { title: "Shuffle write", cls: "num", cell: (r) => bytes(r.shuffle_write_bytes) },
      { title: "Disk spill", cls: "num", cell: (r) => bytes(r.disk_spilled_bytes) },
      { title: "Memory spill", cls: "num", cell: (r) => bytes(r.memory_spilled_bytes) },
      { title: "Peak exec. memory", cls: "num", cell: (r) => bytes(r.peak_execution_memory_bytes) },
      { title: "Tasks (failed)", cls: "num", cell: (r) => `${num(r.num_tasks)} (${num(r.num_failed_tasks)})` },
    ];
  }

  function reasonLine(run) {
    const parts = [];
    if (run.decision && run.decision.reasons && run.decision.reasons.length) {
      const reasons = run.decision.reasons;
      parts.push(reasons[0].message + (reasons.length > 1 ? ` (+${reasons.length - 1} more)` : ""));
    }
    if (run.failure_message) {
      const what = run.status === "cancelled" ? "Cancelled" : `Failed (${run.failure_kind})`;
      parts.push(`${what}: ${run.failure_message.slice(0, 300)}`);
    }
    return parts.length ? parts.join(" — ") : null;
  }

  async function appPage(appId) {
    const app = await api(`/apps/${encodeURIComponent(appId)}`, { limit: 50 });
    const runs = app.runs.slice().reverse();  // oldest first for the charts
    const th = app.policy.thresholds;
    const statistic = `${app.policy.statistic} of ${app.policy.window} runs`;
    const flags = [
      app.pinned_mode ? badge(`pinned ${app.pinned_mode}${app.pinned_server_id ? " on " + app.pinned_server_id : ""}` +
        `${app.pin_reason ? ": " + app.pin_reason : ""}`, "pinned") : null,
      app.connect_incompatible ? badge(`Connect-incompatible: ${app.connect_incompatible}`, "failed") : null,
      app.connect_failure_streak ? badge(`${app.connect_failure_streak} Connect failure(s) in a row`, "failed") : null,
    ].filter(Boolean);
    const content = [
      h("div", { class: "card" },
        h("h1", { "data-testid": "app-id", text: app.app_id }),
        flags.length ? h("div", { class: "flags" }, flags) : null,
        h("dl", { class: "kv", style: "margin-top:10px" },
          h("dt", { text: "Runs" }), h("dd", { text: `${num(app.total_runs)} (the last ${app.runs.length} below)` }),
          h("dt", { text: "Last seen" }), h("dd", {}, time(app.last_seen_at, true)),
          h("dt", { text: "Last Connect success" }), h("dd", {}, time(app.last_connect_success_at, true)),
          h("dt", { text: "Last Connect failure" }), h("dd", {}, time(app.last_connect_failure_at, true)),
          h("dt", { text: "Last out of memory on Connect" }), h("dd", {}, time(app.last_connect_oom_at, true)),
          h("dt", { text: "Policy" }), h("dd", {}, h("span", { class: "mono", text: app.policy.version }),
            h("span", { class: "muted", text: ` · decides on the ${statistic}` })))),
      runs.length ? h("section", { class: "section charts" },
        h("div", { class: "card chart-card" },
          h("div", { class: "chart-title" }, h("h2", { text: "Task time per run" }),
            legend([["task time", COLORS.connect], [`threshold ${millis(th.task_time_ms)} (${statistic})` +
              (onChart(th.task_time_ms, maxOf(runs, ["executor_run_time_ms"])) ? "" : ": far above"), null, true]])),
          lineChart(runs, [{ key: "executor_run_time_ms", name: "task time", color: COLORS.connect }],
            { yFormat: millis, tickFormat: shortMillis, units: MS_UNITS, testid: "chart-task-time", label: "Task time per run",
              thresholds: [{ value: th.task_time_ms, label: `threshold ${millis(th.task_time_ms)}` }] })),
        h("div", { class: "card chart-card" },
          h("div", { class: "chart-title" }, h("h2", { text: "Spill per run" }),
            legend([["disk", "#7c3aed"], ["memory", "#0d9488"], [`disk threshold ${bytes(th.disk_spilled_bytes)}` +
              (onChart(th.disk_spilled_bytes, maxOf(runs, ["disk_spilled_bytes", "memory_spilled_bytes"])) ? "" : ": far above"),
              null, true]])),
          lineChart(runs, [{ key: "disk_spilled_bytes", name: "disk spill", color: "#7c3aed" },
                           { key: "memory_spilled_bytes", name: "memory spill", color: "#0d9488" }],
            { yFormat: bytes, tickFormat: shortBytes, units: BYTE_UNITS, testid: "chart-spill", label: "Spill per run",
              thresholds: [{ value: th.disk_spilled_bytes, label: `disk threshold ${bytes(th.disk_spilled_bytes)}` }] })))
        : null,
      section("Recent runs", h("span", { class: "legend" }, "the strip under each chart shows where each run went: ",
        legend([["connect", COLORS.connect], ["standalone", COLORS.standalone], ["fallback", COLORS.fallback]])),
      table(runColumns(), app.runs, { testid: "runs", empty: "No run yet.", reason: reasonLine })),
    ];
    render([["Apps", `${ROOT}/`], [app.app_id]], content);
  }

  async function runPage(runId) {
    const run = await api(`/runs/${encodeURIComponent(runId)}`);
    const d = run.decision;
    const lifecycle = [
      ["App", appLink(run.app_id)],
      ["Mode", badge(run.mode)], ["Status", badge(run.status)],
      ["Created", time(run.created_at)], ["Started", time(run.started_at)], ["Finished", time(run.finished_at)],
      ["Duration", millis(run.duration_ms)],
      ["Stages", `${num(run.num_stages)} (${num(run.num_failed_stages)} failed)`],
      ["Predicted cores", run.mode === "connect" ? String(run.predicted_cores) : "–"],
      ["Server", run.server_id ? h("span", { class: "mono", "data-testid": "run-server", text: run.server_id }) : "–"],
    ];
    // A failure's kind: connect or app; pending while a standalone rerun decides it; unknown if the rerun was cancelled.
    const kindClass = { pending: "pending", unknown: "unknown" }[run.failure_kind] || "failed";
    if (run.failure_kind) lifecycle.push(["Failure", h("span", {}, badge(run.failure_kind, kindClass), " ", run.failure_message || "")]);
    if (run.status === "cancelled") lifecycle.push(["Cancelled", h("span", { class: "muted", text: run.failure_message || "stopped from outside" })]);
    if (run.exit_code !== null) lifecycle.push(["Exit code", String(run.exit_code)]);
    if (run.fallback_of) lifecycle.push(["Fallback of", runLink(run.fallback_of)]);
    if (run.fell_back_to) lifecycle.push(["Fell back to", runLink(run.fell_back_to)]);
    if (run.dag_id) lifecycle.push(["Airflow", h("span", { class: "mono" },
      `${run.dag_id} / ${run.task_id} / ${run.airflow_run_id}` + (run.try_number !== null ? ` (try ${run.try_number})` : ""))]);
    const metricNames = ["executor_run_time_ms", "executor_cpu_time_ms", "jvm_gc_time_ms", "num_tasks",
      "num_failed_tasks", "shuffle_read_bytes", "shuffle_read_records", "shuffle_write_bytes", "shuffle_write_records",
      "memory_spilled_bytes", "disk_spilled_bytes", "input_bytes", "input_records", "output_bytes", "output_records",
      "peak_execution_memory_bytes", "max_task_duration_ms"];
    const content = [
      h("div", { class: "card" }, h("h1", { class: "mono", "data-testid": "run-id", text: run.run_id }),
        h("div", { class: "grid-2", style: "margin-top:10px" },
          h("dl", { class: "kv" }, lifecycle.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)])),
          d ? h("dl", { class: "kv", "data-testid": "decision" },
            h("dt", { text: "Decision" }), h("dd", {}, badge(kind(d)), " ", h("span", { class: "mono", text: d.rule })),
            h("dt", { text: "Requested" }), h("dd", { text: d.requested_mode }),
            h("dt", { text: "Decided" }), h("dd", {}, time(d.decided_at)),
            h("dt", { text: "Policy" }), h("dd", { class: "mono", text: d.policy_version }))
            : h("p", { class: "muted", text: "No decision: the listener saw this run, the router did not route it." }))),
      d ? section("Why", null, table([
        { title: "Rule", cell: (r) => h("span", { class: "mono", text: r.rule }) },
        { title: "Metric", cell: (r) => h("span", { class: "mono", text: r.metric || "–" }) },
        { title: "Observed", cls: "num", cell: (r) => metricValue(r.metric, r.observed) },
        { title: "Threshold", cls: "num", cell: (r) => metricValue(r.metric, r.threshold) },
        { title: "Message", cell: (r) => r.message },
      ], d.reasons || [], { testid: "reasons" })) : null,
      section("Metrics (summed over stages; peak and longest task: the maximum)", null, h("div", { class: "card metrics" },
        metricNames.map((name) => h("div", {}, h("span", { text: name }), h("span", { class: "mono", text: metricValue(name, run[name]) }))))),
      d && d.request && Object.keys(d.request).length ? section("Request", null,
        h("div", { class: "card" }, h("pre", { text: JSON.stringify(d.request, null, 2) }))) : null,
      section(`Stages (${run.stages.length})`, null, table([
        { title: "Stage", cls: "num", cell: (st) => `${st.stage_id}.${st.attempt}` },
        { title: "Name", cell: (st) => h("span", { class: "small", text: st.name || "" }) },
        { title: "Status", cell: (st) => badge(st.status) },
        { title: "Submitted", cls: "nowrap", cell: (st) => time(st.submission_time) },
        { title: "Duration", cls: "num", cell: (st) => millis(st.duration_ms) },
        { title: "Tasks (failed)", cls: "num", cell: (st) => `${num(st.num_tasks)} (${num(st.num_failed_tasks)})` },
        { title: "Task time", cls: "num", cell: (st) => millis(st.executor_run_time_ms) },
        { title: "Shuffle read / write", cls: "num", cell: (st) => `${bytes(st.shuffle_read_bytes)} / ${bytes(st.shuffle_write_bytes)}` },
        { title: "Spill disk / memory", cls: "num", cell: (st) => `${bytes(st.disk_spilled_bytes)} / ${bytes(st.memory_spilled_bytes)}` },
        { title: "Peak memory", cls: "num", cell: (st) => bytes(st.peak_execution_memory_bytes) },
      ], run.stages, { testid: "stages", empty: "No stage reported for this run (yet).",
        reason: (st) => st.failure_reason ? st.failure_reason.slice(0, 400) : null })),
    ];
    render([["Apps", `${ROOT}/`], [run.app_id, `${ROOT}/apps/${encodeURIComponent(run.app_id)}`], [run.run_id]], content);
  }

  // ---------------------------------------------------------------------------------------- router

  function render(crumbs, content) {
    const nav = document.getElementById("crumbs");
    nav.replaceChildren(...crumbs.flatMap(([text, href], i) =>
      [i ? " / " : "", href ? h("a", { href, text }) : h("span", { text })]));
    const y = window.scrollY;
    main.replaceChildren(...content.filter(Boolean));
    window.scrollTo(0, y);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    main.dataset.ready = "true";
  }

  function scheduleRefresh(page) {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      if (document.visibilityState === "visible") page().catch(showError);
      else scheduleRefresh(page);
    }, REFRESH_MS);
  }

  function showError(error) {
    if (error instanceof AuthError) {
      main.replaceChildren(h("div", { class: "error", "data-testid": "auth-needed" },
        "This router needs an API token for its data. ", error.message));
      showToken(error.message ? `${error.message} Enter SPARK_ROUTER_API_TOKEN (or the admin token).` : null);
      return;
    }
    main.replaceChildren(h("div", { class: "error", "data-testid": "error" }, error.message || String(error)));
  }

  function route() {
    clearTimeout(refreshTimer);
    main.dataset.ready = "false";
    const path = decodeURIComponent(location.pathname.slice(ROOT.length)) || "/";
    let page;
    if (path === "/") page = overviewPage();
    else if (path.startsWith("/apps/")) page = appPage(path.slice("/apps/".length));
    else if (path.startsWith("/runs/")) page = runPage(path.slice("/runs/".length));
    else page = Promise.reject(new Error(`No page at ${path}`));
    page.catch(showError);
  }

  setupToken();
  route();
}());
