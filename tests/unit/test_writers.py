"""Each slice of the state has its writers, named here, and no other module writes it.

Checked on the source: every assignment (or augmented assignment, or table put/remove/
clear) whose target goes through `state.<slice>` (`self.state.cluster.x = ...`,
`state.hb_paths.put(...)`), directly or through a local name bound to such a chain in
the same function (`c = self.state.cluster; c.failover_count += 1`,
`row = self.state.aliases.get(k); row.status = ...`), must be in a writer of that slice.
Slices whose fields have different writers list them per field.
"""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest
from sourcetree import REPO, modules

from haoscar_snmp.core.state import LanIfRow, State


# The fields of a haoscarLanIfTable row that the LAN poller writes (the configuration
# applier writes node, lan, name and address).
LAN_IF_RUNTIME = ("status", "in_packets", "out_packets", "last_change", "probes_sent", "replies",
                  "rtt_us", "last_reply", "probe_errors", "last_error", "carrier", "in_errors",
                  "out_errors", "in_discards", "out_discards", "source")
# Of those, the kernel's view of this head's own interfaces is written by the poller's part
# for them (fcaps.fault.lan.ownifs), the probe counts of the pinged ones by the poller itself,
# and the status, its time and the source by both.
LAN_IF_KERNEL = ("carrier", "in_packets", "out_packets", "in_errors", "out_errors", "in_discards", "out_discards")
LAN_IF_BOTH = ("status", "last_change", "source")

# slice -> writer modules; or slice -> {field: writers} where fields differ ("*" = the rest)
WRITERS: dict[str, set[str] | dict[str, set[str]]] = {
    "cluster": {"name": {"fcaps.configuration.apply"}, "local_head": {"fcaps.configuration.apply"},
                "agent_version": {"haoscar_snmp.assembly.configuration"},
                "agent_start_time": {"haoscar_snmp.assembly.configuration"},
                **{name: {"fcaps.fault.lan.poller"} for name in ("lan_poller_policy", "lan_state")},
                "lan_poller": {"fcaps.fault.lan.reporting"},
                "*": {"fcaps.fault.role.report"}, "active_head": {"fcaps.fault.role.machine", "fcaps.fault.role.report",
                                                              "fcaps.fault.role.placed"},
                # The corosync backend runs no role machine: Pacemaker's placement gives them.
                **{name: {"fcaps.fault.role.report", "fcaps.fault.role.placed"}
                   for name in ("status", "failover_count", "last_failover_time", "last_failover_duration_ms",
                                "last_failover_reason")}},
    # The store commits a SET; the step 1 of a heartbeat timing change in two steps is
    # committed by its proposal part (a mixin of the store).
    "config_meta": {"fcaps.configuration.store", "fcaps.configuration.proposal"},
    "control": {"fcaps.configuration.control"},
    "heads": {"*": {"fcaps.configuration.apply", "fcaps.fault.role.machine", "fcaps.fault.heartbeat.monitor",
                    "fcaps.fault.role.placed"},
              "last_heartbeat": {"fcaps.fault.heartbeat.process"},
              "public_reached": {"fcaps.fault.role.publicreach"}, "public_state": {"fcaps.fault.role.publicreach"}},
    "public_targets": {"fcaps.fault.role.publicreach"},
    "public_reach": {"fcaps.fault.role.publicreach"},
    "hb_paths": {"fcaps.fault.heartbeat.process"},
    "lan_ifs": {"*": {"fcaps.configuration.apply"},
                **{name: {"fcaps.fault.lan.poller"} for name in LAN_IF_RUNTIME},
                **{name: {"fcaps.fault.lan.ownifs"} for name in LAN_IF_KERNEL},
                **{name: {"fcaps.fault.lan.poller", "fcaps.fault.lan.ownifs"} for name in LAN_IF_BOTH}},
    "lans": {"fcaps.fault.lan.poller"},
    "lan_if_next_index": {"fcaps.configuration.apply"},
    "aliases": {"*": {"fcaps.configuration.apply"},
                "status": {"fcaps.fault.role.effects", "fcaps.fault.role.placed"},
                "owner": {"fcaps.fault.role.effects", "fcaps.fault.role.placed"},
                "garp_sent": {"fcaps.fault.role.effects", "fcaps.fault.role.aliasguard"}},
    # The service monitor and its base, the ladder's steps carried out (services.recovery).
    "services": {"*": {"fcaps.configuration.apply"},
                 **{name: {"fcaps.fault.services.monitor", "fcaps.fault.services.recovery"}
                    for name in ("status", "consec_failures", "restarts")},
                 "last_failure": {"fcaps.fault.services.recovery"}, "last_action": {"fcaps.fault.services.recovery"}},
    "events": {"fcaps.fault.history"},
    "event_last_index": {"fcaps.fault.history"},
    "alarms": {"fcaps.fault.alarms"},
    "alarm_last_changed": {"fcaps.fault.alarms"},
    "alarm_targets": {"haoscar_snmp.snmp.notify"},
    "accounting": {"fcaps.accounting.rows"},
    "acct_windows": {"fcaps.accounting.rows"},
    "acct_headline": {"fcaps.accounting.rows"},
    "perf": {"fcaps.performance.figures"},
    "hb_figures": {"fcaps.fault.heartbeat.process"},
    "jobs": {"haoscar_snmp.core.scheduler"},
    "security": {"*": {"haoscar_snmp.snmp.responders", "haoscar_snmp.snmp.agent",
                       "haoscar_snmp.snmp.agentx.requests"},
                 "hb_auth_failures": {"fcaps.fault.heartbeat.process"}, "hb_replays": {"fcaps.fault.heartbeat.process"},
                 "malformed_packets": {"fcaps.fault.heartbeat.process"},
                 "hb_last_refused": {"fcaps.fault.heartbeat.process"}},
    "peer": {"fcaps.fault.heartbeat.monitor"},
    "links": {"fcaps.fault.heartbeat.monitor"},
    "hb_fenced": {"fcaps.fault.heartbeat.monitor"},
    "hb_process": {"fcaps.fault.heartbeat.monitor"},
    "quorum": {"fcaps.fault.role.quorum", "fcaps.fault.role.effects"},
    "alias_claims": {"fcaps.fault.role.aliasguard"},
    "email": {"fcaps.fault.mailer"},
    "membership": {"fcaps.fault.cluster.watch"},
    "cluster_nodes": {"fcaps.fault.cluster.watch"},
    "cluster_links": {"fcaps.fault.cluster.watch"},
    "resources": {"fcaps.fault.cluster.watch"},
    "agentx": {"haoscar_snmp.snmp.agentx.session"},
    "config_sync": {"*": {"fcaps.configuration.drift"}, "unconfirmed": {"fcaps.configuration.agreement"},
                    **{name: {"fcaps.configuration.sync"} for name in ("adoptions", "pushes", "refusals")}},
    "service_unfit": {"fcaps.fault.services.recovery"},
    "peer_lans_down": {"fcaps.fault.lan.poller"},
    "loop": {"fcaps.performance.looplag"},
    "perf_durations": {"fcaps.performance.figures"},
    "perf_buckets": {"fcaps.performance.figures"},
    "perf_hb_paths": {"fcaps.performance.collector"},
    "perf_jobs": {"fcaps.performance.collector"},
    "perf_requests": {"fcaps.performance.collector"},
    "perf_hb_send": {"fcaps.performance.collector"},
}
MUTATORS = {"put", "remove", "clear", "pop", "update", "setdefault", "record", "append"}


def chain(node: ast.AST) -> list[str]:
    """`self.state.cluster.x` -> ["self", "state", "cluster", "x"]; calls and subscripts
    are looked through (`self.state.aliases.get(k)` -> [..., "aliases", "get"])."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return parts[::-1]
        else:
            return parts[::-1]


def slice_of(parts: list[str], aliases: dict[str, str]) -> tuple[str, list[str]] | None:
    """(slice, the rest of the chain) if the chain goes through state.<slice>."""
    if parts and parts[0] in aliases:
        return aliases[parts[0]], parts[1:]
    for i, part in enumerate(parts[:-1]):
        if part == "state" and parts[i + 1] in WRITERS:
            return parts[i + 1], parts[i + 2:]
    return None


def writes(path: Path) -> list[tuple[int, str, str]]:
    """(line, slice, field) of every write to the state in a module."""
    found = []
    tree = ast.parse(path.read_text())
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)):
            continue
        aliases: dict[str, str] = {}
        body = func.body if isinstance(func.body, list) else [func.body]
        for node in (n for stmt in body for n in ast.walk(stmt)):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                hit = slice_of(chain(node.value), aliases)
                if hit is not None:
                    aliases[node.targets[0].id] = hit[0]
            if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name):
                hit = slice_of(chain(node.iter), aliases)
                if hit is not None:
                    aliases[node.target.id] = hit[0]
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign):
                targets = [t for t in node.targets]
                targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            elif isinstance(node, ast.AugAssign):
                targets = [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
                targets = [node.func]
            for target in targets:
                if isinstance(target, ast.Name):
                    continue
                hit = slice_of(chain(target), aliases)
                if hit is not None:
                    rest = [p for p in hit[1] if p not in MUTATORS and p not in ("get", "values", "items")]
                    found.append((node.lineno, hit[0], rest[-1] if rest else "*"))
    return sorted(set(found))   # a function's body is walked from the module too




def allowed(slice_name: str, field: str) -> set[str]:
    writers = WRITERS[slice_name]
    if isinstance(writers, dict):
        return writers.get(field, writers.get("*", set()))
    return writers


@pytest.mark.parametrize("name, path", sorted(modules().items()))
def test_only_a_slices_writers_write_it(name: str, path: Path) -> None:
    wrong = [f"line {line}: state.{s}.{f}" for line, s, f in writes(path) if name not in allowed(s, f)]
    assert wrong == [], f"{name} writes state it does not own: {wrong}"


def test_the_check_sees_writes_through_local_names() -> None:
    source = ("def f(self):\n"
              "    c = self.state.cluster\n"
              "    c.failover_count += 1\n"
              "    row = self.state.aliases.get((1,))\n"
              "    row.status = 2\n"
              "    self.state.hb_paths.put((1, 1), None)\n")
    path = REPO / ".cache" / "writers-probe.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(source)
    try:
        assert sorted((s, f) for _, s, f in writes(path)) == [("aliases", "status"), ("cluster", "failover_count"),
                                                                ("hb_paths", "*")]
    finally:
        path.unlink()


def test_every_slice_has_its_writers_named_here() -> None:
    assert {f.name for f in fields(State)} == set(WRITERS)


def test_every_lan_interface_field_has_its_writer_named_here() -> None:
    config = {"node", "lan", "name", "address"}
    assert {f.name for f in fields(LanIfRow)} == config | set(LAN_IF_RUNTIME)
