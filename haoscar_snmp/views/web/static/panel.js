// The monitoring page: draws the daemon's snapshot and redraws it on every push of the
// server-sent event stream (/live). Text goes in through textContent only, never as HTML.
"use strict";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function ago(t) {
  if (!t) return "never";
  const s = t.ago_s;
  if (s < 120) return Math.round(s) + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function table(id, columns, rows) {
  tableIn(document.querySelector("#" + id + " .content"), columns, rows);
}

function tableIn(box, columns, rows) {
  const t = document.createElement("table");
  const head = document.createElement("tr");
  for (const [title] of columns) {
    const th = document.createElement("th");
    th.textContent = title;
    head.appendChild(th);
  }
  t.appendChild(head);
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const [, get, state] of columns) cell(tr, get(r), state ? "state-" + get(r) : null);
    t.appendChild(tr);
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    cell(tr, "none");
    tr.firstChild.colSpan = columns.length;
    t.appendChild(tr);
  }
  box.replaceChildren(t);
}

function ppm(v) { return v === null || v === undefined ? "" : (v / 10000).toFixed(4) + " %"; }

function draw(s) {
  const c = s.cluster;
  table("health", [["cluster", r => r.name], ["status", r => r.status, true], ["health", () => s.health.status, true],
    ["this head", r => r.this_head], ["role here", r => r.this_head_role, true], ["active head", r => r.active_head],
    ["why", () => s.health.reasons.map(x => x.text).join("; ")]], [c]);
  table("heads", [["head", r => r.name + (r.this_head ? " (this one)" : "")], ["role", r => r.role, true],
    ["state", r => r.state, true], ["preferred", r => r.preferred_role], ["last heartbeat", r => r.this_head ? "" : ago(r.last_heartbeat)],
    ["role changes", r => r.role_changes]], s.heads);
  table("paths", [["head", r => r.head], ["LAN", r => r.lan], ["state", r => r.state, true], ["rtt ms", r => r.rtt_ms],
    ["sent", r => r.sent], ["received", r => r.received], ["lost", r => r.lost], ["last heard", r => ago(r.last_heard)]],
    s.heartbeat_paths);
  table("lans", [["node", r => r.node], ["LAN", r => r.lan], ["interface", r => r.name], ["address", r => r.address],
    ["state", r => r.state, true], ["carrier", r => r.carrier], ["rtt ms", r => r.rtt_ms], ["changed", r => ago(r.last_change)]],
    s.lan_interfaces);
  table("services", [["#", r => r.index], ["service", r => r.name], ["state", r => r.state, true], ["rung", r => r.rung],
    ["row", r => r.row_status], ["enabled", r => r.enabled ? "yes" : "no"], ["restarts", r => r.restarts],
    ["failures in a row", r => r.consecutive_failures], ["last action", r => r.last_action], ["why", r => r.last_reason]],
    s.services);
  table("aliases", [["#", r => r.index], ["address", r => r.address + "/" + r.prefix_length], ["interface", r => r.interface],
    ["state", r => r.state, true], ["holder", r => r.holder || "nobody"], ["row", r => r.row_status]], s.aliases);
  membership(s.membership);
  table("alarms", [["#", r => r.index], ["severity", r => r.severity, true], ["cause", r => r.cause], ["object", r => r.object],
    ["text", r => r.text], ["raised", r => ago(r.raised)]], s.alarms);
  table("events", [["#", r => r.index], ["when", r => r.time ? r.time.at : ""], ["type", r => r.type],
    ["severity", r => r.severity, true], ["subject", r => r.subject], ["text", r => r.text]], s.events);
  const acct = s.accounting;
  const rows = [];
  // Each subject carries one list per figure, aligned with acct.windows.
  for (const subj of acct.subjects) {
    acct.windows.forEach((w, i) => rows.push({kind: subj.kind, subject: subj.subject, window: w.name,
      availability_ppm: subj.availability_ppm[i], outages: subj.outages[i], downtime_s: subj.downtime_s[i],
      mttr_s: subj.mttr_s[i], mtbf_s: subj.mtbf_s[i]}));
  }
  table("accounting", [["kind", r => r.kind], ["subject", r => r.subject], ["window", r => r.window],
    ["availability", r => ppm(r.availability_ppm)], ["outages", r => r.outages], ["downtime s", r => r.downtime_s],
    ["MTTR s", r => r.mttr_s], ["MTBF s", r => r.mtbf_s]], rows);
  const live = document.getElementById("live");
  live.textContent = "live: updated " + s.generated.at;
  live.className = "live on";
  document.body.dataset.role = c.this_head_role;
}

// A cluster past two heads: Corosync's membership and quorum, Pacemaker's nodes and
// resources. The section stays hidden while the snapshot has no membership.
function links(ls) {
  return ls.map(l => l.link + ": " + (l.connected ? "up" : "down") +
    (l.latency_ms === null ? "" : " " + l.latency_ms.toFixed(2) + " ms")).join(", ");
}

function membership(m) {
  const section = document.getElementById("membership");
  section.hidden = !m;
  if (!m) return;
  tableIn(document.getElementById("membership-quorum"), [["corosync", r => r.corosync, true],
    ["quorum", r => r.quorum, true], ["votes", r => r.quorum === "unknown" ? "" : r.total_votes + " of " + r.expected_votes],
    ["ring", r => r.ring_id], ["pacemaker", r => r.pacemaker, true], ["DC", r => r.dc],
    ["changes", r => r.changes], ["last change", r => ago(r.last_changed)]], [m]);
  tableIn(document.getElementById("membership-nodes"), [["id", r => r.index],
    ["node", r => r.name + (r.this_node ? " (this one)" : "")], ["state", r => r.state, true],
    ["member", r => r.member ? "yes" : "no"], ["online", r => r.online ? "yes" : "no"],
    ["standby", r => r.standby ? "yes" : "no"], ["DC", r => r.dc ? "DC" : ""], ["votes", r => r.votes],
    ["links", r => links(r.links)]], m.nodes);
  tableIn(document.getElementById("membership-resources"), [["#", r => r.index], ["resource", r => r.id],
    ["agent", r => r.agent], ["role", r => r.role, true], ["node", r => r.node],
    ["failed", r => r.failed ? "failed" : "", true], ["fail count", r => r.fail_count],
    ["last result", r => r.last_result], ["address", r => r.address]], m.resources);
}

function connect() {
  const live = document.getElementById("live");
  const feed = new EventSource("/live");
  feed.onmessage = (m) => draw(JSON.parse(m.data));
  feed.onerror = () => {
    live.textContent = "not live: reconnecting...";
    live.className = "live off";
    if (feed.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.getElementById("monitor")) connect();
});
