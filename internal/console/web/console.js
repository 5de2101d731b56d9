// The jobflow console: draws the plan's flow from /api/console/graph and
// keeps it live from one Server-Sent Events stream (/api/console/stream).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COL_W = 164, NODE_W = 112, GAP = COL_W - NODE_W, ROW_H = 62, MIN_SCALE = 0.66, NODE_H = { function: 54, source: 52, trigger: 52, default: 40 };
const $ = (sel) => document.querySelector(sel);

const state = { graph: null, redrive: false, nodes: {}, edges: [], frame: null };

function el(tag, attrs, parent, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// destName is the node a destination URL names (a function's), else the URL.
function destName(url) {
  const n = (state.graph?.nodes || []).find((n) => n.detail && n.detail.url && url && url.replace(/\/$/, "") === n.detail.url.replace(/\/$/, ""));
  return n ? n.name : url;
}

function fmtRate(r) { return r >= 100 ? Math.round(r) + "/s" : (r || 0).toFixed(1) + "/s"; }
function fmtTime(t) { const d = new Date(t); return isNaN(d) ? "" : d.toLocaleTimeString(); }
function short(s, n) { s = String(s ?? ""); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

// ---- layout: columns by longest path (dead-letter edges left out), rows by barycenters

function layout(graph) {
  const nodes = graph.nodes, byId = {};
  nodes.forEach((n) => { byId[n.id] = { ...n, rank: 0, order: 0 }; });
  const flow = graph.edges.filter((e) => e.kind !== "dead_letter");
  const succ = {};
  flow.forEach((e) => { (succ[e.from] = succ[e.from] || []).push(e.to); });
  const hasIn = new Set(flow.map((e) => e.to));
  const visiting = new Set();
  function visit(id, rank) {
    if (visiting.has(id) || byId[id].rank > rank) return;
    byId[id].rank = Math.max(byId[id].rank, rank);
    visiting.add(id);
    (succ[id] || []).forEach((t) => visit(t, rank + 1));
    visiting.delete(id);
  }
  nodes.filter((n) => !hasIn.has(n.id)).forEach((n) => visit(n.id, 0));
  let maxRank = 0;
  Object.values(byId).forEach((n) => { maxRank = Math.max(maxRank, n.rank); });
  // Dead-letter topics (only dead letters flow in) go to the last column.
  (graph.dead_letter_topics || []).forEach((t) => {
    const n = byId["topic/" + t];
    if (n && !hasIn.has(n.id)) n.rank = maxRank;
  });
  const cols = [];
  Object.values(byId).forEach((n) => { (cols[n.rank] = cols[n.rank] || []).push(n); });
  cols.forEach((c, i) => { if (c) c.forEach((n, j) => { n.order = j; }); else cols[i] = []; });
  const preds = {};
  flow.forEach((e) => { (preds[e.to] = preds[e.to] || []).push(e.from); });
  for (let sweep = 0; sweep < 4; sweep++) {
    cols.forEach((c) => {
      c.forEach((n) => {
        const ps = (preds[n.id] || []).map((p) => byId[p].order);
        n.bary = ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : n.order;
      });
      c.sort((a, b) => a.bary - b.bary || a.id.localeCompare(b.id));
      c.forEach((n, j) => { n.order = j; });
    });
  }
  let rows = 0;
  cols.forEach((c) => { rows = Math.max(rows, c.length); });
  cols.forEach((c) => {
    const offset = (rows - c.length) / 2;
    c.forEach((n) => {
      n.h = NODE_H[n.kind] || NODE_H.default;
      n.x = 10 + n.rank * COL_W;
      n.y = 10 + (n.order + offset) * ROW_H + (ROW_H - 10 - n.h) / 2;
    });
  });
  return { byId, width: 20 + cols.length * COL_W, height: 20 + rows * ROW_H };
}

// ---- drawing

// curveY is the y of the edge's Bézier curve where it crosses x (found by
// bisection: x grows along the curve).
function curveY(x1, y1, x2, y2, dx, x) {
  const at = (t, p0, p1, p2, p3) => (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3;
  let lo = 0, hi = 1;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (at(mid, x1, x1 + dx, x2 - dx, x2) < x) lo = mid; else hi = mid;
  }
  return at(lo, y1, y1, y2, y2);
}

function draw(graph) {
  const svg = $("#flow");
  svg.textContent = "";
  const { byId, width, height } = layout(graph);
  // Fit the width of the page, down to MIN_SCALE (then it scrolls).
  const room = $("#flow-section").clientWidth - 32;
  const scale = Math.max(MIN_SCALE, Math.min(1, room / width));
  svg.setAttribute("width", Math.round(width * scale));
  svg.setAttribute("height", Math.round(height * scale));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const edgeLayer = el("g", {}, svg), nodeLayer = el("g", {}, svg), labelLayer = el("g", { class: "labels" }, svg);
  state.edges = graph.edges.map((e) => {
    const a = byId[e.from], b = byId[e.to];
    const g = el("g", { class: "edge " + e.kind, "data-from": e.from, "data-to": e.to }, edgeLayer);
    const x1 = a.x + NODE_W, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    const dx = Math.max(30, (x2 - x1) / 2);
    el("path", { d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` }, g);
    // The labels sit in the gap just before the target's column, right
    // aligned to it, so they never cover a node: the rate above the
    // edge, the events in flight under it.
    const lx = x2 > x1 ? x2 - 4 : (x1 + x2) / 2, ly = x2 > x1 ? curveY(x1, y1, x2, y2, dx, x2 - GAP / 2) : (y1 + y2) / 2;
    const lg = el("g", { class: "edge " + e.kind }, labelLayer);
    const label = el("text", { x: lx, y: ly - 4, "text-anchor": x2 > x1 ? "end" : "middle" }, lg);
    const label2 = el("text", { class: "in-flight", x: lx, y: ly + 12, "text-anchor": x2 > x1 ? "end" : "middle" }, lg);
    el("title", {}, g, (e.label ? e.label + ": " : "") + e.from + " → " + e.to);
    return { e, g, lg, label, label2 };
  });
  state.nodes = {};
  Object.values(byId).forEach((n) => {
    const g = el("g", { class: "node " + n.kind, "data-id": n.id, "data-kind": n.kind, "data-name": n.name,
      transform: `translate(${n.x},${n.y})` }, nodeLayer);
    el("rect", { class: "box", width: NODE_W, height: n.h }, g);
    el("text", { class: "name", x: 7, y: 16 }, g, short(n.name, 15));
    const stat = el("text", { class: "stat", x: 7, y: 31 }, g, n.kind);
    const tip = Object.entries(n.detail || {}).map(([k, v]) => k + ": " + v).join("\n");
    el("title", {}, g, n.kind + " " + n.name + (tip ? "\n" + tip : ""));
    const parts = { g, stat, n };
    if (n.kind === "source" || n.kind === "trigger") parts.stat2 = el("text", { class: "stat", x: 7, y: 45 }, g, "");
    if (n.kind === "function") {
      parts.inst = el("g", { transform: "translate(8,40)" }, g);
      parts.cold = el("text", { class: "stat", x: NODE_W - 6, y: 48, "text-anchor": "end" }, g);
    }
    state.nodes[n.id] = parts;
  });
}

function update(frame) {
  state.frame = frame;
  const st = frame.status || {}, counts = frame.counts || {}, rates = frame.rates || {};
  const fns = st.functions || {};
  let instances = 0, delivered = 0;
  Object.values(state.nodes).forEach((p) => {
    const n = p.n;
    if (n.kind === "function" || n.kind === "adapter") {
      const f = fns[n.name];
      if (!f) { p.stat.textContent = "not running"; return; }
      const sc = f.scale;
      if (!sc) {
        p.stat.textContent = f.ready ? "running" : "NOT READY";
        p.g.setAttribute("data-ready", f.ready);
        return;
      }
      instances += sc.instances;
      p.g.setAttribute("data-instances", sc.instances);
      p.g.setAttribute("data-requests", sc.requests);
      p.g.classList.toggle("zero", sc.instances + sc.starting === 0);
      p.stat.textContent = `${sc.in_flight} in flight` + (sc.held ? ` · ${sc.held} held` : "");
      p.stat.classList.toggle("bad", sc.errors > 0 || f.restarts > 0);
      p.inst.textContent = "";
      const dots = [["up", sc.instances], ["starting", sc.starting], ["draining", sc.draining]];
      let i = 0;
      dots.forEach(([cls, k]) => {
        for (let j = 0; j < k && i < 9; j++, i++) el("circle", { class: "inst " + cls, cx: 4 + i * 11, cy: 4, r: 4 }, p.inst);
      });
      if (sc.instances + sc.starting + sc.draining === 0) el("text", { class: "stat", x: 0, y: 8 }, p.inst, "at zero");
      p.cold.textContent = `cold ${sc.cold_starts}` + (sc.errors ? ` err ${sc.errors}` : "");
      p.cold.classList.toggle("bad", sc.errors > 0);
    } else if (n.kind === "source" || n.kind === "trigger") {
      const s = (n.kind === "source" ? st.sources : st.triggers || {})?.[n.name];
      if (!s) return;
      delivered += s.delivered;
      p.g.setAttribute("data-delivered", s.delivered);
      p.stat.textContent = fmtRate(rates[n.kind + "/" + n.name + "/delivered"]) + ` · ${s.delivered}`;
      p.stat2.textContent = `${s.in_flight} in flight` + (s.dead_lettered ? ` · ${s.dead_lettered} dead` : "");
      p.stat.classList.toggle("bad", s.dead_lettered + s.dropped > 0);
    } else if (n.kind === "ping") {
      const s = (st.pingsources || {})[n.name];
      if (s) p.stat.textContent = `fired ${s.fired} · dropped ${s.dropped}`;
    } else if (n.kind === "broker") {
      p.stat.textContent = fmtRate(rates["broker/" + n.name + "/accepted"]) + " in";
    } else if (n.kind === "topic") {
      p.stat.textContent = "topic";
    }
  });
  state.edges.forEach(({ e, g, lg, label, label2 }) => {
    const rate = e.counter ? rates[e.counter] || 0 : 0;
    const inflight = e.in_flight ? counts[e.in_flight] || 0 : 0;
    if (e.kind === "dead_letter") {
      const n = counts[e.counter] || 0;
      g.classList.toggle("some", n > 0);
      lg.classList.toggle("some", n > 0);
      label.textContent = n > 0 ? `${n} dead` : "";
      return;
    }
    g.classList.toggle("live", rate > 0 || inflight > 0);
    lg.classList.toggle("live", rate > 0 || inflight > 0);
    label.textContent = e.counter && rate > 0 ? fmtRate(rate) : "";
    label2.textContent = inflight > 0 ? "×" + inflight : "";
    g.setAttribute("data-rate", rate);
  });
  $("#totals").textContent = `${instances} instances · ${delivered} events delivered`;
  functionsTable(fns);
  sourcesTable(st, rates);
}

function functionsTable(fns) {
  const tb = $("#functions tbody");
  tb.textContent = "";
  Object.keys(fns).sort().forEach((name) => {
    const f = fns[name], sc = f.scale, tr = document.createElement("tr");
    tr.dataset.fn = name;
    cell(tr, name);
    if (sc) {
      cell(tr, sc.instances + (sc.starting ? ` +${sc.starting}` : "") + (sc.draining ? ` -${sc.draining}` : ""));
      [sc.desired, sc.in_flight, sc.held, sc.requests, sc.cold_starts].forEach((v) => cell(tr, v));
      cell(tr, sc.cold_starts ? Math.round(sc.cold_start_p50_ms) + " ms" : "");
      cell(tr, sc.errors, sc.errors ? "bad" : "");
    } else {
      cell(tr, f.ready ? "running" : "NOT READY", f.ready ? "dim" : "bad");
      for (let i = 0; i < 7; i++) cell(tr, "");
    }
    cell(tr, f.restarts, f.restarts ? "bad" : "");
    tb.appendChild(tr);
  });
}

function sourcesTable(st, rates) {
  const tb = $("#sources tbody");
  tb.textContent = "";
  [["source", st.sources || {}], ["trigger", st.triggers || {}]].forEach(([kind, m]) => {
    Object.keys(m).sort().forEach((name) => {
      const s = m[name], tr = document.createElement("tr");
      tr.dataset.source = name;
      cell(tr, (kind === "trigger" ? "trigger " : "") + name);
      cell(tr, s.delivered);
      cell(tr, fmtRate(rates[kind + "/" + name + "/delivered"]));
      cell(tr, s.in_flight);
      cell(tr, s.failures, s.failures ? "bad" : "");
      cell(tr, s.dead_lettered, s.dead_lettered ? "bad" : "");
      cell(tr, s.dropped, s.dropped ? "bad" : "");
      cell(tr, s.filtered);
      tb.appendChild(tr);
    });
  });
}

// ---- the stream

function connect() {
  const es = new EventSource("/api/console/stream");
  es.addEventListener("frame", (m) => {
    $("#conn").textContent = "live";
    $("#conn").className = "conn up";
    update(JSON.parse(m.data));
  });
  es.onerror = () => {
    $("#conn").textContent = "reconnecting…";
    $("#conn").className = "conn down";
  };
}

// ---- records: topics, dead letters, lookup

async function getJSON(url, opts) {
  const r = await fetch(url, opts);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function showRecord(rec) {
  $("#record-json").textContent = JSON.stringify(rec, null, 2);
  $("#record-dialog").showModal();
}

function recordRow(rec, cols) {
  const tr = document.createElement("tr"), ce = rec.cloudevent || {};
  tr.className = "clickable";
  tr.addEventListener("click", () => showRecord(rec));
  cols.forEach((c) => {
    switch (c) {
      case "time": cell(tr, fmtTime(rec.time)); break;
      case "topic": cell(tr, rec.topic); break;
      case "where": cell(tr, rec.partition + "/" + rec.offset); break;
      case "key": cell(tr, short(rec.key, 24)); break;
      case "type": cell(tr, ce.type || (rec.not_cloudevent ? "(not a CloudEvent)" : "")); break;
      case "source": cell(tr, short(ce.source, 32)); break;
      case "subject": cell(tr, short(ce.subject, 24)); break;
      case "data": cell(tr, short(rec.data, 200), "data"); break;
    }
  });
  return tr;
}

async function loadTopics() {
  try {
    const topics = await getJSON("/api/console/topics");
    const sel = $("#topic-select"), cur = sel.value;
    sel.textContent = "";
    topics.forEach((t) => {
      const o = document.createElement("option");
      o.value = t.name;
      o.textContent = `${t.name} (${t.records})`;
      sel.appendChild(o);
    });
    if (cur) sel.value = cur;
    else {
      const busiest = topics.reduce((a, t) => (t.records > (a?.records || 0) ? t : a), null);
      if (busiest) sel.value = busiest.name;
    }
    await loadRecords();
  } catch (err) { $("#records tbody").textContent = err.message; }
}

async function loadRecords() {
  const topic = $("#topic-select").value;
  if (!topic) return;
  const tb = $("#records tbody");
  try {
    const body = await getJSON("/api/console/topics/" + encodeURIComponent(topic) + "?limit=50");
    tb.textContent = "";
    body.records.forEach((r) => tb.appendChild(recordRow(r, ["time", "where", "key", "type", "source", "subject", "data"])));
  } catch (err) { tb.textContent = err.message; }
}

async function loadDeadLetters() {
  try {
    const body = await getJSON("/api/console/dead-letters");
    const dests = $("#dl-destinations");
    dests.textContent = "";
    if (!body.destinations || body.destinations.length === 0) dests.textContent = "none";
    (body.destinations || []).forEach((d) => {
      const s = document.createElement("span");
      s.dataset.destination = d.destination;
      s.innerHTML = "<b></b> ";
      s.firstChild.textContent = d.count;
      s.appendChild(document.createTextNode(destName(d.destination)));
      s.title = d.destination;
      dests.appendChild(s);
    });
    $("#dl-actions").hidden = !body.redrive;
    const tb = $("#dead-letters tbody");
    tb.textContent = "";
    body.records.forEach((rec) => {
      const tr = document.createElement("tr"), ce = rec.cloudevent || {}, dl = rec.dead_letter || {};
      const box = document.createElement("input");
      box.type = "checkbox";
      box.disabled = !body.redrive;
      box.dataset.record = JSON.stringify({ topic: rec.topic, partition: rec.partition, offset: rec.offset });
      box.dataset.id = ce.id || "";
      box.addEventListener("click", (ev) => { ev.stopPropagation(); redriveButton(); });
      tr.appendChild(document.createElement("td")).appendChild(box);
      tr.className = "clickable";
      tr.addEventListener("click", () => showRecord(rec));
      cell(tr, fmtTime(rec.time));
      cell(tr, short(destName(dl.destination), 40));
      cell(tr, dl.code, "bad");
      cell(tr, ce.type);
      cell(tr, short(ce.id, 24));
      cell(tr, short(dl.answer, 120), "data");
      tb.appendChild(tr);
    });
    redriveButton();
  } catch (err) { $("#dl-destinations").textContent = err.message; }
}

function redriveButton() {
  $("#dl-redrive").disabled = document.querySelectorAll("#dead-letters input:checked").length === 0;
}

async function redrive() {
  const records = [...document.querySelectorAll("#dead-letters input:checked")].map((b) => JSON.parse(b.dataset.record));
  $("#dl-result").textContent = "redriving…";
  try {
    const res = await getJSON("/api/console/dead-letters/redrive", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ records }),
    });
    $("#dl-result").textContent = `redriven: ${res.delivered} delivered, ${res.dead_lettered} dead-lettered again`;
  } catch (err) { $("#dl-result").textContent = "redrive failed: " + err.message; }
  await loadDeadLetters();
}

async function lookup(ev) {
  ev.preventDefault();
  const id = $("#lookup-id").value.trim();
  if (!id) return;
  $("#lookup-panel").hidden = false;
  $("#lookup-what").textContent = id;
  $("#lookup-summary").textContent = "searching…";
  const tb = $("#lookup tbody");
  tb.textContent = "";
  loadTrace(id);
  try {
    const body = await getJSON("/api/console/lookup?id=" + encodeURIComponent(id));
    body.records.forEach((r) => tb.appendChild(recordRow(r, ["time", "topic", "where", "type", "source", "data"])));
    $("#lookup-summary").textContent = body.records.length
      ? `${body.records.length} records; last seen in ${body.last_topic}`
      : `not found in the latest ${body.searched_per_partition} records of each partition`;
  } catch (err) { $("#lookup-summary").textContent = err.message; }
}

// ---- the lookup's trace: one row per hop, a bar from its offset for its
// duration on the trace's time scale, indented by its depth.

// hel is el for HTML elements.
function hel(tag, attrs, parent, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms >= 10 ? Math.round(ms) + " ms" : ms.toFixed(1) + " ms"; }

async function loadTrace(id) {
  const box = $("#lookup-trace");
  box.textContent = "";
  if (!state.traces) {
    box.textContent = "no traces: the engine keeps none (JOBFLOW_TRACES=false)";
    return;
  }
  try {
    const body = await getJSON("/api/console/trace?id=" + encodeURIComponent(id));
    if (body.traces.length === 0) {
      box.textContent = "no trace kept for this id (a trace starts at an HTTP function's request; the engine keeps the latest ones)";
      return;
    }
    body.traces.forEach((t) => box.appendChild(waterfall(t)));
  } catch (err) { box.textContent = "trace: " + err.message; }
}

function waterfall(t) {
  const div = document.createElement("div");
  div.className = "trace";
  div.dataset.trace = t.trace_id;
  const h = hel("div", { class: "trace-head" }, div);
  h.textContent = `trace ${t.trace_id} · ${fmtMs(t.duration_ms)} · ${t.hops.length} hops · started ${fmtTime(t.start)}`;
  const total = t.duration_ms || 1;
  t.hops.forEach((hop) => {
    const row = hel("div", { class: "hop" + (hop.error ? " bad" : "") }, div);
    row.dataset.name = hop.name;
    row.dataset.service = hop.service;
    row.dataset.offset = hop.offset_ms;
    row.dataset.duration = hop.duration_ms;
    row.title = `${hop.name} (${hop.service}, ${hop.kind})\nat +${fmtMs(hop.offset_ms)} for ${fmtMs(hop.duration_ms)}` +
      (hop.error ? "\nerror: " + hop.error : "");
    const label = hel("span", { class: "hop-name" }, row);
    label.style.paddingLeft = Math.min(hop.depth, 16) * 6 + "px";
    label.textContent = hop.name;
    hel("span", { class: "hop-service dim" }, row, hop.service);
    const lane = hel("span", { class: "hop-lane" }, row);
    const bar = hel("span", { class: "hop-bar " + (hop.service === "jobflow-engine" ? "engine" : "function") }, lane);
    const left = Math.min(100, (hop.offset_ms / total) * 100);
    bar.style.left = left + "%";
    bar.style.width = Math.max(0.4, Math.min(100 - left, (hop.duration_ms / total) * 100)) + "%";
    hel("span", { class: "hop-time" }, row, `+${fmtMs(hop.offset_ms)}  ${fmtMs(hop.duration_ms)}`);
  });
  return div;
}

async function main() {
  const body = await getJSON("/api/console/graph");
  state.graph = body.graph;
  state.redrive = body.redrive;
  state.traces = body.traces;
  draw(body.graph);
  connect();
  $("#topic-select").addEventListener("change", loadRecords);
  $("#topic-refresh").addEventListener("click", loadTopics);
  $("#dl-refresh").addEventListener("click", loadDeadLetters);
  $("#dl-redrive").addEventListener("click", redrive);
  $("#lookup-form").addEventListener("submit", lookup);
  $("#lookup-close").addEventListener("click", () => { $("#lookup-panel").hidden = true; });
  loadTopics();
  loadDeadLetters();
}

main().catch((err) => { document.body.prepend(document.createTextNode("console: " + err.message)); });
