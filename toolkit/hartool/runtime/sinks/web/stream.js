// hartool stream --serve: the current activity, a colour-band timeline and probability lines, fed by SSE.
"use strict";
const WINDOW_S = 300;            // the timeline shows the last five minutes of device time
// Device time (t_end_s) when the stream has it, so a replay at 20x fills the band as fast as it plays.
const when = (w) => (typeof w.t_end_s === "number" ? w.t_end_s : w.received);
const MAX_POINTS = 300;          // probability lines keep the last 300 windows
let labels = [];
let history = [];                // window events, oldest first

function legend() {
  const el = document.getElementById("legend");
  el.innerHTML = "";
  labels.forEach((name, i) => {
    const span = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = labelColour(i);
    span.appendChild(sw);
    span.appendChild(document.createTextNode(name));
    el.appendChild(span);
  });
}

function showCurrent(w) {
  const act = document.getElementById("activity");
  act.textContent = w.label;
  act.dataset.label = w.label;
  act.dataset.window = w.window;
  act.style.color = labelColour(Math.max(0, labels.indexOf(w.label)));
  document.getElementById("confidence").textContent = fmtPct(w.confidence);
  document.getElementById("uncertain").textContent =
    w.calibrated === false ? "(uncertain: orientation not calibrated yet, walk a few steps)" : w.uncertain ? "(uncertain)" : "";
}

function drawTimeline() {
  const c = document.getElementById("timeline"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (!history.length) return;
  const last = history[history.length - 1];
  const step = history.length > 1 ? Math.max(0, when(last) - when(history[history.length - 2])) : 1;
  const end = when(last) + step, start = end - WINDOW_S;
  const x = (t) => (t - start) / WINDOW_S * c.width;
  for (let i = 0; i < history.length; i++) {
    const w = history[i], next = i + 1 < history.length ? when(history[i + 1]) : end;
    if (next < start || next < when(w)) continue;   // before the band, or the clock restarted
    g.fillStyle = labelColour(Math.max(0, labels.indexOf(w.label)));
    const from = Math.max(when(w), start);
    g.fillRect(x(from), 0, Math.max(1, x(next) - x(from)), c.height);
  }
}

function drawProbs() {
  const c = document.getElementById("probs"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  const pts = history.slice(-MAX_POINTS);
  if (pts.length < 2) return;
  const dx = c.width / (MAX_POINTS - 1);
  labels.forEach((_, k) => {
    g.strokeStyle = labelColour(k);
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach((w, i) => {
      const y = c.height - 4 - (c.height - 8) * (w.probs[k] || 0);
      if (i === 0) g.moveTo(i * dx, y); else g.lineTo(i * dx, y);
    });
    g.stroke();
  });
}

function showCounters(counters) {
  const body = document.querySelector("#counters tbody");
  body.innerHTML = "";
  Object.keys(counters).forEach((key) => {
    const tr = document.createElement("tr");
    const k = document.createElement("td"), v = document.createElement("td");
    k.textContent = key.replace(/_/g, " ");
    v.textContent = counters[key];
    v.id = "counter-" + key;
    tr.appendChild(k); tr.appendChild(v);
    body.appendChild(tr);
  });
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; drawTimeline(); drawProbs(); });
}

function addWindow(w) {
  if (labels.indexOf(w.label) < 0) { labels.push(w.label); legend(); }  // an enrolled head's new label
  history.push(w);
  if (history.length > 2000) history = history.slice(-1500);
  showCurrent(w);
  redraw();
}

function connect() {
  const conn = document.getElementById("conn");
  const es = new EventSource("/events");
  es.addEventListener("hello", (e) => {
    const snap = JSON.parse(e.data);
    labels = snap.labels;
    document.getElementById("title").textContent = snap.title;
    document.title = snap.title + " - hartool";
    legend();
    history = [];
    snap.history.forEach(addWindow);
    showCounters(snap.counters);
    conn.textContent = "live"; conn.className = "online";
  });
  es.addEventListener("window", (e) => addWindow(JSON.parse(e.data)));
  es.addEventListener("counters", (e) => showCounters(JSON.parse(e.data)));
  es.onerror = () => { conn.textContent = "reconnecting"; conn.className = "offline"; };
}

document.getElementById("minutes").textContent = WINDOW_S / 60;
connect();
