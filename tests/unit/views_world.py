"""A two-head cluster's State, built as the daemon builds it, for the view tests."""

from __future__ import annotations

from pathlib import Path

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import AlarmType, ProbableCause
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import EventType, Severity
from haoscar_snmp.core.state import (
    AcctHeadline,
    AcctKind,
    AcctRow,
    AcctWindowRow,
    AlarmRow,
    AliasStatus,
    ClusterStatus,
    DurationKind,
    DurationRow,
    EventRow,
    HbPathPerfRow,
    HbPathRow,
    HeadStatus,
    JobRow,
    Lan,
    LinkStatus,
    PeerView,
    ServiceStatus,
    State,
)

NOW = 1_700_000_000.0

CONFIG = """
[cluster]
name = "views"
local_head = "head1"
state_dir = "state"
[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.72.1.1"
lan_b = "10.72.2.1"
[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.72.1.2"
lan_b = "10.72.2.2"
[[interfaces]]
node = "head1"
lan = "lan_a"
name = "eth1"
address = "10.72.1.1"
[[interfaces]]
node = "head2"
lan = "lan_a"
name = "eth1"
address = "10.72.1.2"
[[aliases]]
address = "10.72.0.50"
prefix_length = 24
interface = "pub"
[[services]]
name = "pbs"
check = "check pbs"
[[services]]
name = "nfs"
check = "check nfs"
[heartbeat]
key_file = "hb.key"
[snmp]
listen = ["127.0.0.1:1161"]
"""


def config(tmp_path: Path, text: str = CONFIG) -> Config:
    key = tmp_path / "hb.key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    return parse_config(text, label="t.toml", base_dir=tmp_path, environ={})


def healthy(cfg: Config) -> State:
    """Both heads up, head1 active and holding the alias, everything up and running."""
    state = State()
    apply_to_state(cfg, state)
    c = state.cluster
    c.status, c.active_head, c.agent_version, c.agent_start_time = ClusterStatus.NORMAL, "head1", "9.9", NOW - 3600
    state.heads[(1,)].status = HeadStatus.ACTIVE
    state.heads[(2,)].status = HeadStatus.STANDBY
    state.heads[(2,)].last_heartbeat = NOW - 1.5
    state.peer = PeerView("head2", False, heard=True, paths_up=frozenset({1, 2}), status=HeadStatus.STANDBY,
                          ever_heard=True)
    for lan in (Lan.LAN_A, Lan.LAN_B):
        state.hb_paths.put((2, int(lan)), HbPathRow(LinkStatus.UP, sent=1000, received=998, lost=2,
                                                    rtt_us=420, last_heard=NOW - 1.0))
        state.perf_hb_paths.put((2, int(lan)), HbPathPerfRow(rtt_us=420, rtt_mean_us=400, jitter_us=35,
                                                             replies=998))
    for row in state.lan_ifs.values():
        row.status = LinkStatus.UP
        row.rtt_us = 250
    alias = state.aliases[(1,)]
    alias.status, alias.owner = AliasStatus.HELD, "head1"
    for row in state.services.values():
        row.status = ServiceStatus.RUNNING
    state.jobs.put((1,), JobRow("services", runs=10, last_run=NOW - 2.0))
    for i, (kind, text) in enumerate([(EventType.AGENT_STARTED, "started"), (EventType.ROLE_CHANGED, "active"),
                                      (EventType.SERVICE_DOWN, "pbs down"), (EventType.SERVICE_RECOVERED, "pbs up")],
                                     start=1):
        state.events.put((i,), EventRow(NOW - 100 + i, int(kind), "head1", int(Severity.INFO), text))
    state.acct_windows.put((1,), AcctWindowRow("24h", 86400))
    state.acct_windows.put((2,), AcctWindowRow("30d", 2592000))
    state.accounting.put((1, 1), AcctRow(AcctKind.CLUSTER, "views", availability_ppm=999_990, mttr_s=12,
                                         mtbf_s=7200, outages=1, downtime_s=1, monitored_s=86400))
    state.accounting.put((1, 2), AcctRow(AcctKind.CLUSTER, "views", availability_ppm=999_999))
    state.accounting.put((2, 1), AcctRow(AcctKind.SERVICE, "pbs", availability_ppm=990_000))
    state.acct_headline = AcctHeadline("30d", 12, 7200, 999_999)
    state.perf_durations.put((int(DurationKind.FAILOVER),), DurationRow(count=2, last_ms=900, min_ms=800,
                                                                        max_ms=1000, mean_ms=900))
    c.failover_count, c.last_failover_time, c.last_failover_duration_ms = 2, NOW - 600, 900
    return state


def alarm(state: State, severity: Severity, subject: str = "pbs", text: str = "pbs is down",
          cause: ProbableCause = ProbableCause.SERVICE_FAILURE) -> None:
    index = len(state.alarms) + 1
    state.alarms.put((index,), AlarmRow(int(severity), int(AlarmType.PROCESSING_ERROR), int(cause), subject,
                                        NOW - 30, text, NOW - 30))


__all__ = ["NOW", "alarm", "config", "healthy"]
