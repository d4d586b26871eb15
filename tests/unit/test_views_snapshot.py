"""The snapshot: the state as one plain dict, and the health verdict it carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeClock
from views_world import NOW, alarm, config, healthy

from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import (
    AliasStatus,
    ClusterStatus,
    ConfigSyncStatus,
    HeadStatus,
    LanStatus,
    LinkStatus,
    PeerView,
    ServiceRung,
    ServiceStatus,
)
from haoscar_snmp.views.health import exit_code
from haoscar_snmp.views.snapshot import SCHEMA_VERSION, snapshot


@pytest.fixture
def cfg(tmp_path: Path):
    return config(tmp_path)


def snap(state, cfg, **kw):
    return snapshot(state, cfg, FakeClock(start=NOW), **kw)


def test_a_healthy_cluster_is_ok_and_the_snapshot_is_plain_json(cfg) -> None:
    s = snap(healthy(cfg), cfg)
    assert s["schema"] == SCHEMA_VERSION
    assert s["health"] == {"status": "ok", "reasons": []}
    assert json.loads(json.dumps(s)) == s          # only JSON types
    assert s["generated"]["at"] == "2023-11-14T22:13:20.000Z"


def test_cluster_and_heads(cfg) -> None:
    s = snap(healthy(cfg), cfg)
    c = s["cluster"]
    assert (c["name"], c["this_head"], c["this_head_role"], c["this_head_state"]) == ("views", "head1", "active",
                                                                                      "active")
    assert c["agent_version"] == "9.9" and c["uptime_s"] == 3600.0
    assert c["started"] == {"at": "2023-11-14T21:13:20.000Z", "ago_s": 3600.0}
    heads = {h["name"]: h for h in s["heads"]}
    assert heads["head1"]["role"] == "active" and heads["head1"]["preferred_role"] == "primary"
    assert heads["head2"]["role"] == "standby" and heads["head2"]["state"] == "standby"
    assert heads["head2"]["last_heartbeat"]["ago_s"] == 1.5
    assert heads["head1"]["last_heartbeat"] is None      # this head: it does not hear itself


def test_paths_carry_rtt_loss_and_jitter(cfg) -> None:
    paths = snap(healthy(cfg), cfg)["heartbeat_paths"]
    assert [(p["head"], p["lan"], p["state"]) for p in paths] == [("head2", "lanA", "up"), ("head2", "lanB", "up")]
    assert paths[0]["rtt_ms"] == 0.42 and paths[0]["rtt_mean_ms"] == 0.4 and paths[0]["jitter_ms"] == 0.035
    assert paths[0]["loss_ratio"] == 0.002


def test_interfaces_aliases_services_events(cfg) -> None:
    state = healthy(cfg)
    state.services[(1,)].rung = ServiceRung.RESTARTING
    state.services[(1,)].restarts = 2
    s = snap(state, cfg, events=3)
    named = [(i["node"], i["lan"], i["state"], i["rtt_ms"]) for i in s["lan_interfaces"] if i["name"] == "eth1"]
    assert named == [("head1", "lanA", "up", 0.25), ("head2", "lanA", "up", 0.25)]
    assert s["aliases"][0]["holder"] == "head1" and s["aliases"][0]["state"] == "held"
    pbs = s["services"][0]
    assert (pbs["name"], pbs["state"], pbs["rung"], pbs["restarts"]) == ("pbs", "running", "restarting", 2)
    assert pbs["last_check"]["ago_s"] == 2.0
    assert [e["text"] for e in s["events"]] == ["pbs up", "pbs down", "active"]     # newest first
    assert s["events"][0]["type"] == "serviceRecovered" and s["events"][0]["severity"] == "info"
    assert snap(state, cfg, events=0)["events"] == []


def test_event_count_is_bounded(cfg) -> None:
    with pytest.raises(ValueError):
        snap(healthy(cfg), cfg, events=501)


def test_accounting_headline_and_subjects_by_window(cfg) -> None:
    acct = snap(healthy(cfg), cfg)["accounting"]
    assert acct["headline"] == {"window": "30d", "availability_ppm": 999_999, "mttr_s": 12, "mtbf_s": 7200}
    assert [w["name"] for w in acct["windows"]] == ["24h", "30d"]
    cluster = acct["subjects"][0]
    assert cluster["kind"] == "cluster"
    assert cluster["availability_ppm"] == [999_990, 999_999] and cluster["mttr_s"] == [12, 0]
    assert cluster["mtbf_s"] == [7200, 0] and cluster["outages"] == [1, 0] and cluster["downtime_s"] == [1, 0]
    assert acct["subjects"][1]["availability_ppm"] == [990_000, None]     # no row for that window
    assert acct["subjects"][1]["subject"] == "pbs"


def test_performance_and_sync(cfg) -> None:
    state = healthy(cfg)
    state.config_sync.status = ConfigSyncStatus.IN_SYNC
    state.config_sync.version = 4
    s = snap(state, cfg)
    assert s["performance"]["failovers"] == 2
    assert s["performance"]["durations"]["failover"]["mean_ms"] == 900
    assert s["config_sync"]["state"] == "inSync" and s["config_sync"]["version"] == 4


def test_the_standby_knows_the_peer_holds_the_alias(cfg) -> None:
    state = healthy(cfg)
    alias = state.aliases[(1,)]
    alias.status, alias.owner = AliasStatus.RELEASED, ""
    state.peer = PeerView("head2", False, heard=True, status=HeadStatus.ACTIVE, aliases=("10.72.0.50",),
                          ever_heard=True)
    s = snap(state, cfg)
    assert s["aliases"][0]["holder"] == "head2"
    assert s["health"]["status"] == "ok"


@pytest.mark.parametrize("change, status, words", [
    (lambda s: setattr(s.aliases[(1,)], "status", AliasStatus.RELEASED), "failed", "1 alias held by no head"),
    (lambda s: setattr(s.cluster, "status", ClusterStatus.SPLIT_BRAIN), "failed", "split brain"),
    (lambda s: alarm(s, Severity.CRITICAL), "failed", "1 critical alarm active: pbs: pbs is down"),
    (lambda s: alarm(s, Severity.MAJOR), "degraded", "1 major alarm active"),
    (lambda s: setattr(s.hb_paths[(2, 1)], "status", LinkStatus.DOWN), "degraded", "heartbeat path down: head2 lanA"),
    (lambda s: setattr(next(r for r in s.lan_ifs.values() if (r.node, r.name) == ("head2", "eth1")), "status",
                       LinkStatus.DOWN), "degraded", "LAN interface down: head2/eth1"),
    (lambda s: setattr(s.lans[(1,)], "status", LanStatus.FAILED), "degraded", "lanA failed"),
    (lambda s: setattr(s.services[(2,)], "status", ServiceStatus.FAILED), "degraded", "1 service failed: nfs"),
    (lambda s: setattr(s.services[(2,)], "status", ServiceStatus.RECOVERING), "degraded", "being recovered"),
    (lambda s: setattr(s.config_sync, "status", ConfigSyncStatus.DRIFT), "degraded", "configuration drift"),
    (lambda s: setattr(s, "peer", PeerView("head2", False, heard=False, ever_heard=True)), "degraded",
     "peer head head2 not heard"),
    (lambda s: setattr(s.heads[(2,)], "status", HeadStatus.FAILED), "degraded", "head head2 failed"),
    (lambda s: alarm(s, Severity.MINOR), "ok", ""),
])
def test_health(cfg, change, status, words) -> None:
    state = healthy(cfg)
    change(state)
    health = snap(state, cfg)["health"]
    assert health["status"] == status
    assert words in " | ".join(r["text"] for r in health["reasons"])


def test_the_worst_reason_decides_and_comes_first(cfg) -> None:
    state = healthy(cfg)
    state.services[(2,)].status = ServiceStatus.FAILED
    state.aliases[(1,)].status = AliasStatus.RELEASED
    health = snap(state, cfg)["health"]
    assert health["status"] == "failed"
    assert [r["level"] for r in health["reasons"]] == ["failed", "degraded"]


def test_many_rows_make_one_short_reason(cfg) -> None:
    state = healthy(cfg)
    for row in state.services.values():
        row.status = ServiceStatus.FAILED
    state.services.put((9,), type(state.services[(1,)])("a", "x", status=ServiceStatus.FAILED))
    state.services.put((10,), type(state.services[(1,)])("b", "x", status=ServiceStatus.FAILED))
    (reason,) = snap(state, cfg)["health"]["reasons"]
    assert reason["text"] == "4 services failed: pbs, nfs, a (+1 more)"


def test_exit_codes_follow_the_monitoring_plugin_convention() -> None:
    assert [exit_code(s) for s in ("ok", "degraded", "failed", "nonsense")] == [0, 1, 2, 3]
