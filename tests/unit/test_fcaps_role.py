"""The role state machine with fake aliases, a fake peer and a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import Alarms
from fcaps.fault.decide import Peer
from fcaps.fault.heartbeat import LocalView
from fcaps.fault.hbproto import Flag
from fcaps.fault.role import RoleMachine
from fcaps.fault.takeover import FakeAliases
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.core.clock import FakeClock
from haoscar_snmp.core.events import EventBus, EventType
from haoscar_snmp.core.runner import FakeRunner
from haoscar_snmp.core.state import ClusterStatus, ControlAction, HeadStatus as S, State

CONFIG = """
[cluster]
name = "t"
local_head = "head2"
state_dir = "state"
[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.71.1.1"
lan_b = "10.71.2.1"
[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.71.1.2"
lan_b = "10.71.2.2"
[[aliases]]
address = "10.71.0.50"
prefix_length = 24
interface = "pub"
[[services]]
name = "pbs"
check = "check pbs"
start = "start pbs"
stop = "stop pbs"
active_only = true
[timing]
heartbeat_interval_ms = 100
heartbeat_dead_time_ms = 300
initdead_ms = 1000
[failover]
fence_command = "fence head1"
[heartbeat]
key_file = "hb.key"
[snmp]
listen = ["127.0.0.1:1161"]
"""


class World:
    def __init__(self, tmp_path: Path, fence_ok: bool = True, quorum_ok: bool = True) -> None:
        (tmp_path / "hb.key").write_bytes(b"k" * 32)
        (tmp_path / "hb.key").chmod(0o600)
        text = CONFIG.replace('fence_command = "fence head1"',
                              'fence_command = "fence head1"\nquorum_command = "ping gateway"')
        self.cfg = parse_config(text, label="t.toml", base_dir=tmp_path, environ={})
        self.state = State()
        apply_to_state(self.cfg, self.state)
        self.clock = FakeClock()
        self.bus = EventBus()
        self.events: list = []
        self.bus.subscribe("test", self.events.append)
        self.aliases = FakeAliases()
        self.runner = FakeRunner({"fence head1": [0 if fence_ok else 1],
                                  "ping gateway": [0 if quorum_ok else 1]})  # others exit 0
        self.peer = Peer("head1", alive=False, status=S.UNKNOWN, flags=Flag(0), alive_for_ms=0,
                         preferred_primary=True)
        self.dead_since = 0.0
        self.announced = 0
        self.local = LocalView()
        self.role = RoleMachine(self.state, lambda: self.cfg, lambda: self.peer, lambda: self.dead_since,
                                self.aliases, self.bus, Alarms(self.state, self.bus, self.clock),
                                self.clock, self.runner, self.local, self.announce)

    def announce(self) -> None:
        self.announced += 1

    def step(self) -> str:
        return asyncio.run(self.role.evaluate())

    def primary_dies(self) -> None:
        """head2 settles as standby under an active head1, which then dies."""
        self.peer = Peer("head1", True, S.ACTIVE, Flag.PREFERRED_PRIMARY, 5000, True)
        self.step()
        self.dead_since = self.clock.monotonic()
        self.peer = Peer("head1", False, S.FAILED, Flag(0), 0, True)
        self.step()

    def types(self) -> list[EventType]:
        return [e.type for e in self.events]


def test_standby_fails_over_when_the_primary_dies(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.peer = Peer("head1", True, S.ACTIVE, Flag.PREFERRED_PRIMARY, 5000, True)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    w.clock.advance(1.0)
    w.dead_since = w.clock.monotonic() - 0.02
    w.peer = Peer("head1", False, S.FAILED, Flag(0), 0, True)
    w.step()
    assert w.role.status is S.ACTIVE
    assert w.aliases.addresses == {"10.71.0.50"}
    # fence first, then the quorum check, services after the alias
    assert w.runner.calls == ["fence head1", "ping gateway", "start pbs"]
    assert w.state.cluster.failover_count == 1 and w.state.cluster.active_head == "head2"
    assert w.state.aliases[(1,)].owner == "head2"
    assert w.local.aliases == ("10.71.0.50",)
    types = w.types()
    assert types.index(EventType.FAILOVER_STARTED) < types.index(EventType.FAILOVER_COMPLETED)
    done = next(e for e in w.events if e.type == EventType.FAILOVER_COMPLETED)
    assert done.data["duration_ms"] == 20  # from detection, on the fake clock


def test_failed_fence_means_no_takeover_and_a_critical_alarm(tmp_path: Path) -> None:
    w = World(tmp_path, fence_ok=False)
    w.primary_dies()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    assert EventType.FAILOVER_FAILED in w.types()
    assert any(a.probable_cause == 7 for a in w.state.alarms.values())   # failoverFailure
    assert w.state.cluster.status is ClusterStatus.FAILED


def test_failback_hands_the_alias_back_to_the_primary(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.primary_dies()
    assert w.role.status is S.ACTIVE
    w.peer = Peer("head1", True, S.STANDBY, Flag.PREFERRED_PRIMARY | Flag.WANTS_ACTIVE, 100, True)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    assert w.state.aliases[(1,)].owner == ""
    assert w.runner.calls[-1] == "stop pbs"


def test_orphaned_alias_is_dropped_when_the_peer_is_active(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.aliases.addresses.add("10.71.0.50")        # left by a daemon killed with -9
    w.peer = Peer("head1", True, S.ACTIVE, Flag.PREFERRED_PRIMARY, 5000, True)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()


def test_split_brain_loser_releases_and_it_is_notified(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.primary_dies()
    w.peer = Peer("head1", True, S.ACTIVE, Flag.PREFERRED_PRIMARY, 10, True)   # LANs healed
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    # The loser reports the split brain, releases, and reports it resolved in the same
    # evaluation (exactly one head is active again); the alarm was raised and cleared.
    types = w.types()
    assert types.index(EventType.SPLIT_BRAIN_DETECTED) < types.index(EventType.SPLIT_BRAIN_RESOLVED)
    raised = [e for e in w.events if e.type == EventType.ALARM_RAISED and "split brain" in e.text]
    assert raised and not any(a.probable_cause == 6 for a in w.state.alarms.values())


def test_operator_switchover_is_refused_without_a_live_peer(tmp_path: Path) -> None:
    w = World(tmp_path)
    ok, text = w.role.request(ControlAction.SWITCHOVER, "v3:admin@127.0.0.1")
    assert not ok and "not alive" in text


@pytest.mark.parametrize("bad", ["TAKING_OVER->STARTING"])
def test_transitions_outside_the_table_are_refused(tmp_path: Path, bad: str) -> None:
    w = World(tmp_path)
    with pytest.raises(AssertionError):
        w.role._transition(S.ACTIVE, "not from STARTING directly")


def test_failed_quorum_check_means_no_takeover(tmp_path: Path) -> None:
    w = World(tmp_path, quorum_ok=False)
    w.primary_dies()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    failed = next(e for e in w.events if e.type == EventType.FAILOVER_FAILED)
    assert "quorum" in failed.text
