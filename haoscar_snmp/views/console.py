"""`haoscar-snmp status`: the cluster at a glance, read from the running daemon's status
socket, as text for a person (or the snapshot as JSON with --json).

Rules:

* the exit code is the health, as a monitoring plugin's: 0 ok, 1 degraded (warning),
  2 failed (critical), 3 unknown (the daemon does not answer); so the command serves as
  a Nagios/Icinga-style check as it is;
* colour only on a terminal, and never with NO_COLOR set (any value) or --no-color;
* long tables stay short: past `LIST_MAX` rows, only the rows that are not well are
  listed, with a count of the rest (the JSON has every row);
* --watch redraws in place (cursor home, each line cleared to its end, the rest of the
  screen cleared) so the screen does not flicker; it stops on Ctrl-C and is bounded by
  `WATCH_MIN_S`..`WATCH_MAX_S` between refreshes;
* reading the socket has a timeout (`TIMEOUT_S`): a hung daemon is reported as not
  answering, never waited for.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from haoscar_snmp.views.health import exit_code

UNKNOWN = 3
TIMEOUT_S = 5.0
LIST_MAX = 20           # rows of one table listed in full; beyond, only those not well
EVENTS_SHOWN = 10
WATCH_MIN_S, WATCH_MAX_S = 0.5, 3600.0

GOOD = {"ok", "up", "running", "held", "inSync", "active", "standby", "reached", "normal", "watching",
        "standalone"}
BAD = {"failed", "down", "critical", "conflict", "drift", "splitBrain", "lost", "major"}
COLOURS = {"good": "32", "bad": "1;31", "warn": "33", "dim": "2", "head": "1"}


class Unreachable(Exception):
    """The daemon does not answer on its status socket (the message says which and why)."""


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the standard library's client, with its own connect)."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def fetch(path: Path, events: int = EVENTS_SHOWN, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The snapshot from the daemon behind `path`; Unreachable when nothing answers."""
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request("GET", f"/status?events={events}")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise Unreachable(f"{path}: the daemon answered HTTP {response.status}: {body[:200]!r}")
        return json.loads(body)
    except FileNotFoundError:
        raise Unreachable(f"{path} does not exist: the daemon is not running (or uses another "
                          f"state directory: see -c / --state-dir)") from None
    except ConnectionRefusedError:
        raise Unreachable(f"nothing answers on {path}: the daemon is not running") from None
    except PermissionError:
        raise Unreachable(f"{path}: permission denied (run as the daemon's user or root)") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unreachable(f"no answer from the daemon on {path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


def use_colour(stream: TextIO, flag_off: bool, environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Colour only for a terminal, unless NO_COLOR is set (to anything) or --no-color."""
    return not flag_off and "NO_COLOR" not in environ and stream.isatty()


def duration(seconds: float) -> str:
    """12s, 5m12s, 2h03m, 4d02h: short and exact enough for a person."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def ago(when: dict[str, Any] | None) -> str:
    return "never" if when is None else f"{duration(when['ago_s'])} ago"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def loss(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f}%"


def percent(ppm: int) -> str:
    return f"{ppm / 10_000:.4f}%"


class Painter:
    """Colours words by what they say (good, bad, anything else a warning), or not at all."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, text: str, kind: str | None = None) -> str:
        if not self.on:
            return text
        kind = kind or ("good" if text in GOOD else "bad" if text in BAD else "warn")
        return f"\x1b[{COLOURS[kind]}m{text}\x1b[0m"


def render(snap: dict[str, Any], colour: bool = False) -> str:
    """The snapshot as lines of text (no trailing newline)."""
    p = Painter(colour)
    out: list[str] = []
    c, health = snap["cluster"], snap["health"]
    verdict = p(health["status"].upper(), _kind(health["status"]))
    out.append(f"{p('cluster', 'head')} {c['name']}  status {p(c['status'])}  health {verdict}"
               f"  at {snap['generated']['at']}")
    out.append(f"this head {c['this_head']}: {p(c['this_head_role'])} ({c['this_head_state']})  "
               f"agent {c['agent_version'] or '?'}  up {duration(c['uptime_s'])}"
               f"  active head {c['active_head'] or '-'}")
    out += [f"  {p(r['level'], _kind(r['level']))}: {r['text']}" for r in health["reasons"]]
    _section(out, p, "heads", snap["heads"], lambda h: (
        f"{h['name']:<16} {p(h['role']):<8} state {h['state']:<10} preferred {h['preferred_role']:<8}"
        + (" (this head)" if h["this_head"] else f" heard {ago(h['last_heartbeat'])}")
        + ("" if h["public_state"] == "notWatched" else f"  public {p(h['public_state'])}")), None)
    _section(out, p, "heartbeat paths", snap["heartbeat_paths"], lambda x: (
        f"{x['head']:<16} {x['lan']:<6} {p(x['state']):<4}  rtt {ms(x['rtt_ms'])}  jitter {ms(x['jitter_ms'])}"
        f"  loss {loss(x['loss_ratio'])}"
        f"  heard {ago(x['last_heard'])}"), lambda x: x["state"] == "up")
    lans = "  ".join(f"{x['lan']} {p(x['state'])} ({x['up']} up, {x['down']} down)" for x in snap["lans"])
    out += ["", f"{p('LANs', 'head')}  {lans}"]
    _section(out, p, "LAN interfaces", snap["lan_interfaces"], lambda x: (
        f"{x['node']:<16} {x['lan']:<6} {x['name'] or '-':<10} {x['address']:<16} {p(x['state'])}"
        f"  rtt {ms(x['rtt_ms'])}  changed {ago(x['last_change'])}"
        + (f"  ({x['last_error']})" if x["last_error"] else "")), lambda x: x["state"] == "up")
    _section(out, p, "services", snap["services"], lambda x: (
        f"{x['name']:<20} {p(x['state']):<9}  rung {p(x['rung'])}  restarts {x['restarts']}"
        f"  checked {ago(x['last_check'])}" + (f"  ({x['last_reason']})" if x["last_reason"] else "")),
        lambda x: x["state"] in ("running", "stopped", "disabled") and x["rung"] == "watching")
    _section(out, p, "aliases", snap["aliases"], lambda x: (
        f"{x['address']}/{x['prefix_length']} on {x['interface']:<8} {p(x['state'])}"
        f"  holder {p(x['holder'], 'good') if x['holder'] else p('none', 'bad')}"
        + (f"  claimed by {x['claimed_by']}" if x["claimed_by"] else "")), lambda x: bool(x["holder"]))
    if snap.get("membership") is not None:
        _membership(out, p, snap["membership"])
    _section(out, p, "active alarms", snap["alarms"], lambda x: (
        f"{p(x['severity']):<9} {x['cause']:<24} {x['object']:<16} raised {ago(x['raised'])}  {x['text']}"), None)
    _section(out, p, "last events", snap["events"], lambda x: (
        f"{x['time']['at'][:19].replace('T', ' ')}  {x['severity']:<8} {x['type']:<20} {_event_text(x)}"),
        None, empty="none")
    s = snap["config_sync"]
    out += ["", f"{p('configuration', 'head')}  {p(s['state'])}  version {s['version']}"
            + (f" by {s['version_head']}" if s["version_head"] else "")
            + (f"  peer version {s['peer_version']}" if s["peer"] else "")
            + (f"  differs: {s['differing']}" if s["differing"] else "")]
    q, pub = snap["quorum"], snap["public_reach"]
    out.append(f"{p('quorum', 'head')}  " + ((p("ok") if q["ok"] else p("failed")) + f" (checked {ago(q['checked'])})"
                                             if q["configured"] else "not configured")
               + f"   {p('public reach', 'head')}  "
               + (f"{pub['reached']}/{pub['watched']} targets"
                  + (f", {p('lost')}: {pub['lost']}" if pub["lost"] else "")
                  if pub["configured"] else "not configured"))
    perf = snap["performance"]
    out.append(f"{p('failovers', 'head')}  {perf['failovers']}"
               + (f", last {ago(perf['last_failover'])} in {perf['last_failover_duration_ms']} ms"
                  if perf["last_failover"] else ""))
    _availability(out, p, snap["accounting"])
    return "\n".join(out)


def _membership(out: list[str], p: Painter, m: dict[str, Any]) -> None:
    """A cluster past two heads: Corosync's membership and quorum, Pacemaker's nodes and
    resources."""
    quorum = m["quorum"]
    votes = f" ({m['total_votes']} of {m['expected_votes']} expected votes)" if quorum != "unknown" else ""
    out += ["", f"{p('membership', 'head')}  corosync {p(m['corosync'], _known(m['corosync']))}"
            f"  quorum {p(quorum, 'good' if quorum == 'quorate' else 'bad')}{votes}"
            f"  ring {m['ring_id'] or '-'}  pacemaker {p(m['pacemaker'], _known(m['pacemaker']))}"
            f"  DC {m['dc'] or '-'}  changes {m['changes']}"]
    _section(out, p, "cluster nodes", m["nodes"], lambda x: (
        f"{x['name']:<16} {p(x['state'], NODE_KINDS.get(x['state'], 'warn')):<11}"
        + ("  DC" if x["dc"] else "") + ("  (this node)" if x["this_node"] else "")
        + (f"  links {_links(p, x['links'])}" if x["links"] else "")),
        lambda x: x["state"] == "online" and all(link["connected"] for link in x["links"]))
    _section(out, p, "resources", m["resources"], lambda x: (
        f"{x['id']:<24} {p(x['role'], 'good' if x['active'] else 'warn'):<10}"
        f" on {x['node'] or '-':<12}" + (f"  {p('failed', 'bad')} ({x['last_result']})" if x["failed"] else "")
        + (f"  fail count {x['fail_count']}" if x["fail_count"] else "")
        + (f"  {x['address']}" if x["address"] else "")).rstrip(), lambda x: x["active"] and not x["fail_count"])


NODE_KINDS = {"online": "good", "member": "good", "left": "bad", "unclean": "bad"}


def _known(word: str) -> str:
    return "good" if word == "known" else "bad"


def _links(p: Painter, links: list[dict[str, Any]]) -> str:
    return " ".join(f"{link['link']}:" + (p("up", "good") if link["connected"] else p("down", "bad"))
                    + (f" {link['latency_ms']:.2f} ms" if link["latency_ms"] is not None else "")
                    for link in links)


def _kind(level: str) -> str:
    return {"ok": "good", "failed": "bad"}.get(level, "warn")


def _event_text(event: dict) -> str:
    """The event's text, after its subject unless the text already starts with it."""
    subject, text = event["subject"], event["text"]
    return text if not subject or text.startswith(f"{subject}:") else f"{subject}: {text}"


def _section(out: list[str], p: Painter, title: str, rows: list[dict[str, Any]],
             line: Callable[[dict[str, Any]], str], well: Callable[[dict[str, Any]], bool] | None,
             empty: str = "none") -> None:
    """A titled table; past LIST_MAX rows only those not `well` are listed."""
    out += ["", f"{p(title, 'head')} ({len(rows)})"]
    if not rows:
        out.append(f"  {empty}")
        return
    shown = rows
    if len(rows) > LIST_MAX and well is not None:
        shown = [r for r in rows if not well(r)][:LIST_MAX]
    elif len(rows) > LIST_MAX:
        shown = rows[:LIST_MAX]
    out += [f"  {line(r)}" for r in shown]
    if len(shown) < len(rows):
        out.append(f"  ... {len(rows) - len(shown)} more" + (" (all well)" if well is not None else "")
                   + ": --json lists every row")


def _availability(out: list[str], p: Painter, acct: dict[str, Any]) -> None:
    h = acct["headline"]
    out += ["", f"{p('availability', 'head')}  cluster over {h['window'] or '-'}: {percent(h['availability_ppm'])}"
            f"  MTTR {duration(h['mttr_s'])}  MTBF {duration(h['mtbf_s']) if h['mtbf_s'] else '-'}"]
    names = [w["name"] for w in acct["windows"]]
    subjects = acct["subjects"]
    listed = subjects
    if len(subjects) > LIST_MAX:
        listed = [s for s in subjects if s["kind"] in ("cluster", "head", "alias") or s["in_outage"]]
    for s in listed:
        figures = "  ".join(f"{n} {percent(ppm)}" for n, ppm in zip(names, s["availability_ppm"]) if ppm is not None)
        outage = f"  {p('in outage', 'bad')}" if s["in_outage"] else ""
        out.append(f"  {s['kind']:<14} {s['subject']:<20} {figures}{outage}")
    if len(listed) < len(subjects):
        out.append(f"  ... {len(subjects) - len(listed)} more subjects: --json lists them")


def status_exit(snap: dict[str, Any]) -> int:
    return exit_code(snap["health"]["status"])


def once(path: Path, as_json: bool, colour: bool, stream: TextIO | None = None) -> int:
    stream = stream or sys.stdout
    try:
        snap = fetch(path)
    except Unreachable as exc:
        print(f"haoscar-snmp status: UNKNOWN: {exc}", file=sys.stderr)
        return UNKNOWN
    stream.write(json.dumps(snap, indent=2) + "\n" if as_json else render(snap, colour) + "\n")
    return status_exit(snap)


def watch(path: Path, every: float, as_json: bool, colour: bool, stream: TextIO | None = None,
          sleep: Callable[[float], None] = time.sleep, rounds: int | None = None) -> int:
    """Refresh every `every` seconds until Ctrl-C (or `rounds` frames, for tests); the exit
    code is the last frame's. On a terminal each frame overwrites the last in place."""
    stream = stream or sys.stdout
    in_place = stream.isatty() and not as_json
    code = UNKNOWN
    drawn = 0
    if in_place:
        stream.write("\x1b[?25l\x1b[2J")        # hide the cursor; clear once, at the start
    try:
        while rounds is None or drawn < rounds:
            try:
                snap = fetch(path)
                text, code = (json.dumps(snap) if as_json else render(snap, colour)), status_exit(snap)
            except Unreachable as exc:
                text, code = f"UNKNOWN: {exc}", UNKNOWN
            stamp = time.strftime("%H:%M:%S")
            text = f"every {every:g}s, last {stamp}; Ctrl-C stops\n{text}" if not as_json else text
            if in_place:
                stream.write("\x1b[H" + "\n".join(line + "\x1b[K" for line in text.split("\n")) + "\n\x1b[J")
            else:
                stream.write(text + "\n\n")
            stream.flush()
            drawn += 1
            if rounds is None or drawn < rounds:
                sleep(every)
    except KeyboardInterrupt:
        pass
    finally:
        if in_place:
            stream.write("\x1b[?25h")
            stream.flush()
    return code
