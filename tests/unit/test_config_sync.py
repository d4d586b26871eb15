"""The settings exchange between two heads, in one process: two configuration stores and
two exchange jobs joined by an in-memory link that stands for the heartbeat process (it
reports into each head's settings channel and delivers the datagrams there, as the
heartbeat process does).

Each head has its own files and state directory; the link carries the real datagrams
(HMAC, nonces) and can be cut, so the proposal, adoption, drift and replay rules are
tested without namespaces (tests/scenarios/test_config_sync.py runs them between two
daemons)."""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_config_cluster import HEAD1, HEAD2

from fcaps.configuration.agreement import PeerAgreement, Proposal
from fcaps.configuration.channel import SettingsChannel
from fcaps.configuration.store import ConfigStore
from fcaps.configuration.sync import ClusterSync
from fcaps.fault.alarms import Alarms, ProbableCause
from haoscar_snmp.config.clustersync import Version
from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType
from haoscar_snmp.core.state import ConfigSyncStatus, PeerView, State


def run(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """The test on an event loop of its own (the suite runs no asyncio plugin); pytest
    reads the fixtures from the coroutine's signature."""
    @functools.wraps(test)
    def sync(**fixtures: Any) -> None:
        asyncio.run(asyncio.wait_for(test(**fixtures), 30))
    return sync


class Link:
    """Stands for the heartbeat process: the nonces and key IDs it reports into the
    channel, and datagrams to the peer."""

    def __init__(self, nonces: tuple[int, int]) -> None:
        self.channel = SettingsChannel()
        self.channel.report(nonces, (), 0)
        self.peer: Link | None = None
        self.up = True
        self.sent: list[bytes] = []

    @property
    def nonces(self) -> tuple[int, int]:
        return self.channel.nonces

    @nonces.setter
    def nonces(self, nonces: tuple[int, int]) -> None:
        self.channel.report(nonces, self.channel.key_ids, self.channel.relay_dropped)

    @property
    def key_ids(self) -> tuple[int, ...]:
        return self.channel.key_ids

    @key_ids.setter
    def key_ids(self, key_ids: tuple[int, ...]) -> None:
        self.channel.report(self.channel.nonces, key_ids, self.channel.relay_dropped)

    def on_config(self, data: bytes) -> None:
        """A datagram from the peer, handed to this head's exchange."""
        self.channel.deliver(data)

    def send_config(self, data: bytes) -> None:
        self.sent.append(data)
        peer = self.peer
        if self.up and peer is not None:
            asyncio.get_running_loop().call_soon(lambda: peer.on_config(data) if peer.up else None)


class Stepped:
    """The peer agreement as the store is given it, with something done just before the
    proposal of a given step (`refuse_step`)."""

    def __init__(self, agreement: PeerAgreement) -> None:
        self.agreement = agreement
        self.before: dict[int, Callable[[], None]] = {}

    def settings(self, mine: Any, mine_digest: str) -> Any:
        return self.agreement.settings(mine, mine_digest)

    def takes_part(self) -> bool:
        return self.agreement.takes_part()

    async def propose(self, settings: dict[str, Any], version: Version, step: int = 0) -> Proposal:
        if step in self.before:
            self.before[step]()
        return await self.agreement.propose(settings, version, step)

    def alone(self, why: str) -> None:
        self.agreement.alone(why)


class Head:
    def __init__(self, tmp: Path, name: str, text: str, nonce: int, peer_nonce: int) -> None:
        key = tmp / f"hb-{name}"
        key.write_bytes(b"the shared heartbeat key bytes")
        key.chmod(0o600)
        path = tmp / f"{name}.toml"
        path.write_text(text.replace(f"/keys/hb-{name}", str(key))
                        .replace(f"/var/lib/{name}-state", str(tmp / f"state-{name}")))
        self.name, self.path, self.tmp = name, path, tmp
        self.state, self.bus, self.clock = State(), EventBus(), SystemClock()
        self.events: list[Event] = []
        self.bus.subscribe("test", self.events.append)
        self.alarms = Alarms(self.state, self.bus, self.clock)
        self.link = Link((nonce, peer_nonce))
        self.agreement = PeerAgreement(self.state, self.link.channel)
        self.peer = Stepped(self.agreement)
        self.store = ConfigStore(path, None, self.state, self.bus, self.clock, self.peer)
        self.sync = ClusterSync(self.store, self.agreement, self.link.channel, self.state, self.bus, self.alarms,
                                self.clock, self.store.current, self.link)
        self.sync.start()

    def hears(self, other: Head | None) -> None:
        """The heartbeat's view of the peer: heard with its advert, or silent."""
        peer = "head2" if self.name == "head1" else "head1"
        self.state.peer = PeerView(peer, peer == "head1", heard=other is not None,
                                   config=other.store.advert() if other is not None else None)

    async def set_timing(self, **timing: int) -> None:
        overrides = copy.deepcopy(self.store.overrides())
        overrides.setdefault("timing", {}).update(timing)
        problems = self.store.check(overrides)
        assert not problems, problems
        await self.store.commit(SetPlan(overrides=overrides, pending={}, config_changed=True), "test")

    def drifting(self) -> bool:
        return self.alarms.active(ProbableCause.CONFIGURATION_DRIFT, "cluster-config")


def pair(tmp: Path, text1: str = HEAD1, text2: str = HEAD2) -> tuple[Head, Head]:
    a, b = Head(tmp, "head1", text1, 11, 22), Head(tmp, "head2", text2, 22, 11)
    a.link.peer, b.link.peer = b.link, a.link
    return a, b


async def settle(*heads: Head, rounds: int = 4) -> None:
    """A few heartbeat intervals: adverts exchanged, the job run on each head."""
    for _ in range(rounds):
        for head in heads:
            head.hears(next(h for h in heads if h is not head) if len(heads) == 2 else None)
        for head in heads:
            head.sync.observe()
        await asyncio.sleep(0.02)


async def settled(condition: Callable[[], bool], *heads: Head, seconds: float = 5.0) -> None:
    """Settle until `condition` holds (a fetch waits FETCH_RETRY_S after the last news)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not settled"
        await settle(*heads, rounds=1)


async def stop(*heads: Head) -> None:
    for head in heads:
        await head.sync.stop()


@run
async def test_equal_files_are_in_sync_from_the_start(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    assert a.store.digest == b.store.digest and a.store.version == b.store.version == Version()
    assert a.state.config_sync.status is ConfigSyncStatus.IN_SYNC
    await stop(a, b)


@run
async def test_a_set_is_taken_by_the_peer_before_it_is_applied_here(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    await a.set_timing(heartbeat_interval_ms=900)
    # The peer validated, persisted and applied it before the commit returned.
    assert b.store.effective.timing.heartbeat_interval_ms == 900
    assert b.store.version == a.store.version == Version(1, "head1")
    assert (tmp_path / "state-head2" / "cluster-config.json").exists()
    assert a.state.config_sync.pushes == 1 and b.state.config_sync.adoptions == 1
    assert any(e.type == EventType.CONFIG_SYNCED for e in b.events)
    await settle(a, b)
    assert a.state.config_sync.status is b.state.config_sync.status is ConfigSyncStatus.IN_SYNC
    await stop(a, b)


@run
async def test_a_change_dangerous_while_the_peer_keeps_its_timing_is_refused_when_the_peer_is_not_in_it(
        tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    overrides = {"timing": {"heartbeat_dead_time_ms": 9000, "initdead_ms": 9000, "heartbeat_interval_ms": 2000}}
    # The peer is heard and answers: it takes the change too (in two steps), so the end
    # state is judged, and it is safe.
    assert a.store.check(overrides) == []
    # The peer is not heard: the change would stay on this head while the peer keeps its
    # dead time of 3000 ms (as last known), which 2000 ms beats do not fit three times.
    a.hears(None)
    problems = a.store.check(overrides)
    assert [p.key for p in problems] == ["timing.heartbeat_interval_ms"]
    assert "a third of the peer's heartbeat_dead_time_ms = 1000" in problems[0].message
    await stop(a, b)


@run
async def test_the_peer_refuses_what_it_cannot_take_and_nothing_changes(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    b.store.version = Version(5, "head2")      # the peer holds newer settings (not advertised yet)
    with pytest.raises(CommitRefused, match="at least as new"):
        await a.set_timing(garp_count=7)
    assert a.store.effective.timing.garp_count == b.store.effective.timing.garp_count != 7
    assert a.store.version == Version() and a.state.config_sync.refusals == 1
    await stop(a, b)


@run
async def test_a_silent_peer_leaves_the_change_here_with_a_drift_alarm_until_it_takes_it(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    b.link.up = False                          # the peer's daemon does not answer
    await a.set_timing(garp_count=7)
    assert a.store.effective.timing.garp_count == 7 and b.store.effective.timing.garp_count != 7
    assert a.state.config_sync.unconfirmed == 1
    a.hears(b)
    a.sync.observe()
    assert a.drifting() and a.state.config_sync.status is ConfigSyncStatus.DRIFT
    assert any(e.type == EventType.CONFIG_DRIFT for e in a.events)
    b.link.up = True                           # it answers again: it fetches and adopts
    await settle(a, b, rounds=6)
    assert b.store.effective.timing.garp_count == 7 and b.store.version == Version(1, "head1")
    assert not a.drifting() and a.state.config_sync.status is ConfigSyncStatus.IN_SYNC
    assert any(e.type == EventType.CONFIG_DRIFT_CLEARED for e in a.events)
    await stop(a, b)


@run
async def test_a_peer_not_heard_at_all_also_means_drift_at_once(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.hears(None)
    await a.set_timing(garp_count=6)
    a.sync.observe()
    assert a.drifting() and "the peer head is not heard" in a.state.alarms.get((1,)).text
    await stop(a, b)


@run
async def test_a_head_with_older_settings_adopts_the_peers_before_it_may_act(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    b.link.up = False
    await a.set_timing(heartbeat_interval_ms=800)
    # head2 restarts with its state directory as it was: it must not act on its settings.
    b2 = Head(tmp_path, "head2", HEAD2, 33, 11)
    a.link.nonces, a.link.peer, b2.link.peer = (11, 33), b2.link, a.link
    b2.hears(a)
    assert not b2.sync.ready()
    await settle(a, b2)
    assert b2.sync.ready() and b2.store.effective.timing.heartbeat_interval_ms == 800
    assert b2.store.version == Version(1, "head1")
    await stop(a, b, b2)


@run
async def test_the_head_whose_name_sorts_first_wins_when_both_files_changed(tmp_path: Path) -> None:
    a, b = pair(tmp_path, HEAD1, HEAD2.replace("garp_count", "x") + "\n")
    b2_text = HEAD2.replace("lan_down_after_ms = 2000", "lan_down_after_ms = 2500")
    b = Head(tmp_path, "head2", b2_text, 22, 11)
    a.link.peer, b.link.peer = b.link, a.link
    await settle(a, b, rounds=6)
    assert b.store.effective.timing.lan_down_after_ms == 2000      # head1's
    assert a.store.digest == b.store.digest
    await stop(a, b)


@run
async def test_a_recorded_request_is_refused_after_the_peer_restarts(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    await a.set_timing(garp_count=7)
    recorded = [d for d in a.link.sent]
    b.link.nonces = (44, 11)                    # head2 restarted: a new nonce
    bad = b.state.config_sync.bad_messages
    for data in recorded:
        b.link.on_config(data)
    await asyncio.sleep(0.01)                   # the exchange takes them from the channel
    b.sync.observe()
    assert b.state.config_sync.bad_messages > bad
    await stop(a, b)


@run
async def test_pull_and_push_are_operator_actions(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    b.link.up = False
    await a.set_timing(garp_count=7)
    b.link.up = True
    b.hears(a)
    ok, text = await b.sync.pull("operator")
    assert ok and b.store.effective.timing.garp_count == 7, text
    await b.set_timing(garp_count=8)            # proposed to head1 and taken
    assert a.store.effective.timing.garp_count == 8
    a.hears(b)
    ok, text = await a.sync.push("operator")
    assert ok and a.store.version > b.store.version or "took" in text, text
    await stop(a, b)


@run
async def test_pull_and_push_are_refused_while_the_peers_settings_are_not_known(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    a.hears(None)
    ok, text = await a.sync.pull("operator")
    assert not ok and "not heard" in text
    ok, text = await a.sync.push("operator")
    assert not ok and a.store.version == Version()
    await stop(a, b)


@run
async def test_during_a_key_rotation_the_exchange_signs_and_verifies_as_the_heartbeat_does(tmp_path: Path) -> None:
    from haoscar_snmp.core.keys import key_id

    a, b = pair(tmp_path)
    await settle(a, b)
    old = b"the shared heartbeat key bytes"
    new = b"the next heartbeat key, rotated"
    (tmp_path / "hb-head1").write_bytes(new)             # head1 reloads with the new key first
    await a.store.reload()
    assert a.store.effective.heartbeat.key == new
    # head1's heartbeat sends with the old key until head2 has the new one, and accepts both.
    a.link.key_ids = (key_id(old), key_id(new), key_id(old))
    b.link.key_ids = (key_id(old), key_id(old))
    await a.set_timing(garp_count=7)
    assert b.store.effective.timing.garp_count == 7 and a.state.config_sync.unconfirmed == 0
    await stop(a, b)


# -- heartbeat timing changed in one SET on both heads -------------------------------------


class Applied:
    """Every configuration each head applied, in the order they were applied (what the
    daemon hands to HeartbeatProcess.reconfigure through ConfigStore.on_change)."""

    def __init__(self, *heads: Head) -> None:
        self.seen: list[tuple[str, int, int, float]] = []
        for head in heads:
            head.store.on_change.append(functools.partial(self._applied, head.name))

    def _applied(self, name: str, config) -> None:  # noqa: ANN001
        t = config.timing
        self.seen.append((name, t.heartbeat_interval_ms, t.heartbeat_dead_time_ms, asyncio.get_running_loop().time()))

    def steps(self) -> list[tuple[str, int, int]]:
        return [(name, interval, dead) for name, interval, dead, _ in self.seen]


def timing(head: Head) -> tuple[int, int, int]:
    t = head.store.effective.timing
    return t.heartbeat_interval_ms, t.heartbeat_dead_time_ms, t.initdead_ms


def on_disk(head: Head) -> tuple[int, int, int]:
    """The timing this head would start with after kill -9: its file and state directory."""
    t = ConfigStore(head.path, None, State(), EventBus(), SystemClock()).effective.timing
    return t.heartbeat_interval_ms, t.heartbeat_dead_time_ms, t.initdead_ms


SLOWER = {"heartbeat_interval_ms": 4000, "heartbeat_dead_time_ms": 12000, "initdead_ms": 12000}


@run
async def test_a_combined_slow_down_goes_in_two_steps_dead_time_first_on_both_heads(tmp_path: Path) -> None:
    a, b = pair(tmp_path)                       # interval 1000, dead time 3000 on both
    await settle(a, b)
    applied = Applied(a, b)
    await a.set_timing(**SLOWER)                # one SET: interval 4000 > 3000 / 3 of the peer's
    # Step 1, the longer dead time with the old interval, on the peer then here; step 2 the
    # new interval, on the peer then here. No head ever beats slower than a third of the
    # other's dead time.
    assert applied.steps() == [("head2", 1000, 12000), ("head1", 1000, 12000),
                                ("head2", 4000, 12000), ("head1", 4000, 12000)]
    assert timing(a) == timing(b) == (4000, 12000, 12000)
    assert a.store.version == b.store.version == Version(2, "head1")
    assert a.store.digest == b.store.digest
    assert on_disk(a) == on_disk(b) == (4000, 12000, 12000)
    assert a.state.config_sync.pushes == 2 and b.state.config_sync.adoptions == 2
    adopted = [e.text for e in b.events if e.type == EventType.CONFIG_SYNCED]
    assert "step 1 of 2" in adopted[0] and "step 2 of 2" in adopted[1]
    await settle(a, b)
    assert a.state.config_sync.status is b.state.config_sync.status is ConfigSyncStatus.IN_SYNC
    assert not a.drifting() and not b.drifting()
    await stop(a, b)


@run
async def test_a_combined_speed_up_goes_interval_first_and_waits_one_old_beat(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    applied = Applied(a, b)
    # Dead time 600 < 3 x the peer's 1000 ms interval: the faster beat must come first.
    assert b.store.check({"timing": {"heartbeat_interval_ms": 200, "heartbeat_dead_time_ms": 600}}) == []
    await b.set_timing(heartbeat_interval_ms=200, heartbeat_dead_time_ms=600)
    assert applied.steps() == [("head1", 200, 3000), ("head2", 200, 3000),
                                ("head1", 200, 600), ("head2", 200, 600)]
    # No dead time fell before a beat planned under the old 1000 ms interval went out.
    step1_here, step2_peer = applied.seen[1][3], applied.seen[2][3]
    assert step2_peer - step1_here >= 1.0
    assert timing(a) == timing(b) == (200, 600, 3000)
    assert a.store.version == b.store.version == Version(2, "head2")
    await stop(a, b)


@run
async def test_a_change_safe_in_any_mix_goes_in_one_step(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    applied = Applied(a, b)
    # Interval 800 against the old dead time 3000, dead time 3000 against the old interval 1000.
    await a.set_timing(heartbeat_interval_ms=800, heartbeat_dead_time_ms=3000, garp_count=7)
    assert applied.steps() == [("head2", 800, 3000), ("head1", 800, 3000)]
    assert a.store.version == b.store.version == Version(1, "head1")
    await stop(a, b)


@run
async def test_an_end_state_unsafe_is_refused(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    problems = a.store.check({"timing": {"heartbeat_interval_ms": 600, "heartbeat_dead_time_ms": 1500}})
    assert [p.key for p in problems] == ["overrides.timing.heartbeat_dead_time_ms"]
    assert "must be >= 3 x heartbeat_interval_ms = 1800" in problems[0].message
    await stop(a, b)


@run
async def test_each_step_reaches_the_heartbeat_process_in_order(tmp_path: Path) -> None:
    from fcaps.fault.heartbeat import wire as hbwire
    from fcaps.fault.heartbeat.process import HeartbeatProcess

    class Process(HeartbeatProcess):
        """The daemon's side of the heartbeat process; what it sends is kept here."""

        def __init__(self, config) -> None:  # noqa: ANN001
            self.config, self.sent = config, []

        def _send(self, data: bytes) -> None:
            self.sent.append(hbwire.unpack(data))

    a, b = pair(tmp_path)
    await settle(a, b)
    processes = {}
    for head in (a, b):
        processes[head.name] = process = Process(head.store.current)
        head.store.on_change.append(lambda _config, p=process: p.reconfigure())    # as the daemon wires it
    await a.set_timing(**SLOWER)
    for process in processes.values():
        settings = [(hbwire.settings_from_wire(m["settings"]), m["daemon_timeout_ms"])
                    for m in process.sent if m["t"] == "settings"]
        assert [(s.interval_ms, s.dead_ms, timeout) for s, timeout in settings] == [
            (1000, 12000, 12000), (4000, 12000, 12000)]
    await stop(a, b)


def refuse_step(head: Head, step: int, how: Callable[[], None]) -> None:
    """`how` is done just before `head` proposes step `step` of a staged change."""
    head.peer.before[step] = how


@run
async def test_step_2_not_answered_leaves_the_intermediate_on_the_peer_with_a_drift_alarm(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    refuse_step(a, 2, lambda: setattr(b.link, "up", False))     # the peer's daemon stops answering
    with caplog.at_level("WARNING", "haoscar_snmp.audit"):
        await a.set_timing(**SLOWER)            # answered noError: this head holds the change
    assert timing(a) == (4000, 12000, 12000) and a.store.version == Version(2, "head1")
    assert timing(b) == (1000, 12000, 12000) and b.store.version == Version(1, "head1")   # step 1
    assert on_disk(b) == (1000, 12000, 12000)   # what it would restart with
    assert a.state.config_sync.unconfirmed == 1
    a.hears(b)
    a.sync.observe()
    assert a.drifting() and a.state.config_sync.status is ConfigSyncStatus.DRIFT
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "step 2 of the heartbeat timing change not confirmed" in said
    assert "this head holds heartbeat interval 4000 ms, dead time 12000 ms" in said
    assert "the peer head holds step 1's intermediate timing (version 1@head1)" in said
    b.link.up = True                            # it answers again: it takes the new timing
    await settled(lambda: timing(b) == (4000, 12000, 12000), a, b)
    await settle(a, b)
    assert not a.drifting()
    await stop(a, b)


@run
async def test_step_2_refused_leaves_both_heads_on_the_intermediate_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    refuse_step(a, 2, lambda: setattr(b.store, "proposing", True))   # the peer is proposing a change of its own
    with caplog.at_level("WARNING", "haoscar_snmp.audit"), pytest.raises(CommitRefused) as refused:
        await a.set_timing(**SLOWER, garp_count=7)
    assert refused.value.status == "undoFailed"
    assert "both heads hold step 1's intermediate timing (version 1@head1): heartbeat interval 1000 ms, " \
           "dead time 12000 ms" in refused.value.why
    assert "both heads hold step 1's intermediate timing" in caplog.text
    b.store.proposing = False
    for head in (a, b):                         # safe, the same on both, and kept across a restart
        assert timing(head) == on_disk(head) == (1000, 12000, 12000)
        assert head.store.effective.timing.garp_count == 7      # the rest of the SET: step 1
        assert head.store.version == Version(1, "head1")
    await settle(a, b)
    assert a.store.digest == b.store.digest and not a.drifting()
    await stop(a, b)


@run
async def test_step_1_refused_changes_nothing_anywhere(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    applied = Applied(a, b)
    b.store.version = Version(5, "head2")      # the peer holds newer settings (not advertised yet)
    with pytest.raises(CommitRefused, match="at least as new") as refused:
        await a.set_timing(**SLOWER)
    assert refused.value.status == "inconsistentValue"
    assert applied.steps() == []
    assert timing(a) == timing(b) == on_disk(a) == on_disk(b) == (1000, 3000, 3000)
    assert a.store.version == Version()
    await stop(a, b)


@run
async def test_step_1_not_answered_refuses_what_this_head_may_not_run_alone(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)
    applied = Applied(a, b)
    b.link.up = False                           # heard (its heartbeat runs), but its daemon does not answer
    assert a.store.check({"timing": SLOWER}) == []     # judged as a change of both heads
    with pytest.raises(CommitRefused, match="this head alone may not run the change") as refused:
        await a.set_timing(**SLOWER)
    assert "a third of the peer's heartbeat_dead_time_ms = 1000" in refused.value.why
    assert applied.steps() == [] and timing(a) == on_disk(a) == (1000, 3000, 3000)
    assert a.store.version == Version() and a.state.config_sync.unconfirmed == 0
    a.sync.observe()
    assert not a.drifting()
    await stop(a, b)


@run
async def test_step_1_taken_but_its_answer_lost_converges_on_the_intermediate(tmp_path: Path) -> None:
    a, b = pair(tmp_path)
    await settle(a, b)

    def lose_answers() -> None:
        b.link.peer = None                      # head2 hears head1's requests, head1 never hears back
    refuse_step(a, 1, lose_answers)
    with pytest.raises(CommitRefused):
        await a.set_timing(**SLOWER)
    assert timing(a) == (1000, 3000, 3000) and timing(b) == (1000, 12000, 12000)   # safe in that mix
    b.link.peer = a.link                        # head1 takes head2's newer settings: the intermediate
    await settled(lambda: timing(a) == (1000, 12000, 12000), a, b)
    assert timing(b) == (1000, 12000, 12000) and a.store.digest == b.store.digest
    await stop(a, b)
