"""The state as metrics in the OpenMetrics text format (and Prometheus' older text format).

`MetricsPage.handle` is an aiohttp handler that the web panel mounts at `/metrics`, and
`MetricsPage.answer` the same page for the status socket (views/server.py, which does not
load aiohttp); it answers OpenMetrics 1.0 unless the scraper accepts only `text/plain` (version 0.0.4),
which it then gets: the same families, with the older format's spelling (counter
families named with `_total`, info and stateset families as gauges, no `# EOF`).

Naming (Prometheus conventions): every name starts with `haoscar_`; counters end in
`_total`; values in base units (seconds, ratios 0..1); strings only as labels of `_info`
families; an enumeration is a stateset (one sample per possible state, 1 for the current
one), so a query never depends on the MIB's numbers. Labels: head, lan, node, interface,
service, alias, severity, kind, subject, window; for a cluster past two heads
(clustermetrics.py) node, node_id, link, resource.

HELP lines are the first sentence of the MIB object's DESCRIPTION that the family
mirrors (the MIB object is named at the end); families without a MIB object have their
own text. Rendering is one pass over the tables in memory, as `Work` (slices.py): the
big tables go `CHUNK` rows at a time, and `MetricsPage.handle` hands the loop back
between pieces, one render per format at a time however many scrapers ask
(bench/bench_views.py).
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import (
    AcctKind,
    ClusterStatus,
    ConfigSyncStatus,
    DurationKind,
    HeadStatus,
    Lan,
    LanStatus,
    LinkStatus,
    ServiceRung,
    ServiceStatus,
    State,
    camel,
)
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views import clustermetrics
from haoscar_snmp.views.health import judge
from haoscar_snmp.views.slices import Pacer, Shared, Work, chunks, drain, rows
from haoscar_snmp.views.snapshot import alias_holders, enum_label

if TYPE_CHECKING:
    from aiohttp import web

OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_BOUND_MS = 4294967295           # a duration bucket without an upper bound
FULL_KINDS = frozenset({AcctKind.CLUSTER, AcctKind.HEAD, AcctKind.ALIAS})
ALARM_SEVERITIES = (Severity.CRITICAL, Severity.MAJOR, Severity.MINOR, Severity.WARNING, Severity.INDETERMINATE)


def escape(value: str) -> str:
    """A label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def labels(**pairs: object) -> str:
    """The inside of a label set, `a="x",b="y"`: built once per row, shared by its samples."""
    return ",".join(f'{k}="{escape(str(v))}"' for k, v in pairs.items())


# The big tables' label sets and stateset lines repeat from one scrape to the next (a
# row's names rarely change, its state seldom): they are kept, bounded, rather than
# escaped and formatted again for thousands of rows at every scrape. Bounds: a label set
# or a line is about 100 bytes, a row's stateset lines up to 8 of them, so the three
# caches hold at most about 3 + 7 + 4 MB.
KEPT = 32768
KEPT_STATES = 8192        # (row, state) pairs: 2,000 services and 2,000 interfaces need ~6,000


@functools.lru_cache(maxsize=KEPT)
def kept_labels(*pairs: str) -> str:
    """`labels()` of name, value, name, value...; the answer kept for the next scrape."""
    return ",".join(f'{pairs[i]}="{escape(pairs[i + 1])}"' for i in range(0, len(pairs), 2))


@functools.lru_cache(maxsize=KEPT_STATES)
def _state_lines(name: str, members: type[enum.IntEnum], where: str, current: int) -> tuple[str, ...]:
    head = "{" + where + "," if where else "{"
    return tuple(f'{head}{name}="{camel(m.name)}"}} {1 if int(m) == current else 0}' for m in members)


def number(value: float) -> str:
    if isinstance(value, int):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class Family:
    """One metric family: `name` without the `_total` (counter) or `_info` suffix."""

    name: str
    type: str                       # gauge | counter | info | stateset | histogram
    help: str
    samples: list[str] = field(default_factory=list)   # "suffix{labels} value", suffix without the name
    unit: str = ""

    def add(self, value: float, suffix: str = "", where: str = "") -> None:
        """One sample; `where` from `labels()`."""
        text = str(value) if type(value) is int else number(value)
        self.samples.append(f"{suffix}{{{where}}} {text}" if where else f"{suffix} {text}")

    def states(self, current: int, members: type[enum.IntEnum], where: str = "") -> None:
        """A stateset sample per member of `members`, 1 for `current`."""
        self.samples += _state_lines(self.name, members, where, current)


class Help:
    """HELP texts from the MIB's descriptions: the first sentence and the object's name."""

    def __init__(self, mib: MibModel) -> None:
        self.mib = mib

    def __call__(self, mib_name: str, own: str = "", unit: str = "") -> str:
        """`own` goes first; `unit`: the family's, named when the MIB object counts in another."""
        obj = self.mib.objects.get(mib_name)
        text = obj.description if obj is not None else ""
        if not text:
            return own
        first = text.split(". ")[0].rstrip(".")
        here = "as a ratio (0..1)" if unit == "ratio" else f"in {unit}"
        note = f" Here {here}; the MIB object in {obj.units}." if unit and obj.units and obj.units != unit else ""
        return f"{own + ' ' if own else ''}{first}.{note} (MIB {mib_name})".replace("\\", "\\\\").replace("\n", " ")


def seconds(name: str, h: Help, mib_name: str) -> Family:
    """A gauge in seconds, its HELP from `mib_name` (which may count in another unit)."""
    return Family(name, "gauge", h(mib_name, unit="seconds"), unit="seconds")


def families(state: State, config: Config, h: Help) -> list[Family]:
    """Every family, in a fixed order."""
    return drain(build(state, config, h))


def build(state: State, config: Config, h: Help) -> Work[list[Family]]:
    """`families` as work in pieces."""
    out: list[Family] = []
    c = state.cluster
    agent = Family("haoscar_agent", "info", h("haoscarAgentVersion", "The agent on this head."))
    agent.add(1, "_info", labels(cluster=c.name or config.cluster.name, head=c.local_head or config.cluster.local_head,
                                 version=c.agent_version))
    started = seconds("haoscar_agent_start_time_seconds", h, "haoscarAgentStartTime")
    started.add(c.agent_start_time)
    status, _ = judge(state, config, alias_holders(state))
    health = Family("haoscar_health", "stateset",
                    "The cluster's health as this head judges it: ok, degraded or failed (haoscar-snmp status).")
    for word in ("ok", "degraded", "failed"):
        health.samples.append(f'{{haoscar_health="{word}"}} {1 if word == status else 0}')
    cluster = Family("haoscar_cluster_state", "stateset", h("haoscarClusterState"))
    cluster.states(int(c.status), ClusterStatus)
    failovers = Family("haoscar_failovers", "counter", h("haoscarFailoverCount"))
    failovers.add(c.failover_count, "_total")
    out += [agent, started, health, cluster, failovers]
    yield
    out += _heads(state, h) + _paths(state, h)
    out += yield from _lans(state, h)
    out += yield from _services(state, h)
    out += yield from _aliases(state, h)
    out += yield from _alarms(state, h)
    out += _durations(state, h)
    yield
    sync = Family("haoscar_config_sync_state", "stateset", h("haoscarConfigSyncStatus"))
    sync.states(int(state.config_sync.status), ConfigSyncStatus)
    version = Family("haoscar_config_version", "gauge", h("haoscarConfigSyncVersion"))
    version.add(state.config_sync.version)
    quorum = Family("haoscar_quorum_ok", "gauge", "1 while the quorum check passes (or none is configured), else 0.")
    quorum.add(1 if state.quorum.ok else 0)
    reached = Family("haoscar_public_targets_reached", "gauge", h("haoscarHeadPublicReached"))
    reached.add(state.public_reach.reached)
    lag = seconds("haoscar_loop_lag_seconds", h, "haoscarPerfLoopLag")
    lag.add(state.loop.lag_us / 1e6)
    out += [sync, version, quorum, reached, lag]
    out += yield from clustermetrics.build(state, h, Family, labels)
    return out + (yield from _accounting(state, h))


def _heads(state: State, h: Help) -> list[Family]:
    info = Family("haoscar_head", "info", h("haoscarHeadPreferredRole", "A head of the cluster."))
    st = Family("haoscar_head_state", "stateset", h("haoscarHeadState"))
    changes = Family("haoscar_head_role_changes", "counter", h("haoscarHeadRoleChanges"))
    for row in state.heads.values():
        where = labels(head=row.name)
        info.add(1, "_info", labels(head=row.name, preferred_role=camel(row.preferred_role.name),
                                    this_head="true" if row.is_local else "false"))
        st.states(int(row.status), HeadStatus, where)
        changes.add(row.role_changes, "_total", where)
    return [info, st, changes]


def _paths(state: State, h: Help) -> list[Family]:
    heads = {index: row.name for (index,), row in state.heads.items()}
    st = Family("haoscar_heartbeat_path_state", "stateset", h("haoscarHbPathStatus"))
    rtt = seconds("haoscar_heartbeat_path_rtt_seconds", h, "haoscarHbPathRtt")
    jitter = seconds("haoscar_heartbeat_path_jitter_seconds", h, "haoscarPerfHbPathJitter")
    sent = Family("haoscar_heartbeat_path_sent", "counter", h("haoscarHbPathSent"))
    received = Family("haoscar_heartbeat_path_received", "counter", h("haoscarHbPathReceived"))
    lost = Family("haoscar_heartbeat_path_lost", "counter", h("haoscarHbPathLost"))
    loss = Family("haoscar_heartbeat_path_loss_ratio", "gauge",
                  "Heartbeats lost on this path over those sent since the agent started (0..1).", unit="ratio")
    for key, row in state.hb_paths.items():
        where = labels(head=heads.get(key[0], str(key[0])), lan=_lan(key[1]))
        st.states(int(row.status), LinkStatus, where)
        rtt.add(row.rtt_us / 1e6, "", where)
        perf = state.perf_hb_paths.get(key)
        jitter.add((perf.jitter_us if perf else 0) / 1e6, "", where)
        sent.add(row.sent, "_total", where)
        received.add(row.received, "_total", where)
        lost.add(row.lost, "_total", where)
        loss.add(row.lost / row.sent if row.sent else 0.0, "", where)
    return [st, rtt, jitter, sent, received, lost, loss]


def _lan(value: int) -> str:
    try:
        return Lan(value).label
    except ValueError:
        return str(value)


def _lans(state: State, h: Help) -> Work[list[Family]]:
    lan = Family("haoscar_lan_state", "stateset", h("haoscarLanStatus"))
    for (index,), row in state.lans.items():
        lan.states(int(row.status), LanStatus, labels(lan=_lan(index)))
    st = Family("haoscar_lan_interface_state", "stateset", h("haoscarLanIfStatus"))
    rtt = seconds("haoscar_lan_interface_rtt_seconds", h, "haoscarLanIfRoundTrip")
    probes = Family("haoscar_lan_interface_probes", "counter", h("haoscarLanIfProbesSent"))
    replies = Family("haoscar_lan_interface_replies", "counter", h("haoscarLanIfReplies"))
    for part in rows(state.lan_ifs):
        for _, row in part:
            where = kept_labels("node", row.node, "lan", row.lan.label, "interface", row.name or row.address)
            st.states(int(row.status), LinkStatus, where)
            rtt.add(row.rtt_us / 1e6, "", where)
            probes.add(row.probes_sent, "_total", where)
            replies.add(row.replies, "_total", where)
        yield
    return [lan, st, rtt, probes, replies]


def _services(state: State, h: Help) -> Work[list[Family]]:
    st = Family("haoscar_service_state", "stateset", h("haoscarServiceState"))
    rung = Family("haoscar_service_rung", "stateset", h("haoscarServiceRung"))
    restarts = Family("haoscar_service_restarts", "counter", h("haoscarServiceRestarts"))
    for part in rows(state.services):
        for _, row in part:
            where = kept_labels("service", row.name)
            st.states(int(row.status), ServiceStatus, where)
            rung.states(int(row.rung), ServiceRung, where)
            restarts.add(row.restarts, "_total", where)
        yield
    return [st, rung, restarts]


def _aliases(state: State, h: Help) -> Work[list[Family]]:
    held = Family("haoscar_alias_held", "gauge",
                  h("haoscarAliasOwner", "1 for the head that holds the alias address, 0 for the others."))
    holders = alias_holders(state)
    heads = [row.name for row in state.heads.values()]
    for part in rows(state.aliases):
        for (index,), row in part:
            for head in heads:
                held.add(1 if holders.get(index) == head else 0, "", labels(alias=row.address, head=head))
        yield
    return [held]


def _alarms(state: State, h: Help) -> Work[list[Family]]:
    active = Family("haoscar_alarms_active", "gauge", h("haoscarAlarmActiveCount", "Active alarms by severity."))
    counts = {int(s): 0 for s in ALARM_SEVERITIES}
    for part in rows(state.alarms):
        for _, row in part:
            counts[row.severity] = counts.get(row.severity, 0) + 1
        yield
    for s in ALARM_SEVERITIES:
        active.add(counts[int(s)], "", labels(severity=s.name.lower()))
    return [active]


def _durations(state: State, h: Help) -> list[Family]:
    """Takeover durations as a histogram per kind (failover, failback), from the MIB's buckets."""
    hist = Family("haoscar_takeover_duration_seconds", "histogram", h("haoscarPerfDurationCount",
                  "How long takeovers took, by kind.", unit="seconds"), unit="seconds")
    last = seconds("haoscar_takeover_last_duration_seconds", h, "haoscarPerfDurationLast")
    for kind in DurationKind:
        name = camel(kind.name)
        row = state.perf_durations.get((int(kind),))
        buckets = sorted((key[1], b) for key, b in state.perf_buckets.items() if key[0] == int(kind))
        total = 0
        for _, bucket in buckets:
            total += bucket.count
            if bucket.upper_ms < NO_BOUND_MS:
                hist.add(total, "_bucket", labels(kind=name, le=number(bucket.upper_ms / 1000)))
        hist.add(row.count if row else total, "_bucket", labels(kind=name, le="+Inf"))
        hist.add(row.count if row else total, "_count", labels(kind=name))
        hist.add((row.total_ms if row else 0) / 1000, "_sum", labels(kind=name))
        last.add((row.last_ms if row else 0) / 1000, "", labels(kind=name))
    return [hist, last]


def forget() -> None:
    """Drop every kept label set and line (the next scrape builds them all again)."""
    for kept in (kept_labels, _state_lines, _availability):
        kept.cache_clear()


@functools.lru_cache(maxsize=KEPT)
def _availability(where: str, window: str, ppm: int) -> str:
    return f'{{{where},window="{window}"}} {ppm / 1e6!r}'


def _accounting(state: State, h: Help) -> Work[list[Family]]:
    """Availability for every subject and window; downtime, outages, MTTR and MTBF for the
    cluster, the heads and the aliases only (`FULL_KINDS`): with thousands of services and
    interfaces those would multiply a scrape's size by five. The SNMP table and
    `haoscar-snmp report` have every figure of every subject."""
    avail = Family("haoscar_availability_ratio", "gauge", h("haoscarAcctAvailability", unit="ratio"), unit="ratio")
    down = Family("haoscar_downtime_seconds", "gauge", h("haoscarAcctDowntime"), unit="seconds")
    outages = Family("haoscar_outages", "gauge", h("haoscarAcctOutages"))
    mttr = Family("haoscar_mttr_seconds", "gauge", h("haoscarAcctMttr"), unit="seconds")
    mtbf = Family("haoscar_mtbf_seconds", "gauge", h("haoscarAcctMtbf"), unit="seconds")
    windows = {index: escape(row.name) for (index,), row in state.acct_windows.items()}
    subjects: dict[int, str] = {}
    for part in rows(state.accounting):
        for (subject, window), row in part:
            where = subjects.get(subject)
            if where is None:
                where = subjects[subject] = kept_labels("kind", enum_label(AcctKind, row.kind), "subject", row.subject)
            name = windows.get(window, window)
            avail.samples.append(_availability(where, name, row.availability_ppm))
            if row.kind in FULL_KINDS:
                where = f'{where},window="{name}"'
                down.add(row.downtime_s, "", where)
                outages.add(row.outages, "", where)
                mttr.add(row.mttr_s, "", where)
                mtbf.add(row.mtbf_s, "", where)
        yield
    return [avail, down, outages, mttr, mtbf]


def openmetrics(fams: list[Family]) -> str:
    """OpenMetrics 1.0 text: TYPE, UNIT, HELP, the samples, and `# EOF`."""
    return drain(text(fams, True))


def prometheus_text(fams: list[Family]) -> str:
    """Prometheus text format 0.0.4: counters named with `_total`, info and stateset as gauges."""
    return drain(text(fams, False))


SAMPLES_PER_PIECE = 1024      # sample lines joined between two yields


def text(fams: list[Family], open_metrics: bool) -> Work[str]:
    """The families as OpenMetrics 1.0 text, or else as Prometheus text 0.0.4, in pieces."""
    pieces = yield from _pieces(fams, open_metrics)
    yield
    return b"".join(pieces).decode()


def encoded(fams: list[Family], open_metrics: bool) -> Work[bytes]:
    """`text(...).encode()`, each piece encoded as it comes: one short join at the end
    instead of a long join and a long encoding (3.8 MB with 2,000 services)."""
    pieces = yield from _pieces(fams, open_metrics, consume=True)
    return b"".join(pieces)


def _pieces(fams: list[Family], open_metrics: bool, consume: bool = False) -> Work[list[bytes]]:
    """`consume`: empty each family as it goes, so its tens of thousands of strings are
    freed a piece at a time, not all at once at the end."""
    pieces: list[bytes] = []
    for f in fams:
        if open_metrics:
            head = f"# TYPE {f.name} {f.type}\n" + (f"# UNIT {f.name} {f.unit}\n" if f.unit else "")
            head += f"# HELP {f.name} {f.help}"
        else:
            name = f.name + {"counter": "_total", "info": "_info"}.get(f.type, "")
            kind = {"info": "gauge", "stateset": "gauge"}.get(f.type, f.type)
            head = f"# HELP {name} {f.help}\n# TYPE {name} {kind}"
        pieces.append(head.encode())
        prefix = "\n" + f.name
        for part in chunks(f.samples, SAMPLES_PER_PIECE):
            pieces.append((prefix + prefix.join(part)).encode())
            del part
            yield
        if consume:
            for _ in chunks(f.samples, SAMPLES_PER_PIECE):
                del f.samples[-SAMPLES_PER_PIECE:]
                yield
        pieces.append(b"\n")
    pieces.append(b"# EOF\n" if open_metrics else b"")
    return pieces


def wants_openmetrics(accept: str) -> bool:
    """OpenMetrics unless the scraper lists text/plain and not OpenMetrics."""
    return "application/openmetrics-text" in accept or "text/plain" not in accept


class MetricsPage:
    """The `/metrics` handler for a web listener: renders the state at each scrape."""

    def __init__(self, state: State, config: Callable[[], Config], clock: Clock, mib: MibModel | None = None,
                 pacer: Pacer | None = None) -> None:
        self.state = state
        self.config = config
        self.clock = clock
        self.help = Help(mib or MibModel.load())
        self.pacer = pacer or Pacer()
        self.shared: Shared[bytes] = Shared()

    def render(self, open_metrics: bool = True) -> str:
        """The page in one go (not on a loop that must stay responsive: see `body`)."""
        return drain(self._work(open_metrics))

    def _work(self, open_metrics: bool) -> Work[str]:
        fams = yield from build(self.state, self.config(), self.help)
        return (yield from text(fams, open_metrics))

    async def body(self, open_metrics: bool = True) -> bytes:
        """The page, rendered in slices on the loop; a scrape that finds a render of the
        same format under way gets that one's result."""
        return await self.shared.get(open_metrics, lambda: self._render(open_metrics))

    async def _render(self, open_metrics: bool) -> bytes:
        return await self.pacer.run(self._bytes(open_metrics))

    def _bytes(self, open_metrics: bool) -> Work[bytes]:
        fams = yield from build(self.state, self.config(), self.help)
        return (yield from encoded(fams, open_metrics))

    def answer(self, accept: str) -> tuple[bytes, str]:
        """The page for a request's Accept header, and its Content-Type."""
        om = wants_openmetrics(accept)
        return self.render(om).encode(), OPENMETRICS_TYPE if om else TEXT_TYPE

    async def handle(self, request: web.Request) -> web.Response:
        from aiohttp import web     # loaded already: only the web panel mounts this handler

        om = wants_openmetrics(request.headers.get("Accept", ""))
        response = web.Response(body=await self.body(om))
        response.headers["Content-Type"] = OPENMETRICS_TYPE if om else TEXT_TYPE
        return response
