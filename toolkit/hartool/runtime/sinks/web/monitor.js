// hartool monitor --serve: one row per device publishing under the prefix, refreshed by SSE.
"use strict";
function ago(s) { return s === null || s === undefined ? "-" : s < 1 ? "now" : s.toFixed(0) + " s ago"; }

function render(snap) {
  const now = snap.now;
  document.getElementById("summary").textContent =
    snap.devices.length + " devices, " + snap.online + " online; malformed messages " + snap.malformed;
  const body = document.querySelector("#devices tbody");
  body.innerHTML = "";
  snap.devices.forEach((d) => {
    const tr = document.createElement("tr");
    tr.className = d.online ? "online" : "offline";
    tr.dataset.device = d.name;
    const cells = [d.name, d.activity || "-", fmtPct(d.confidence), d.windows_per_s.toFixed(2), d.windows,
                   d.drops, ago(d.last_seen === null ? null : now - d.last_seen), d.online ? "online" : "offline"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) td.className = "activity";
      if (i === 7) td.className = "state-" + text;
      tr.appendChild(td);
    });
    body.appendChild(tr);
  });
}

const es = new EventSource("/events");
const conn = document.getElementById("conn");
es.addEventListener("hello", (e) => { render(JSON.parse(e.data)); conn.textContent = "live"; conn.className = "online"; });
es.addEventListener("devices", (e) => render(JSON.parse(e.data)));
es.onerror = () => { conn.textContent = "reconnecting"; conn.className = "offline"; };
