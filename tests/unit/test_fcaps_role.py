"""The role state machine with fake aliases, a fake peer and a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakes import FakeAliases, FakeClock, FakeRunner

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.alarms import Alarms, ProbableCause
from fcaps.fault.heartbeat.monitor import HeartbeatMonitor
from fcaps.fault.heartbeat.peer import LocalView
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.role.advertise import GenerationFile
from fcaps.fault.role.machine import RoleMachine
from fcaps.fault.role.quorum import QuorumCheck
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.core.events import EventBus, EventType
from haoscar_snmp.core.state import (
    Claim,
    ClusterStatus,
    ControlAction,
    HbProcessView,
    LinkView,
    PeerView,
    State,
)
from haoscar_snmp.core.state import HeadStatus as S

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


class Recorder:
    """The advertiser: keeps every view the role machine advertised."""

    def __init__(self) -> None:
        self.views: list[LocalView] = []

    def advertise(self, local: LocalView) -> None:
        self.views.append(local)

    @property
    def last(self) -> LocalView:
        return self.views[-1]


def view(status: S, heard: bool = True, flags: Flag = Flag.PREFERRED_PRIMARY | Flag.QUORUM_OK,
         generation: int = 1, heard_since: float = 0.0, silent_since: float = 0.0) -> PeerView:
    return PeerView(name="head1", preferred_primary=True, heard=heard,
                    paths_up=frozenset({1, 2}) if heard else frozenset(), status=status,
                    flags=int(flags), generation=generation, heard_since=heard_since,
                    silent_since=silent_since, ever_heard=True)


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
        self.state.peer = PeerView(name="head1", preferred_primary=True)
        self.advertised = Recorder()
        self.generation = GenerationFile(tmp_path / "role.generation")
        self.alarms = Alarms(self.state, self.bus, self.clock)
        self.role = RoleMachine(self.state, lambda: self.cfg, self.aliases, self.bus,
                                self.alarms, self.clock, self.runner,
                                self.advertised, self.generation)

    @property
    def peer(self) -> PeerView | None:
        return self.state.peer

    @peer.setter
    def peer(self, value: PeerView | None) -> None:
        self.state.peer = value

    def step(self) -> str:
        async def go() -> str:
            reason = await self.role.run_cycle()
            await self.role.stop()
            return reason
        return asyncio.run(go())

    def primary_dies(self) -> None:
        """head2 settles as standby under an active head1, which then dies."""
        self.peer = view(S.ACTIVE, heard_since=self.clock.monotonic() - 5)
        self.step()
        self.peer = view(S.ACTIVE, heard=False, silent_since=self.clock.monotonic())
        self.step()

    def types(self) -> list[EventType]:
        return [e.type for e in self.events]


def test_standby_fails_over_when_the_primary_dies(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.peer = view(S.ACTIVE)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    w.clock.advance(1.0)
    w.peer = view(S.ACTIVE, heard=False, silent_since=w.clock.monotonic() - 0.02)
    w.step()
    assert w.role.status is S.ACTIVE
    assert w.aliases.addresses == {"10.71.0.50"}
    # fence first, then the quorum check, services after the alias
    assert w.runner.calls == ["fence head1", "ping gateway", "start pbs"]
    assert w.state.cluster.failover_count == 1 and w.state.cluster.active_head == "head2"
    assert w.state.aliases[(1,)].owner == "head2"
    assert w.advertised.last.aliases == ("10.71.0.50",)
    assert w.advertised.last.generation == 2 == w.generation.value   # above the peer's 1
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
    w.peer = view(S.STANDBY, flags=Flag.PREFERRED_PRIMARY | Flag.QUORUM_OK | Flag.WANTS_ACTIVE)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    assert w.state.aliases[(1,)].owner == ""
    assert w.runner.calls[-1] == "stop pbs"


def test_orphaned_alias_is_dropped_when_the_peer_is_active(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.aliases.addresses.add("10.71.0.50")        # left by a daemon killed with -9
    w.peer = view(S.ACTIVE)
    w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()


def test_split_brain_loser_releases_and_it_is_notified(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.primary_dies()
    w.peer = view(S.ACTIVE, heard_since=w.clock.monotonic())   # LANs healed
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
    w.peer = view(S.ACTIVE, heard=False)
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


def test_a_failing_quorum_command_clears_the_advertised_flag(tmp_path: Path) -> None:
    w = World(tmp_path, quorum_ok=False)
    job = QuorumCheck(w.state, lambda: w.cfg, w.runner, w.clock, wake_role=lambda: None)
    w.peer = view(S.ACTIVE)
    w.step()
    assert w.advertised.last.flags & Flag.QUORUM_OK
    assert asyncio.run(job.run_cycle()) == "quorum check fails (exit 1)"
    w.step()
    assert not w.advertised.last.flags & Flag.QUORUM_OK
    w.runner.answers["ping gateway"] = [0]
    asyncio.run(job.run_cycle())
    w.step()
    assert w.advertised.last.flags & Flag.QUORUM_OK


def test_with_auto_failback_off_the_head_that_took_over_keeps_the_alias_after_a_freeze(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cfg = w.cfg.model_copy(update={"timing": w.cfg.timing.model_copy(update={"auto_failback": False})})
    w.primary_dies()                                   # head2 took over: generation 2
    assert w.role.status is S.ACTIVE and w.generation.value == 2
    w.peer = view(S.ACTIVE, generation=1)              # head1 thaws, still active (generation 1)
    w.step()
    assert w.role.status is S.ACTIVE and w.aliases.addresses == {"10.71.0.50"}
    assert EventType.SPLIT_BRAIN_DETECTED in w.types()
    w.peer = view(S.STANDBY, generation=1, flags=Flag.PREFERRED_PRIMARY | Flag.QUORUM_OK | Flag.HANDOVER)
    w.step()
    assert w.role.status is S.ACTIVE and EventType.SPLIT_BRAIN_RESOLVED in w.types()


def test_an_isolated_active_head_hands_over_and_says_why(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.primary_dies()
    w.peer = view(S.STANDBY, heard_since=w.clock.monotonic())   # heard again (public LAN)
    w.state.links = LinkView(lan_a="lana", lan_b="lanb", public="pub",
                             carrier=(("lana", False), ("lanb", False), ("pub", True)))
    assert "waiting to hear whether head1 is isolated too" in w.step()
    w.clock.advance(0.2)
    reason = w.step()
    assert "isolated" in reason
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    assert w.advertised.last.flags & Flag.HANDOVER and w.advertised.last.flags & Flag.ISOLATED
    released = [e for e in w.events if e.type == EventType.ROLE_CHANGED and "releasing" in e.text]
    assert released and "isolated" in released[0].text
    # the peer takes over: the handover is over, the flag goes
    w.peer = view(S.ACTIVE, generation=3, heard_since=w.clock.monotonic())
    w.step()
    assert not w.advertised.last.flags & Flag.HANDOVER


def test_an_alias_announced_by_a_head_we_cannot_hear_is_settled_and_not_taken_back(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.cfg = w.cfg.model_copy(update={"timing": w.cfg.timing.model_copy(update={"auto_failback": False})})
    w.peer = view(S.STANDBY, generation=5)             # last contact: head1 standby, generation 5
    w.step()
    w.peer = view(S.STANDBY, heard=False, generation=5, silent_since=w.clock.monotonic())
    w.step()                                           # head2 takes over: generation 6
    assert w.role.status is S.ACTIVE and w.generation.value == 6
    # an announcement heard before the takeover is no claim on it ...
    w.state.alias_claims["10.71.0.50"] = Claim("02:00:00:00:00:01", w.clock.monotonic() - 0.5,
                                               w.clock.monotonic() - 0.5)
    w.step()
    assert w.role.status is S.ACTIVE
    # ... but head1 took over as well (it could not hear us either) and announces the alias
    w.clock.advance(0.5)
    w.state.alias_claims["10.71.0.50"] = Claim("02:00:00:00:00:01", w.clock.monotonic(), w.clock.monotonic())
    w.step()
    # both took over since the last contact: a tie, and head1 is the preferred primary
    assert w.role.status is S.STANDBY and w.aliases.addresses == set()
    assert EventType.SPLIT_BRAIN_DETECTED in w.types()
    w.clock.advance(1.0)
    w.state.alias_claims["10.71.0.50"] = Claim("02:00:00:00:00:01", w.clock.monotonic(), w.clock.monotonic())
    assert "yielded" in w.step() and w.role.status is S.STANDBY
    w.clock.advance(5.0)                               # head1 stopped announcing: gone
    w.step()
    assert w.role.status is S.ACTIVE


def test_a_head_deaf_to_its_peer_lets_go_instead_of_defending_the_alias(tmp_path: Path) -> None:
    """head2 is active when its heartbeat process freezes: the last report says head1 is
    heard and standby, and stays so. head1, hearing nothing, takes over and announces the
    alias. Taken at its word, the stale report made head2 defend the alias against a
    "stray" address for as long as the freeze lasted. The monitor marks head2 deaf once
    the process is silent for its bound: head2 releases (saying HANDOVER) and does not
    defend; a new process must then hear a dead time before head2 believes head1 dead."""
    w = World(tmp_path)
    w.peer = view(S.ACTIVE)
    w.step()
    w.peer = view(S.STANDBY, flags=Flag.PREFERRED_PRIMARY | Flag.QUORUM_OK | Flag.HANDOVER)
    w.step()
    assert w.role.status is S.ACTIVE
    monitor = HeartbeatMonitor(w.state, w.bus, w.alarms, w.clock, 1, lambda: None)
    w.clock.advance(0.2)
    w.peer = view(S.STANDBY)                          # the last report: head1 heard, standby
    w.state.alias_claims["10.71.0.50"] = Claim("02:00:00:00:00:01", w.clock.monotonic(), w.clock.monotonic())
    w.clock.advance(0.3)
    w.state.alias_claims["10.71.0.50"] = Claim("02:00:00:00:00:01", w.clock.monotonic() - 0.3,
                                               w.clock.monotonic())
    assert "defending" in w.step()                    # by that report, a stray address
    monitor.silent("the heartbeat process has sent nothing for 250 ms")
    assert w.state.peer is not None and not w.state.peer.heard
    reason = w.step()
    assert w.role.status is S.STANDBY and w.aliases.addresses == set(), reason
    assert "cannot hear head1" in reason and w.advertised.last.flags & Flag.HANDOVER
    assert EventType.HB_PROCESS_FAILED in w.types()
    assert ProbableCause.HEARTBEAT_PROCESS_FAILURE in {a.probable_cause for a in w.state.alarms.values()}
    w.state.alias_claims.clear()
    w.clock.advance(1.0)
    assert "would take over" in w.step() and w.role.status is S.STANDBY   # deaf: takes nothing over
    monitor.running()                                 # a new process: it has heard nobody yet
    assert w.peer == PeerView(name="head1", preferred_primary=True)
    assert w.state.hb_process == HbProcessView("", 1, w.clock.monotonic())
    assert ProbableCause.HEARTBEAT_PROCESS_FAILURE not in {a.probable_cause for a in w.state.alarms.values()}
    w.clock.advance(0.6)                              # past the dead time (300 ms), within the start-up wait
    assert "replaced" in w.step() and w.role.status is S.STANDBY
    w.peer = view(S.ACTIVE)
    w.step()
    assert w.role.status is S.STANDBY                 # head1 is active: nothing moves
    assert not w.state.alarms.values()                # and the second holder is gone
    w.clock.advance(0.2)
    w.peer = view(S.ACTIVE, heard=False, silent_since=w.clock.monotonic())
    w.step()
    assert w.role.status is S.ACTIVE                  # head1, heard by the new process, died: failover


def test_a_new_heartbeat_process_that_never_hears_the_peer_takes_over_after_the_start_up_wait(
        tmp_path: Path) -> None:
    w = World(tmp_path)
    w.peer = view(S.ACTIVE)
    w.step()
    monitor = HeartbeatMonitor(w.state, w.bus, w.alarms, w.clock, 1, lambda: None)
    monitor.silent("the heartbeat process exited (code -9)")
    w.step()
    monitor.running()
    w.clock.advance(0.9)
    assert "replaced" in w.step() and w.role.status is S.STANDBY    # within initdead (1000 ms)
    w.clock.advance(0.2)
    w.step()
    assert w.role.status is S.ACTIVE                 # nobody heard for the whole wait


def test_head_index_does_not_depend_on_the_order_of_heads_in_the_file(tmp_path: Path) -> None:
    World(tmp_path)                                    # writes the key file
    head1, head2 = (CONFIG.split("[[heads]]")[i].split("[[aliases]]")[0] for i in (1, 2))
    reversed_text = CONFIG.replace(f"[[heads]]{head1}[[heads]]{head2}", f"[[heads]]{head2}[[heads]]{head1}")
    first = parse_config(CONFIG, label="a", base_dir=tmp_path, environ={})
    second = parse_config(reversed_text, label="b", base_dir=tmp_path, environ={})
    assert [h.name for h in second.heads] == ["head2", "head1"]
    for name in ("head1", "head2"):
        assert first.head_index(name) == second.head_index(name)
    assert (first.head_index("head1"), first.head_index("head2")) == (1, 2)


def test_an_active_head_applies_alias_rows_added_changed_or_removed_at_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.primary_dies()
    assert w.aliases.addresses == {"10.71.0.50"}
    added = w.cfg.aliases + (w.cfg.aliases[0].model_copy(update={"index": 2, "address": "10.71.0.51"}),)
    w.cfg = w.cfg.model_copy(update={"aliases": added})
    apply_to_state(w.cfg, w.state)
    w.step()
    assert w.aliases.addresses == {"10.71.0.50", "10.71.0.51"}
    assert ("announce", "10.71.0.51") in w.aliases.calls
    assert w.advertised.last.aliases == ("10.71.0.50", "10.71.0.51")
    w.cfg = w.cfg.model_copy(update={"aliases": added[1:]})      # the first row destroyed
    apply_to_state(w.cfg, w.state)
    w.step()
    assert w.aliases.addresses == {"10.71.0.51"}
    assert w.advertised.last.aliases == ("10.71.0.51",)


def test_reset_counters_is_done_by_each_owner_on_the_event(tmp_path: Path) -> None:
    from fcaps.configuration.control import OperatorActions
    from fcaps.fault.services.checks import Checker
    from fcaps.fault.services.monitor import ServiceMonitor

    w = World(tmp_path)
    w.primary_dies()
    w.state.services[(1,)].restarts = 4
    services = ServiceMonitor(w.state, lambda: w.cfg, Checker(w.runner), w.runner, w.bus,
                              Alarms(w.state, w.bus, w.clock), w.clock)
    w.bus.subscribe("role", w.role.on_event)
    w.bus.subscribe("services", services.on_event)
    assert w.state.cluster.failover_count == 1
    OperatorActions(w.state, w.bus, w.clock).handle(ControlAction.RESET_COUNTERS, "v3:admin@nms")
    assert w.state.cluster.failover_count == 0 and w.state.services[(1,)].restarts == 0
