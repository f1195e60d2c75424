// pybroker console: polls /api/cluster and /api/throughput, renders with DOM nodes (text
// is always set as textContent, never parsed as HTML), and posts the actions as JSON.
"use strict";

const REFRESH_MS = 2000;
const COLORS = ["#2f6fde", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d4ac0d"];
const expanded = new Set();
let state = null;
let renderedGroups = null;
// A refresh that replaced an element between mousedown and mouseup would swallow the
// click: while a button is held, rendering waits for its release.
let pressed = false, renderWaiting = false;
document.addEventListener("mousedown", () => { pressed = true; }, true);
document.addEventListener("mouseup", () => {
  pressed = false;
  if (renderWaiting) { renderWaiting = false; setTimeout(render, 0); }
}, true);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(id, rows) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows);
}

function num(v) { return v === null || v === undefined ? "-" : Number(v).toLocaleString("en-US"); }
function bytes(v) {
  if (v === null || v === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + units[i];
}
function rate(v) { return v === undefined ? "-" : (v >= 100 ? Math.round(v) : v.toFixed(1)).toLocaleString("en-US"); }

function notice(text, ok) {
  const box = document.getElementById("notice");
  const item = el("div", {class: ok ? "ok" : "error"}, text.includes("\n") ? el("pre", {}, text) : text);
  box.prepend(item);
  while (box.children.length > 4) box.lastChild.remove();
  setTimeout(() => item.remove(), ok ? 8000 : 20000);
}

async function getJSON(path) {
  const res = await fetch(path, {cache: "no-store"});
  const doc = await res.json();
  if (!res.ok) throw new Error(doc.error || res.statusText);
  return doc;
}

async function post(path, body) {
  const res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(body)});
  const doc = await res.json().catch(() => ({error: res.statusText}));
  if (!res.ok) throw new Error(doc.error || res.statusText);
  return doc;
}

async function act(what, path, body, describe) {
  try {
    const doc = await post(path, body);
    notice(what + ": " + (describe ? describe(doc) : (doc.result || doc.output || "done").trim()), true);
    await refresh();
    return doc;
  } catch (err) {
    notice(what + " failed: " + err.message, false);
    return null;
  }
}

// -- rendering ------------------------------------------------------------------------

function renderBrokers(brokers) {
  fill("broker-rows", brokers.map(b => el("tr", {"data-broker": b.id},
    el("td", {}, b.id), el("td", {class: "state-" + b.state}, b.state),
    el("td", {class: "mono"}, b.host + ":" + b.port), el("td", {}, b.rack || "-"), el("td", {}, b.pid || "-"),
    el("td", {class: "num"}, b.restarts), el("td", {class: "num"}, b.leaders), el("td", {class: "num"}, b.replicas))));
}

function partitionTable(topic) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Partition", "Leader", "Replicas", "ISR", "Log start", "High watermark",
                                  "Log end", "Size", ""].map(h => el("th", {}, h)))),
    el("tbody", {}, topic.partitions.map(p => el("tr", {},
      el("td", {}, p.partition), el("td", {class: p.offline ? "bad" : ""}, p.offline ? "none" : p.leader),
      el("td", {}, p.replicas.join(",")), el("td", {class: p.under_replicated ? "warn" : ""}, p.isr.join(",")),
      el("td", {class: "num"}, num(p.log_start_offset)), el("td", {class: "num"}, num(p.high_watermark)),
      el("td", {class: "num"}, num(p.log_end_offset)), el("td", {class: "num"}, bytes(p.size_bytes)),
      el("td", {}, p.offline ? "offline" : p.under_replicated ? "under-replicated" : "")))));
}

function renderTopics(topics, rates, readOnly) {
  const rows = [];
  for (const t of topics) {
    const open = expanded.has(t.name);
    const configs = Object.entries(t.configs).map(([k, v]) => k + "=" + v).join(", ");
    rows.push(el("tr", {"data-topic": t.name},
      el("td", {}, el("a", {href: "#topics", onclick: () => { open ? expanded.delete(t.name) : expanded.add(t.name); render(); }},
                     (open ? "▾ " : "▸ ") + t.name)),
      el("td", {class: "num"}, t.partitions.length), el("td", {class: "num"}, t.replication_factor),
      el("td", {class: "num " + (t.under_replicated ? "warn" : "")}, t.under_replicated),
      el("td", {class: "num"}, num(t.messages)), el("td", {class: "num"}, bytes(t.size_bytes)),
      el("td", {class: "num"}, rates[t.name] ? rate(rates[t.name][0]) : "0"),
      el("td", {class: "mono"}, configs || "-"),
      el("td", {}, el("button", {class: "danger", disabled: readOnly, title: "delete this topic",
        onclick: () => { if (window.confirm("Delete topic " + t.name + " and all its data?"))
                           act("delete " + t.name, "/api/topics/" + encodeURIComponent(t.name) + "/delete", {}); }},
        "Delete"))));
    if (open) rows.push(el("tr", {class: "detail"}, el("td", {colspan: 9}, partitionTable(t))));
  }
  fill("topic-rows", rows);
  for (const select of document.querySelectorAll("select.topic-select")) {
    const current = select.value;
    select.replaceChildren(...topics.map(t => el("option", {value: t.name}, t.name)));
    if (topics.some(t => t.name === current)) select.value = current;
  }
}

function resetForm(g, readOnly) {
  const topics = [...new Set(g.offsets.map(o => o.topic))];
  const form = el("form", {class: "action", "data-reset": g.group},
    el("label", {}, "Topic", el("select", {name: "topic"}, el("option", {value: ""}, "all topics"),
                                topics.map(t => el("option", {value: t}, t)))),
    el("label", {}, "Reset to", el("select", {name: "scenario"},
      [["earliest", "earliest"], ["latest", "latest"], ["offset", "offset"], ["shift", "shift by"],
       ["datetime", "date-time"]].map(([v, l]) => el("option", {value: v}, l)))),
    el("label", {}, "Value", el("input", {name: "value", placeholder: "offset, ±n or 2026-01-31T12:00:00"})),
    el("button", {type: "submit", disabled: readOnly}, "Reset offsets"));
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const f = new FormData(form);
    act("reset " + g.group, "/api/groups/" + encodeURIComponent(g.group) + "/reset",
        {topic: f.get("topic"), scenario: f.get("scenario"), value: f.get("value")});
  });
  return form;
}

function renderGroups(groups, readOnly) {
  const list = document.getElementById("group-list");
  // Keep a reset form the user is typing into: re-render groups only when no input has focus there.
  if (list.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON") return;
  const signature = JSON.stringify([groups, readOnly]);
  if (signature === renderedGroups) return;
  renderedGroups = signature;
  if (!groups.length) { list.replaceChildren(el("p", {class: "muted"}, "No consumer groups yet.")); return; }
  const kept = {};
  for (const form of list.querySelectorAll("form[data-reset]")) {
    kept[form.dataset.reset] = Object.fromEntries(new FormData(form));
  }
  list.replaceChildren(...groups.map(g => el("div", {class: "group", "data-group": g.group},
    el("h3", {}, g.group, el("span", {class: "muted"}, "state"), el("span", {class: "group-state"}, g.state),
       el("span", {class: "muted"}, "members"), el("span", {}, g.members.length),
       el("span", {class: "muted"}, "total lag"), el("span", {class: "group-lag"}, num(g.lag))),
    g.members.length ? el("table", {}, el("thead", {}, el("tr", {}, ["Member", "Client", "Host", "Assignment"]
                          .map(h => el("th", {}, h)))),
      el("tbody", {}, g.members.map(m => el("tr", {}, el("td", {class: "mono"}, m.member_id),
        el("td", {}, m.client_id), el("td", {}, m.host),
        el("td", {class: "mono"}, m.assignment.map(([t, p]) => t + "-" + p).join(", ") || "-"))))) : null,
    el("table", {}, el("thead", {}, el("tr", {}, ["Topic", "Partition", "Committed", "Log end", "Lag", "Member"]
                       .map(h => el("th", {}, h)))),
      el("tbody", {}, g.offsets.map(o => el("tr", {"data-lag": o.topic + "-" + o.partition},
        el("td", {}, o.topic), el("td", {class: "num"}, o.partition), el("td", {class: "num"}, num(o.current_offset)),
        el("td", {class: "num"}, num(o.log_end_offset)), el("td", {class: "num lag"}, num(o.lag)),
        el("td", {class: "mono"}, o.member_id || "-"))))),
    resetForm(g, readOnly))));
  for (const form of list.querySelectorAll("form[data-reset]")) {
    for (const [k, v] of Object.entries(kept[form.dataset.reset] || {})) {
      const field = form.elements[k];
      if (field && (field.tagName !== "SELECT" || [...field.options].some(o => o.value === v))) field.value = v;
    }
  }
}

function drawChart(points) {
  const canvas = document.getElementById("chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 40;
  ctx.clearRect(0, 0, w, h);
  const topics = [...new Set(points.flatMap(p => Object.keys(p.topics)))].sort();
  let max = 1;
  for (const p of points) for (const t of topics) max = Math.max(max, (p.topics[t] || [0])[0]);
  ctx.strokeStyle = "#dfe3ea"; ctx.fillStyle = "#6b7385"; ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = h - pad / 2 - (h - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 5, y); ctx.stroke();
    ctx.fillText(rate(max * i / 4), 2, y + 4);
  }
  if (points.length < 2) {
    ctx.fillText("collecting samples (one every 2 s)…", pad + 10, h / 2);
  } else {
    const t0 = points[0].t, t1 = points[points.length - 1].t;
    const x = t => pad + (w - pad - 5) * (t - t0) / Math.max(1, t1 - t0);
    const y = v => h - pad / 2 - (h - pad) * v / max;
    topics.forEach((topic, i) => {
      ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
      points.forEach((p, j) => { const v = (p.topics[topic] || [0])[0]; j ? ctx.lineTo(x(p.t), y(v)) : ctx.moveTo(x(p.t), y(v)); });
      ctx.stroke();
    });
  }
  document.getElementById("legend").replaceChildren(...topics.map((t, i) =>
    el("span", {}, el("i", {style: "background:" + COLORS[i % COLORS.length]}), t)));
}

function render() {
  if (!state) return;
  if (pressed) { renderWaiting = true; return; }
  const ro = state.read_only;
  document.getElementById("cluster-id").textContent = "cluster " + state.cluster_id;
  document.getElementById("bootstrap").textContent = state.bootstrap;
  const mode = document.getElementById("mode");
  mode.textContent = ro ? "read-only" : "actions enabled";
  mode.className = "badge" + (ro ? " ro" : "");
  for (const b of document.querySelectorAll("form.action:not([data-reset]) button")) b.disabled = ro;
  renderBrokers(state.brokers);
  renderTopics(state.topics, state.rates || {}, ro);
  renderGroups(state.groups, ro);
}

async function refresh() {
  try {
    state = await getJSON("/api/cluster");
    render();
    drawChart((await getJSON("/api/throughput")).points);
    document.getElementById("refreshed").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById("refreshed").textContent = "not reachable: " + err.message;
  }
}

// -- messages -------------------------------------------------------------------------

function shown(v, mode) {
  if (v === null || v === undefined) return el("span", {class: "muted"}, "null");
  let text;
  if (mode === "hex" || v.text === null) text = v.hex;
  else if (mode === "auto" && v.json !== null) text = v.json;
  else text = v.text;
  return el("div", {}, el("pre", {}, text), v.truncated ? el("span", {class: "muted"}, "(" + v.size + " bytes, cut)") : null);
}

async function browse(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const q = new URLSearchParams({topic: f.get("topic") || "", partition: f.get("partition") || "0", limit: f.get("limit") || "20"});
  const position = (f.get("position") || "").trim();
  if (f.get("from") === "offset") q.set("offset", position || "0");
  if (f.get("from") === "timestamp") {
    const ms = /^\d+$/.test(position) ? Number(position) : Date.parse(position);
    if (Number.isNaN(ms)) { notice("not a timestamp: " + position, false); return; }
    q.set("timestamp", String(ms));
  }
  try {
    const doc = await getJSON("/api/messages?" + q);
    const mode = f.get("decode");
    document.getElementById("message-info").textContent =
      `${doc.topic}-${doc.partition}: offsets ${doc.log_start_offset}..${doc.high_watermark}, ` +
      `${doc.records.length} shown from ${doc.first}`;
    fill("message-rows", doc.records.map(r => el("tr", {"data-offset": r.offset},
      el("td", {class: "num"}, r.offset),
      el("td", {}, new Date(r.timestamp).toISOString(), el("div", {class: "muted"}, r.timestamp_type)),
      el("td", {}, shown(r.key, mode)), el("td", {class: "value"}, shown(r.value, mode)),
      el("td", {}, r.headers.map(h => el("div", {}, el("b", {}, h.key + ": "), shown(h.value, mode)))))));
  } catch (err) {
    notice("read failed: " + err.message, false);
  }
}

function pairs(text) {
  return (text || "").split(",").map(s => s.trim()).filter(Boolean).map(s => {
    const i = s.indexOf("=");
    return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
  });
}

document.getElementById("browse").addEventListener("submit", browse);
document.getElementById("create-topic").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  act("create " + f.get("name"), "/api/topics", {name: f.get("name"), partitions: Number(f.get("partitions")),
      replication_factor: Number(f.get("replication_factor")), configs: Object.fromEntries(pairs(f.get("configs")))})
    .then(doc => { if (doc) ev.target.reset(); });
});
document.getElementById("produce").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  act("produce to " + f.get("topic"), "/api/produce", {topic: f.get("topic"), partition: f.get("partition"),
      key: f.get("key"), value: f.get("value"), headers: pairs(f.get("headers"))},
      doc => `stored at ${doc.topic}-${doc.partition} offset ${doc.offset}`);
});

refresh();
setInterval(refresh, REFRESH_MS);
