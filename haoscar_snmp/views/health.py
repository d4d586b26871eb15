"""One word for the cluster as this head sees it: ok, degraded or failed, with the reasons.

    failed     needs action now: an alias that no head holds (clients are without
               service), the cluster in the failed or split-brain state, or a critical
               alarm (the alarm table's own judgement, X.733: service affecting; e.g. a
               head down even after its peer took over, a recovery ladder exhausted)
    degraded   the cluster serves, with less in reserve: a heartbeat path, LAN or LAN
               interface down, a service failed or being recovered, a major alarm, the
               peer head not heard or failed, configuration drift, quorum or public
               reach lost, the heartbeat process silent
    ok         none of these

A cluster past two heads adds its own (members.py): quorum lost is failed; Corosync or
Pacemaker unreadable, a failed resource, a node not a member or unclean are degraded.

The worst reason decides. Minor alarms and warnings are listed in the snapshot but do not
change the word: they are what an operator reads, not what a monitoring check pages on.
Many rows of one kind make one reason that names the first few ("3 services failed: a,
b, c"), so the list stays short with 2,000 rows.
"""

from __future__ import annotations

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import (
    AliasStatus,
    ClusterStatus,
    ConfigSyncStatus,
    HeadStatus,
    LanStatus,
    LinkStatus,
    RowStatus,
    ServiceStatus,
    State,
)
from haoscar_snmp.views import members

OK, DEGRADED, FAILED = "ok", "degraded", "failed"
RANK = {OK: 0, DEGRADED: 1, FAILED: 2}
NAMED = 3               # names given in one reason before "+N more"


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:NAMED])
    return shown + (f" (+{len(names) - NAMED} more)" if len(names) > NAMED else "")


def _count(names: list[str], one: str, many: str, what: str) -> str:
    return f"{len(names)} {one if len(names) == 1 else many} {what}: {_some(names)}"


class Reasons:
    """Collects (level, text) pairs; the worst level is the verdict."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, level: str, text: str) -> None:
        self.items.append({"level": level, "text": text})

    def rows(self, level: str, names: list[str], one: str, many: str, what: str) -> None:
        if names:
            self.add(level, _count(names, one, many, what))

    @property
    def status(self) -> str:
        return max((r["level"] for r in self.items), key=RANK.__getitem__, default=OK)


def judge(state: State, config: Config, holders: dict[int, str]) -> tuple[str, list[dict[str, str]]]:
    """(status, reasons), the failed reasons first. `holders`: alias index -> the head
    holding it ("" = none), as `snapshot.alias_holders` gives."""
    r = Reasons()
    status = state.cluster.status
    if status in (ClusterStatus.FAILED, ClusterStatus.SPLIT_BRAIN):
        r.add(FAILED, f"cluster is {'failed' if status == ClusterStatus.FAILED else 'in split brain'}")
    elif status in (ClusterStatus.DEGRADED, ClusterStatus.FAILING_OVER):
        r.add(DEGRADED, f"cluster is {'degraded' if status == ClusterStatus.DEGRADED else 'failing over'}")
    unheld = [row.address for (index,), row in state.aliases.items()
              if row.row_status == RowStatus.ACTIVE and not holders.get(index)]
    r.rows(FAILED, unheld, "alias", "aliases", "held by no head")
    conflict = [row.address for row in state.aliases.values() if row.status == AliasStatus.CONFLICT]
    r.rows(DEGRADED, conflict, "alias", "aliases", "claimed by another host")
    for severity, level in ((Severity.CRITICAL, FAILED), (Severity.MAJOR, DEGRADED)):
        found = [f"{row.subject}: {row.text}" if row.text else row.subject
                 for row in state.alarms.values() if row.severity == severity]
        r.rows(level, found, f"{severity.name.lower()} alarm", f"{severity.name.lower()} alarms", "active")
    _heads(state, config, r)
    heads = {index: row.name for (index,), row in state.heads.items()}
    paths = [f"{heads.get(key[0], key[0])} {'lanA' if key[1] == 1 else 'lanB' if key[1] == 2 else 'public'}"
             for key, row in state.hb_paths.items() if row.status == LinkStatus.DOWN]
    r.rows(DEGRADED, paths, "heartbeat path", "heartbeat paths", "down")
    lans = [("lanA" if lan == 1 else "lanB") + f" {row.status.name.lower()}" for (lan,), row in state.lans.items()
            if row.status in (LanStatus.DEGRADED, LanStatus.FAILED)]
    r.rows(DEGRADED, lans, "LAN", "LANs", "not ok")
    ifs = [f"{row.node}/{row.name}" for row in state.lan_ifs.values() if row.status == LinkStatus.DOWN]
    r.rows(DEGRADED, ifs, "LAN interface", "LAN interfaces", "down")
    failed = [row.name for row in state.services.values() if row.status == ServiceStatus.FAILED]
    r.rows(DEGRADED, failed, "service", "services", "failed")
    recovering = [row.name for row in state.services.values() if row.status == ServiceStatus.RECOVERING]
    r.rows(DEGRADED, recovering, "service", "services", "being recovered")
    if state.config_sync.status == ConfigSyncStatus.DRIFT:
        r.add(DEGRADED, f"configuration drift from the peer: {state.config_sync.differing or 'settings differ'}")
    if config.failover.quorum_command and not state.quorum.ok:
        r.add(DEGRADED, "quorum check fails: this head may not take over")
    if state.public_reach.lost:
        r.add(DEGRADED, f"public LAN lost: {state.public_reach.lost}")
    if state.hb_process.silent:
        r.add(DEGRADED, f"heartbeat process: {state.hb_process.silent}")
    if state.service_unfit:
        r.add(DEGRADED, f"this head is unfit to be active: {state.service_unfit}")
    for level, text in members.reasons(state):
        r.add(level, text)
    items = sorted(r.items, key=lambda item: -RANK[item["level"]])
    return r.status, items


def _heads(state: State, config: Config, r: Reasons) -> None:
    peer = config.peer_head_config
    for row in state.heads.values():
        if row.status == HeadStatus.FAILED:
            r.add(DEGRADED, f"head {row.name} failed")
    if peer is not None and (state.peer is None or not state.peer.heard):
        ever = state.peer is not None and state.peer.ever_heard
        r.add(DEGRADED, f"peer head {peer.name} not heard{'' if ever else ' since this head started'}")


def exit_code(status: str) -> int:
    """The monitoring-plugin convention: 0 ok, 1 warning (degraded), 2 critical (failed)."""
    return RANK.get(status, 3)


__all__ = ["DEGRADED", "FAILED", "OK", "exit_code", "judge"]
