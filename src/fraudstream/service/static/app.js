// fraudstream demo UI: plain JavaScript, no build step, nothing fetched from elsewhere.
// 64-bit ids are read from the server's "<field>Str" strings, never from JSON numbers.
"use strict";

const $ = (sel) => document.querySelector(sel);
const MAX_TX_ROWS = 25;
const MAX_ALERTS = 100;
const LIST_RATE_LIMIT = 150; // above this many tx/s the list shows a sample under an overlay
const SAMPLES = [
  { name: "big spender: sum of payments per payee > 5000 in 10 min", rule: {
    ruleId: "101", ruleState: "ACTIVE", groupingKeyNames: ["payeeId"], aggregateFieldName: "paymentAmount",
    aggregatorFunctionType: "SUM", limitOperatorType: "GREATER", limit: 5000, windowMinutes: 10 } },
  { name: "many payments: count per payment type >= 50 in 1 min", rule: {
    ruleId: "102", ruleState: "ACTIVE", groupingKeyNames: ["paymentType"], aggregateFieldName: "COUNT_FLINK",
    aggregatorFunctionType: "SUM", limitOperatorType: "GREATER_EQUAL", limit: 50, windowMinutes: 1 } },
  { name: "large single payment: max amount per beneficiary > 990", rule: {
    ruleId: "103", ruleState: "ACTIVE", groupingKeyNames: ["beneficiaryId"], aggregateFieldName: "paymentAmount",
    aggregatorFunctionType: "MAX", limitOperatorType: "GREATER", limit: 990, windowMinutes: 60 } },
  { name: "pair check: sum per payee and beneficiary > 20,000,000 in 30 days", rule: {
    ruleId: "104", ruleState: "ACTIVE", groupingKeyNames: ["payeeId", "beneficiaryId"],
    aggregateFieldName: "paymentAmount", aggregatorFunctionType: "SUM", limitOperatorType: "GREATER",
    limit: 20000000, windowMinutes: 43200 } },
];

// ---- token -------------------------------------------------------------------------------------
let token = null;
(function readToken() {
  const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (match) {
    token = decodeURIComponent(match[1]);
    sessionStorage.setItem("fraudstream-token", token);
    history.replaceState(null, "", location.pathname);
  } else {
    token = sessionStorage.getItem("fraudstream-token");
  }
})();

function askToken() {
  $("#token-form").hidden = false;
}
$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("#token-input").value.trim();
  sessionStorage.setItem("fraudstream-token", token);
  $("#token-form").hidden = true;
  connectAll();
  refreshRules();
});

// ---- REST --------------------------------------------------------------------------------------
async function api(method, path, body) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body });
  if (response.status === 401) askToken();
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function toast(text) {
  const el = document.createElement("div");
  el.className = "toast";
  el.textContent = text;
  document.body.appendChild(el);
  setTimeout(() => el.remove(), 3000);
}

// ---- rate slider -------------------------------------------------------------------------------
// Logarithmic: position 0 holds the generator, 1..100 maps to 1..100,000 tx/s.
const sliderToSpeed = (v) => (v <= 0 ? 0 : Math.round(Math.pow(10, (v * 5) / 100)));
const speedToSlider = (s) => (s <= 0 ? 0 : Math.round((Math.log10(s) * 100) / 5));
let speedTimer = null;
$("#speed").addEventListener("input", () => {
  const speed = sliderToSpeed(Number($("#speed").value));
  $("#speed-label").textContent = speed.toLocaleString() + " tx/s";
  clearTimeout(speedTimer);
  speedTimer = setTimeout(() => api("POST", "/api/generatorSpeed/" + speed), 120);
});
let generating = true;
$("#gen-toggle").addEventListener("click", async () => {
  const r = await api("POST", generating ? "/api/stopTransactionsGeneration" : "/api/startTransactionsGeneration");
  if (r.ok) showGenerator(r.data);
});
function showGenerator(g) {
  generating = g.generating;
  $("#gen-toggle").textContent = generating ? "stop" : "start";
}

// ---- transactions ------------------------------------------------------------------------------
const txBody = $("#tx-list");
const fmtTime = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
function addTransactions(items) {
  const rows = document.createDocumentFragment();
  for (const tx of items.slice(-MAX_TX_ROWS)) {
    const tr = document.createElement("tr");
    tr.className = "tx-row";
    for (const [text, cls] of [
      [fmtTime(tx.eventTime), ""], [tx.transactionIdStr, ""], [tx.payeeIdStr, ""],
      [tx.beneficiaryIdStr, ""], [Number(tx.paymentAmount).toFixed(2), "amount"], [tx.paymentType, ""],
    ]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    rows.prepend(tr);
  }
  txBody.prepend(rows);
  while (txBody.children.length > MAX_TX_ROWS) txBody.lastChild.remove();
}

// ---- rules -------------------------------------------------------------------------------------
const ruleColor = (id) => `hsl(${(Number(BigInt(id) % 360n) * 137) % 360} 65% 45%)`;
async function refreshRules() {
  const r = await api("GET", "/api/rules");
  if (!r.ok) return;
  const box = $("#rules");
  box.replaceChildren();
  for (const rule of r.data) box.appendChild(ruleCard(rule));
}
function ruleCard(rule) {
  const id = rule.ruleIdStr;
  const card = document.createElement("div");
  card.className = "rule-card";
  card.dataset.ruleId = id;
  card.style.setProperty("--rule-color", ruleColor(id));
  const head = document.createElement("div");
  head.className = "head";
  const idEl = document.createElement("span");
  idEl.className = "id";
  idEl.textContent = "Rule " + id;
  const badge = document.createElement("span");
  badge.className = "badge " + rule.ruleState;
  badge.textContent = rule.ruleState;
  const version = document.createElement("span");
  version.className = "version";
  version.textContent = rule.version ? "v" + rule.version : "";
  head.append(idEl, badge, version);
  const sentence = document.createElement("div");
  sentence.className = "sentence";
  // The card shows id, version and state already; keep the sentence itself.
  const text = String(rule.description).replace(/^Rule \d+ \([^)]*\):\s*/, "");
  sentence.textContent = text.charAt(0).toUpperCase() + text.slice(1);
  const actions = document.createElement("div");
  actions.className = "actions";
  const toggle = button(rule.ruleState === "ACTIVE" ? "pause" : "resume", async () => {
    const r = await api("POST", `/api/rules/${id}/${rule.ruleState === "ACTIVE" ? "pause" : "resume"}`);
    if (r.ok) card.replaceWith(ruleCard(r.data)); else toast(r.data?.detail || "failed");
  });
  toggle.className = "toggle";
  const del = button("delete", async () => {
    const r = await api("DELETE", `/api/rules/${id}`);
    if (r.ok) card.remove(); else toast(r.data?.detail || "failed");
  });
  del.className = "delete";
  actions.append(toggle, del);
  card.append(head, sentence, actions);
  return card;
}
function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}
$("#sync-rules").addEventListener("click", async () => {
  const r = await api("POST", "/api/syncRules");
  if (r.ok) toast(`${r.data.pushed} rules sent to the job`);
});
$("#clear-state").addEventListener("click", async () => {
  const r = await api("POST", "/api/clearState");
  if (r.ok) toast("window state cleared");
});
$("#delete-all").addEventListener("click", async () => {
  if (!confirm("Delete every rule?")) return;
  const r = await api("DELETE", "/api/rules");
  if (r.ok) refreshRules();
});

// ---- add-rule form -----------------------------------------------------------------------------
const form = $("#rule-form");
for (const [i, s] of SAMPLES.entries()) {
  const o = document.createElement("option");
  o.value = String(i);
  o.textContent = s.name;
  $("#sample").appendChild(o);
}
function fillForm(rule) {
  for (const [name, value] of Object.entries(rule)) {
    const el = form.elements.namedItem(name);
    if (el) el.value = Array.isArray(value) ? value.join(", ") : String(value);
  }
}
$("#sample").addEventListener("change", () => fillForm(SAMPLES[Number($("#sample").value)].rule));
fillForm(SAMPLES[0].rule);

// The rule as JSON text; the id is spliced in as digits so 64-bit ids stay exact.
function formBody() {
  const f = form.elements;
  const num = (text) => (text.trim() === "" || isNaN(Number(text)) ? text : Number(text));
  const rest = {
    ruleState: f.ruleState.value,
    groupingKeyNames: f.groupingKeyNames.value.split(",").map((s) => s.trim()).filter(Boolean),
    aggregateFieldName: f.aggregateFieldName.value.trim(),
    aggregatorFunctionType: f.aggregatorFunctionType.value,
    limitOperatorType: f.limitOperatorType.value,
    limit: num(f.limit.value),
    windowMinutes: num(f.windowMinutes.value),
  };
  const id = f.ruleId.value.trim();
  const idJson = /^\d{1,19}$/.test(id) ? id : JSON.stringify(id);
  return '{"ruleId":' + idJson + "," + JSON.stringify(rest).slice(1);
}
function clearErrors() {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("label.invalid")) el.classList.remove("invalid");
  $("#form-errors").textContent = "";
}
function showErrors(data) {
  const errors = (data && data.errors) || {};
  const general = [];
  for (const [field, message] of Object.entries(errors)) {
    const slot = form.querySelector(`.field-error[data-field="${CSS.escape(field)}"]`);
    if (slot) {
      slot.textContent = message;
      slot.closest("label").classList.add("invalid");
    } else {
      general.push(`${field}: ${message}`);
    }
  }
  if (!Object.keys(errors).length) general.push(typeof data?.detail === "string" ? data.detail : "refused");
  $("#form-errors").textContent = general.join("; ");
}
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors();
  const r = await api("POST", "/api/rules", formBody());
  if (r.ok) {
    toast(`rule ${r.data.ruleIdStr} saved (v${r.data.version})`);
    refreshRules();
  } else {
    showErrors(r.data);
  }
});
$("#backtest-button").addEventListener("click", async () => {
  clearErrors();
  const r = await api("POST", "/api/backtest", formBody());
  if (r.ok) {
    $("#backtest-result").textContent =
      `over the last ${r.data.transactions.toLocaleString()} transactions this rule would have raised ` +
      `${r.data.alertCount.toLocaleString()} alerts`;
  } else {
    showErrors(r.data);
  }
});

// ---- alerts ------------------------------------------------------------------------------------
const alertList = $("#alerts");
function alertItem(alert, fresh) {
  const li = document.createElement("li");
  li.className = "alert" + (fresh ? " new" : "");
  li.dataset.ruleId = alert.ruleIdStr;
  li.style.setProperty("--rule-color", ruleColor(alert.ruleIdStr));
  const head = document.createElement("div");
  const tag = document.createElement("span");
  tag.className = "rule-tag";
  tag.textContent = `Rule ${alert.ruleIdStr}`;
  head.append(tag, ` · key ${alert.key} · tx ${alert.triggeringEvent?.transactionIdStr ?? ""}`);
  const why = document.createElement("div");
  why.className = "explanation";
  why.textContent = alert.explanation;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = new Date(alert.alertTime).toLocaleTimeString();
  li.append(head, why, meta);
  li.addEventListener("mouseenter", () => highlightRule(alert.ruleIdStr, true));
  li.addEventListener("mouseleave", () => highlightRule(alert.ruleIdStr, false));
  return li;
}
function highlightRule(id, on) {
  const card = document.querySelector(`.rule-card[data-rule-id="${CSS.escape(id)}"]`);
  if (card) card.classList.toggle("highlight", on);
}
function flashRule(id) {
  const card = document.querySelector(`.rule-card[data-rule-id="${CSS.escape(id)}"]`);
  if (!card) return;
  card.classList.add("flash");
  clearTimeout(card.flashTimer);
  card.flashTimer = setTimeout(() => card.classList.remove("flash"), 600);
}
function addAlerts(items, fresh) {
  const frag = document.createDocumentFragment();
  for (const alert of items.slice(-MAX_ALERTS)) frag.prepend(alertItem(alert, fresh));
  alertList.prepend(frag);
  while (alertList.children.length > MAX_ALERTS) alertList.lastChild.remove();
  if (fresh) for (const id of new Set(items.map((a) => a.ruleIdStr))) flashRule(id);
}
async function loadAlertHistory() {
  const r = await api("GET", "/api/alerts?limit=30");
  if (r.ok) addAlerts(r.data.items.slice().reverse(), false);
}

// ---- latency chart -----------------------------------------------------------------------------
const points = [];
const MAX_POINTS = 120;
function drawLatency() {
  const canvas = $("#latency");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== width * ratio) { canvas.width = width * ratio; canvas.height = height * ratio; }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 44, bottom = height - 18, top = 8, right = width - 8;
  const max = Math.max(1, ...points.map((p) => p.p99)) * 1.15;
  g.strokeStyle = "#e3e6eb"; g.fillStyle = "#6b7280"; g.font = "11px system-ui"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = bottom - ((bottom - top) * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
    g.fillText((max * i / 4).toFixed(max < 10 ? 1 : 0), 4, y + 4);
  }
  g.fillText(`last ${Math.round(MAX_POINTS / 2)} s`, left, height - 4);
  const x = (i) => left + ((right - left) * (i + MAX_POINTS - points.length)) / (MAX_POINTS - 1);
  const y = (v) => bottom - ((bottom - top) * v) / max;
  for (const [key, color] of [["p50", "#2f6fde"], ["p99", "#dc2626"]]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    points.forEach((p, i) => (i ? g.lineTo(x(i), y(p[key])) : g.moveTo(x(i), y(p[key]))));
    g.stroke();
  }
}
function addLatency(items) {
  for (const p of items) points.push(p);
  while (points.length > MAX_POINTS) points.shift();
  drawLatency();
}
window.addEventListener("resize", drawLatency);

// ---- WebSockets --------------------------------------------------------------------------------
const drops = { transactions: 0, alerts: 0, latency: 0 };
const handlers = {
  transactions: (m) => addTransactions(m.items),
  alerts: (m) => addAlerts(m.items, true),
  latency: (m) => addLatency(m.items),
};
const sockets = {};
function connect(name) {
  if (!token) return;
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/${name}`);
  sockets[name] = ws;
  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (ev) => {
    const message = JSON.parse(ev.data);
    drops[name] = message.dropped || 0;
    $("#drops").textContent = String(drops.transactions + drops.alerts + drops.latency);
    handlers[name](message);
  };
  ws.onclose = (ev) => {
    if (ev.code === 4401) { askToken(); return; }
    setTimeout(() => connect(name), 1000);
  };
}
function connectAll() {
  for (const name of Object.keys(handlers)) {
    if (sockets[name]) { sockets[name].onclose = null; sockets[name].close(); }
    connect(name);
  }
}

// ---- status ------------------------------------------------------------------------------------
async function pollHealth() {
  const r = await api("GET", "/api/health");
  if (r.ok) {
    const h = r.data;
    $("#job-status").textContent = h.job;
    const rate = h.generator.eventsPerSecond;
    $("#events-rate").textContent = rate.toLocaleString();
    $("#tx-rate").textContent = rate.toLocaleString();
    $("#alerts-rate").textContent = h.alertsPerSecond.toLocaleString();
    $("#alerts-stored").textContent = h.alertsStored.toLocaleString();
    $("#overlay-rate").textContent = rate.toLocaleString();
    $("#tx-overlay").hidden = rate <= LIST_RATE_LIMIT;
    showGenerator(h.generator);
    if (document.activeElement !== $("#speed")) {
      $("#speed").value = String(speedToSlider(h.generator.speed));
      $("#speed-label").textContent = Math.round(h.generator.speed).toLocaleString() + " tx/s";
    }
  }
  setTimeout(pollHealth, 1000);
}

if (!token) askToken();
refreshRules();
loadAlertHistory();
connectAll();
pollHealth();
drawLatency();
