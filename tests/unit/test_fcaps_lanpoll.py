"""fcaps.fault.lan.poller.LanPoller with a fake prober, fake netlink counters and a fake clock.

Each test round: every pinged address gets one probe (answered or not, as the test says),
the clock moves one poll interval, and the job runs. The rules themselves (down after,
rise, hold-down, LAN failure) are tested in test_fcaps_lanwatch.py; here: what the poller
does with them (rows, events, alarms, the LAN table, who reports, reloads).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakes import EventRecorder, FakeClock

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.lan.icmp import TargetStats
from fcaps.fault.lan.poller import LanPoller
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.schema import Config, HeadConfig, LanConfig, NodeConfig, Poller
from haoscar_snmp.core.events import EventBus, EventType
from haoscar_snmp.core.state import HeadStatus, Lan, LanSource, LanStatus, LinkStatus, State

INTERVAL = 1.0


class FakeProber:
    """Counts like the real prober; `answering` says which addresses reply."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.timeout = 1.0
        self.answering: set[str] = set()
        self.counts: dict[str, list[Any]] = {}
        self.forgotten: list[str] = []

    async def ensure_open(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str:
        return "fake"

    def probe(self, address: str) -> None:
        c = self.counts.setdefault(address, [0, 0, None])
        c[0] += 1
        if address in self.answering:
            c[1] += 1
            c[2] = self.clock.monotonic()

    def stats(self, address: str) -> TargetStats | None:
        c = self.counts.get(address)
        if c is None:
            return None
        return TargetStats(address, c[0], c[1], 0, 0, "", self.clock.monotonic(), c[2],
                           0.0002 if c[2] is not None else None, None)

    def forget(self, address: str) -> None:
        self.forgotten.append(address)
        self.counts.pop(address, None)


class NoSweep:
    def __init__(self, prober: Any, interval: float, targets: list[str]) -> None:
        self.interval, self.targets = interval, targets

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_targets(self, targets: list[str]) -> None:
        self.targets = targets


@dataclass
class Counters:
    rx_packets: int = 10
    tx_packets: int = 20
    rx_errors: int = 1
    tx_errors: int = 2
    rx_dropped: int = 3
    tx_dropped: int = 4
    carrier: bool | None = True
    admin_up: bool = True


class FakeLinks:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.links: dict[str, Counters] = {}

    def set_names(self, names: list[str]) -> None:
        self.names = names

    async def counters(self) -> dict[str, Counters]:
        return dict(self.links)


def node_address(lan: Lan, n: int) -> str:
    return f"10.71.{int(lan)}.{10 + n}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_config(None, state_dir=Path(tmp_path_factory.mktemp("state")))


def config(demo: Config, nodes: int = 4, poller: Poller = Poller.STANDBY, peer: bool = False) -> Config:
    heads = [HeadConfig(name="head1", preferred_role="primary", lan_a=ipaddress.ip_address("10.71.1.1"),
                        lan_b=ipaddress.ip_address("10.71.2.1"))]
    if peer:
        heads.append(HeadConfig(name="head2", preferred_role="standby", lan_a=ipaddress.ip_address("10.71.1.2"),
                                lan_b=ipaddress.ip_address("10.71.2.2")))
    return demo.model_copy(update={
        "heads": tuple(heads),
        "nodes": tuple(NodeConfig(name=f"node{n}", lan_a=ipaddress.ip_address(node_address(Lan.LAN_A, n)),
                                  lan_b=ipaddress.ip_address(node_address(Lan.LAN_B, n)))
                       for n in range(1, nodes + 1)),
        "lan": LanConfig(poller=poller, hold_down_ms=0),
        "timing": demo.timing.model_copy(update={"lan_poll_interval_ms": 1000, "lan_down_after_ms": 3000}),
    })


class Rig:
    def __init__(self, cfg: Config, status: HeadStatus = HeadStatus.ACTIVE) -> None:
        self.wakes = 0
        self.cfg = cfg
        self.clock = FakeClock()
        self.state = State()
        apply_to_state(cfg, self.state)
        for head in self.state.heads.values():
            head.status = status if head.is_local else HeadStatus.STANDBY
        self.bus = EventBus()
        self.events = EventRecorder()
        self.bus.subscribe("test", self.events)
        self.alarms = Alarms(self.state, self.bus, self.clock)
        self.prober = FakeProber(self.clock)
        self.links = FakeLinks()
        self.poller = LanPoller(self.state, lambda: self.cfg, self.bus, self.alarms, self.clock,
                                prober=self.prober, links=lambda changed: self.links,  # type: ignore[arg-type,return-value]
                                interface_of={"10.71.1.1": "eth1", "10.71.2.1": "eth2"}.get,  # type: ignore[arg-type]
                                sweep=NoSweep, wake_role=self.wake)  # type: ignore[arg-type]
        self.links.links = {"eth1": Counters(), "eth2": Counters()}
        asyncio.run(self.poller.run_cycle())        # the first cycle reads the configuration

    def wake(self) -> None:
        self.wakes += 1

    def rounds(self, count: int = 1) -> str:
        sentence = ""
        for _ in range(count):
            for address in list(self.poller._remote.values()):
                self.prober.probe(address)
            self.clock.advance(INTERVAL)
            sentence = asyncio.run(self.poller.run_cycle())
        return sentence

    def row(self, node: str, lan: Lan) -> Any:
        return next(r for r in self.state.lan_ifs.values() if (r.node, r.lan) == (node, lan))

    def answer_all(self) -> None:
        self.prober.answering = {node_address(lan, n) for lan in (Lan.LAN_A, Lan.LAN_B)
                                 for n in range(1, 100)} | {"10.71.1.2", "10.71.2.2"}


def test_a_node_that_stops_answering_goes_down_is_told_and_comes_back(demo: Config) -> None:
    rig = Rig(config(demo))
    rig.answer_all()
    rig.rounds(2)
    row = rig.row("node1", Lan.LAN_A)
    assert row.status == LinkStatus.UP and row.source == LanSource.THIS_HEAD
    assert row.probes_sent == 2 and row.replies == 2 and row.rtt_us == 200 and row.last_reply > 0
    rig.prober.answering.discard(node_address(Lan.LAN_A, 1))
    rig.rounds(3)
    assert row.status == LinkStatus.DOWN                          # down after 3 s without a reply
    rig.rounds(2)                                                 # told after the LAN's window
    down = [e for e in rig.events.events if e.type == EventType.LAN_IF_DOWN]
    assert [e.subject for e in down] == ["node1/lanA"]
    assert down[0].data["lan_if_index"] == next(i for (i,), r in rig.state.lan_ifs.items() if r is row)
    assert [(a.probable_cause, a.subject) for a in rig.state.alarms.values()] == \
        [(ProbableCause.LAN_INTERFACE_FAILURE, "node1/lanA")]
    assert rig.state.lans[(int(Lan.LAN_A),)].status == LanStatus.DEGRADED
    rig.prober.answering.add(node_address(Lan.LAN_A, 1))
    rig.rounds(3)                                                 # rise: 3 replies in a row
    assert row.status == LinkStatus.UP
    assert [e.subject for e in rig.events.events if e.type == EventType.LAN_IF_UP] == ["node1/lanA"]
    assert not rig.state.alarms.values()
    assert rig.state.lans[(int(Lan.LAN_A),)].status == LanStatus.OK


def test_a_whole_lan_cut_is_one_lan_failure_and_the_cluster_runs_on_the_other(demo: Config) -> None:
    rig = Rig(config(demo, nodes=6))
    rig.answer_all()
    rig.rounds(2)
    rig.prober.answering = {a for a in rig.prober.answering if not a.startswith("10.71.1.")}
    sentence = rig.rounds(6)
    types = rig.events.types()
    assert types.count(EventType.LAN_FAILED) == 1 and EventType.LAN_IF_DOWN not in types
    lan_a = rig.state.lans[(int(Lan.LAN_A),)]
    assert lan_a.status == LanStatus.FAILED and lan_a.down == 6 and lan_a.interfaces == 7   # + this head's
    assert sentence.startswith("lanA failed: running on lanB only")
    assert rig.state.cluster.lan_state == sentence
    assert [(a.probable_cause, a.subject) for a in rig.state.alarms.values()] == [(ProbableCause.LAN_FAILURE, "lanA")]
    rig.prober.answering = {node_address(lan, n) for lan in (Lan.LAN_A, Lan.LAN_B) for n in range(1, 7)}
    rig.rounds(4)
    assert rig.events.types().count(EventType.LAN_RECOVERED) == 1
    assert lan_a.status == LanStatus.OK and not rig.state.alarms.values()


def test_this_heads_own_interfaces_follow_the_kernel_not_pings(demo: Config) -> None:
    rig = Rig(config(demo, nodes=1))
    rig.answer_all()
    rig.rounds(1)
    own = rig.row("head1", Lan.LAN_A)
    assert "10.71.1.1" not in rig.prober.counts                   # never pinged
    assert rig.links.names == ["eth1", "eth2"]
    assert own.status == LinkStatus.UP and own.carrier == LinkStatus.UP
    assert (own.in_packets, own.out_packets, own.in_errors, own.out_errors, own.in_discards,
            own.out_discards) == (10, 20, 1, 2, 3, 4)
    rig.poller.link_changed("eth1", carrier=False, admin_up=True)  # the netlink event: at once
    assert own.status == LinkStatus.DOWN and own.carrier == LinkStatus.DOWN
    rig.links.links["eth1"] = Counters(carrier=False)
    rig.rounds(1)
    assert [e.subject for e in rig.events.events if e.type == EventType.LAN_IF_DOWN] == ["head1/lanA"]
    rig.poller.link_changed("eth1", carrier=True, admin_up=True)
    rig.links.links["eth1"] = Counters()
    rig.rounds(1)
    assert own.status == LinkStatus.UP
    assert [e.subject for e in rig.events.events if e.type == EventType.LAN_IF_UP] == ["head1/lanA"]


def test_the_head_that_does_not_report_polls_but_tells_nothing(demo: Config) -> None:
    rig = Rig(config(demo, peer=True), status=HeadStatus.ACTIVE)   # standby head2 reports
    rig.answer_all()
    rig.rounds(2)
    rig.prober.answering.discard(node_address(Lan.LAN_B, 2))
    rig.rounds(6)
    assert rig.row("node2", Lan.LAN_B).status == LinkStatus.DOWN     # its own view, shown
    assert "10.71.1.2" in rig.prober.counts                          # the peer head is pinged
    assert EventType.LAN_IF_DOWN not in rig.events.types() and not rig.state.alarms.values()
    assert rig.state.cluster.lan_poller == "head2"
    # The peer is gone: this (active) head reports now, and already knows node2 is down.
    rig.state.heads[(2,)].status = HeadStatus.FAILED
    rig.rounds(1)
    assert rig.state.cluster.lan_poller == "head1"


def test_a_reload_keeps_states_and_forgets_what_left(demo: Config) -> None:
    rig = Rig(config(demo, nodes=3))
    rig.answer_all()
    rig.rounds(2)
    kept = rig.row("node1", Lan.LAN_A)
    rig.cfg = config(demo, nodes=2)
    apply_to_state(rig.cfg, rig.state)
    rig.rounds(1)
    assert set(rig.prober.forgotten) == {node_address(Lan.LAN_A, 3), node_address(Lan.LAN_B, 3)}
    assert rig.row("node1", Lan.LAN_A) is kept and kept.status == LinkStatus.UP
    assert not [r for r in rig.state.lan_ifs.values() if r.node == "node3"]


def test_a_peer_answering_on_no_private_interface_while_the_nodes_answer_counts_as_failed(demo: Config) -> None:
    cfg = config(demo, peer=True)
    rig = Rig(cfg.model_copy(update={"failover": cfg.failover.model_copy(
        update={"lan_failure_is_head_failure": True})}), status=HeadStatus.STANDBY)
    rig.answer_all()
    rig.rounds(2)
    assert rig.state.peer_lans_down == ""
    rig.prober.answering -= {"10.71.1.2", "10.71.2.2"}                 # head2's interfaces fall silent
    rig.rounds(4)
    assert rig.state.peer_lans_down.startswith("head2 answers on none of its private interfaces")
    assert rig.wakes == 1                                             # the role machine decides at once
    rig.prober.answering = set()                                      # now nothing answers this head:
    rig.rounds(4)                                                     # its own links are the suspects
    assert rig.state.peer_lans_down == "" and rig.wakes == 2


def test_the_peer_is_never_blamed_when_the_rule_is_off_or_this_heads_own_link_is_down(demo: Config) -> None:
    rig = Rig(config(demo, peer=True), status=HeadStatus.STANDBY)
    rig.answer_all()
    rig.prober.answering -= {"10.71.1.2", "10.71.2.2"}
    rig.rounds(6)
    assert rig.state.peer_lans_down == ""                              # off by default
    cfg = config(demo, peer=True)
    rig = Rig(cfg.model_copy(update={"failover": cfg.failover.model_copy(
        update={"lan_failure_is_head_failure": True})}), status=HeadStatus.STANDBY)
    rig.answer_all()
    rig.prober.answering -= {"10.71.1.2", "10.71.2.2"}
    rig.links.links["eth2"] = Counters(carrier=False)                  # our own lanB is down
    rig.rounds(6)
    assert rig.state.peer_lans_down == ""


def test_a_head_that_takes_over_reporting_raises_the_alarms_of_what_is_down_and_one_that_stops_clears_its_own(
        demo: Config) -> None:
    rig = Rig(config(demo, peer=True), status=HeadStatus.ACTIVE)       # head2, the standby, reports
    rig.answer_all()
    rig.rounds(2)
    rig.prober.answering.discard(node_address(Lan.LAN_B, 2))
    rig.rounds(6)
    assert not rig.state.alarms.values()                               # not ours to raise
    rig.state.heads[(2,)].status = HeadStatus.FAILED                   # head2 is gone: head1 reports
    rig.rounds(1)
    assert [(a.probable_cause, a.subject) for a in rig.state.alarms.values()] == \
        [(ProbableCause.LAN_INTERFACE_FAILURE, "node2/lanB")]
    assert EventType.LAN_IF_DOWN not in rig.events.types()             # head2 told it already
    rig.state.heads[(2,)].status = HeadStatus.STANDBY                  # head2 is back and reports
    rig.prober.answering.add(node_address(Lan.LAN_B, 2))
    rig.rounds(3)
    assert not rig.state.alarms.values()                               # cleared, not left standing
    assert EventType.LAN_IF_UP not in rig.events.types()
