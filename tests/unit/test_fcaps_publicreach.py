"""fcaps.fault.role.publicreach: the public targets judged, the verdict with its hold-down,
the rows of both heads, and what is told.

A fake pinger answers from a table (which targets answer now); a fake clock moves one
probe interval per cycle.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from fakes import EventRecorder, FakeClock

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.lan.icmp import TargetStats
from fcaps.fault.role.publicreach import PublicReachJob
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.core.events import EventBus, EventType
from haoscar_snmp.core.state import LinkStatus, PeerView, PublicReach, PublicState, State

CONFIG = """
[cluster]
name = "t"
local_head = "head1"
state_dir = "state"
[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.71.1.1"
lan_b = "10.71.2.1"
public = "10.71.0.1"
[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.71.1.2"
lan_b = "10.71.2.2"
public = "10.71.0.2"
[heartbeat]
key_file = "hb.key"
[snmp]
listen = ["127.0.0.1:1161"]
[failover]
public_targets = ["10.71.0.254", "10.71.0.100", "fd71::200"]
public_probe_interval_ms = 100
public_rise = 2
public_fall = 3
public_hold_down_ms = 1000
"""
TARGETS = ("10.71.0.254", "10.71.0.100", "fd71::200")


class FakePinger:
    """Each probe of an answering target is answered at once (`received` grows)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.replied: dict[str, float] = {}
        self.answering: set[str] = set(TARGETS)
        self.received: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.opened = 0
        self.fail_open = False

    async def ensure_open(self) -> None:
        if self.fail_open:
            raise OSError("no ICMP socket: operation not permitted")
        self.opened += 1

    def probe(self, address: str) -> None:
        self.sent[address] = self.sent.get(address, 0) + 1
        if address in self.answering:
            self.received[address] = self.received.get(address, 0) + 1
            self.replied[address] = self.clock.monotonic()

    def stats(self, address: str) -> TargetStats | None:
        if address not in self.sent:
            return None
        return TargetStats(address, self.sent[address], self.received.get(address, 0), 0, 0, "", None,
                           self.replied.get(address), 0.0004, None)

    def forget(self, address: str) -> None:
        self.sent.pop(address, None)
        self.received.pop(address, None)


class World:
    def __init__(self, tmp_path: Path, text: str = CONFIG) -> None:
        (tmp_path / "hb.key").write_bytes(b"k" * 32)
        (tmp_path / "hb.key").chmod(0o600)
        self.cfg = parse_config(text, label="t.toml", base_dir=tmp_path, environ={})
        self.state = State()
        apply_to_state(self.cfg, self.state)
        self.clock = FakeClock()
        self.bus = EventBus()
        self.events = EventRecorder()
        self.bus.subscribe("recorder", self.events)
        self.pinger = FakePinger(self.clock)
        self.woken = 0
        self.job = PublicReachJob(self.state, lambda: self.cfg, self.bus, Alarms(self.state, self.bus, self.clock),
                                  self.clock, self.pinger, self.wake)

    def wake(self) -> None:
        self.woken += 1

    def cycles(self, n: int) -> str:
        async def go() -> str:
            sentence = ""
            for _ in range(n):
                sentence = await self.job.run_cycle()
                self.clock.advance(0.1)
            return sentence
        return asyncio.run(go())

    @property
    def reach(self) -> PublicReach:
        return self.state.public_reach

    def head(self, index: int):  # noqa: ANN201
        return self.state.heads[(index,)]

    def rows(self, head: int) -> list[LinkStatus]:
        return [self.state.public_targets[(head, i)].status for i in (1, 2, 3)]

    def alarms(self) -> set[tuple[int, str]]:
        return {(a.probable_cause, a.subject) for a in self.state.alarms.values()}

    def types(self) -> list[EventType]:
        return [e.type for e in self.events.events if e.type not in (EventType.ALARM_RAISED,
                                                                    EventType.ALARM_CLEARED)]


def test_targets_are_reachable_after_rise_answers_and_unreachable_after_fall_misses(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cycles(2)                                         # probe, then one answered probe judged
    assert w.rows(1) == [LinkStatus.UNKNOWN] * 3 and w.reach.reached == 0 and not w.reach.lost
    w.cycles(1)                                         # two in a row
    assert w.rows(1) == [LinkStatus.UP] * 3
    assert w.reach == PublicReach(3, 3, 0b111, "")
    assert w.head(1).public_state is PublicState.REACHED and w.head(1).public_reached == 3
    w.pinger.answering = {"10.71.0.254"}
    w.cycles(3)                                         # the probes of 3 cycles judged: 2 misses
    assert w.rows(1) == [LinkStatus.UP] * 3
    w.cycles(1)
    assert w.rows(1) == [LinkStatus.UP, LinkStatus.DOWN, LinkStatus.DOWN]
    assert w.reach == PublicReach(3, 1, 0b001, "")
    assert w.state.public_targets[(1, 3)].address == "fd71::200"
    assert w.state.public_targets[(1, 1)].rtt_us == 400


def test_a_head_reaching_no_target_has_lost_the_public_lan_until_a_hold_down_after_it_is_back(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cycles(3)
    woken = w.woken
    w.pinger.answering = set()
    sentence = w.cycles(4)
    assert w.reach.lost and "reaches none of its 3 public targets" in w.reach.lost
    assert "reaches none" in sentence and w.woken > woken
    assert w.head(1).public_state is PublicState.LOST and w.head(1).public_reached == 0
    assert (int(ProbableCause.PUBLIC_LAN_UNREACHABLE), "head1") in w.alarms()
    lost = next(e for e in w.events.events if e.type == EventType.PUBLIC_LAN_LOST)
    assert lost.subject == "head1" and lost.data["head_index"] == 1
    w.pinger.answering = {"10.71.0.100"}
    w.cycles(3)
    assert w.reach.reached == 1 and w.reach.lost          # back, but within the hold-down
    assert "hold-down" in w.reach.lost
    w.pinger.answering = set()                           # it flaps: the hold-down starts again later
    w.cycles(4)
    w.pinger.answering = {"10.71.0.100"}
    w.cycles(12)
    assert w.reach.lost                                  # 1 s hold-down not over yet (reached at ~0.3 s)
    w.cycles(2)
    assert not w.reach.lost and w.head(1).public_state is PublicState.REACHED
    assert (int(ProbableCause.PUBLIC_LAN_UNREACHABLE), "head1") not in w.alarms()
    assert w.types().count(EventType.PUBLIC_LAN_LOST) == 1
    assert w.types().count(EventType.PUBLIC_LAN_REGAINED) == 1


def test_some_targets_unknown_and_none_reached_is_not_a_loss(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.pinger.answering = {"10.71.0.100"}
    w.cycles(1)
    w.pinger.answering = set()
    w.cycles(2)
    assert not w.reach.lost        # nothing judged unreachable yet: no verdict, nothing moves


def test_without_an_icmp_socket_nothing_is_judged_and_nothing_moves(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.pinger.fail_open = True
    sentence = w.cycles(10)
    assert "cannot ping" in sentence and not w.reach.lost and w.reach.reached == 0
    assert not w.alarms()


def test_the_peer_rows_follow_its_advertised_mask_and_its_loss_is_told_here(tmp_path: Path) -> None:
    w = World(tmp_path)
    peer = PeerView(name="head2", preferred_primary=False, heard=True, public=(3, 2, 0b101),
                    flags=int(Flag.QUORUM_OK))
    w.state.peer = peer
    w.cycles(1)
    assert w.rows(2) == [LinkStatus.UP, LinkStatus.DOWN, LinkStatus.UP]
    assert w.head(2).public_reached == 2 and w.head(2).public_state is PublicState.REACHED
    w.state.peer = replace(peer, public=(3, 0, 0), flags=int(Flag.QUORUM_OK | Flag.PUBLIC_LOST))
    w.cycles(1)
    assert w.head(2).public_state is PublicState.LOST
    assert (int(ProbableCause.PUBLIC_LAN_UNREACHABLE), "head2") in w.alarms()
    told = [e for e in w.events.events if e.type == EventType.PUBLIC_LAN_LOST]
    assert told and told[0].subject == "head2" and told[0].data["head_index"] == 2
    w.state.peer = replace(peer, heard=False)            # not heard: unknown rows, its last word stands
    w.cycles(1)
    assert w.rows(2) == [LinkStatus.UNKNOWN] * 3 and w.head(2).public_state is PublicState.UNKNOWN
    assert (int(ProbableCause.PUBLIC_LAN_UNREACHABLE), "head2") in w.alarms()
    w.state.peer = peer
    w.cycles(1)
    assert (int(ProbableCause.PUBLIC_LAN_UNREACHABLE), "head2") not in w.alarms()
    assert EventType.PUBLIC_LAN_REGAINED in w.types()


def test_a_peer_of_an_earlier_release_shows_unknown_rows_and_no_targets(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.state.peer = PeerView(name="head2", preferred_primary=False, heard=True, public=None)
    w.cycles(1)
    assert w.rows(2) == [LinkStatus.UNKNOWN] * 3
    assert w.head(2).public_state is PublicState.NOT_WATCHED


def test_targets_changed_by_a_reload_keep_the_judgement_of_those_that_stay(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cycles(3)
    f = w.cfg.failover.model_copy(update={"public_targets": (w.cfg.failover.public_targets[1],)})
    w.cfg = w.cfg.model_copy(update={"failover": f})
    w.cycles(1)
    assert w.reach == PublicReach(1, 1, 0b1, "")
    assert [key for key in w.state.public_targets.keys() if key[0] == 1] == [(1, 1)]
    assert "10.71.0.254" not in w.pinger.sent                 # forgotten
    none = w.cfg.failover.model_copy(update={"public_targets": ()})
    w.cfg = w.cfg.model_copy(update={"failover": none})
    assert w.cycles(1) == "no public targets" and w.reach == PublicReach()
    assert w.head(1).public_state is PublicState.NOT_WATCHED
