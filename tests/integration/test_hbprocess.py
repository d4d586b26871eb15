"""The daemon's side of the heartbeat process, with real processes on loopback.

Two heads' heartbeat processes (head1 on 127.0.1.1 / 127.0.2.1, head2 on 127.0.1.2 /
127.0.2.2) hear each other; the daemon's side of head1 is watched while its process is
frozen (SIGSTOP), killed, or keeps dying. No namespace and no root is needed: the
processes bind loopback addresses only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from fcaps.configuration.apply import apply_to_state
from fcaps.fault.heartbeat.peer import LocalView, Notice
from fcaps.fault.heartbeat import process as hbproc
from fcaps.fault.heartbeat.process import HeartbeatProcess, build, silence_bound_ms
from fcaps.performance.collector import PerfCollector
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import SystemClock
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.measure import Measurements
from haoscar_snmp.core.state import HeadStatus, JobRow, LinkView, PeerView, State

from .harness import free_udp_port

CONFIG = """
[cluster]
name = "t"
local_head = "{me}"
state_dir = "state-{me}"
[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "127.0.1.1"
lan_b = "127.0.2.1"
[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "127.0.1.2"
lan_b = "127.0.2.2"
[timing]
heartbeat_interval_ms = 50
heartbeat_dead_time_ms = 300
[heartbeat]
key_file = "hb.key"
port = {port}
public_path = false
[snmp]
listen = ["127.0.0.1:1161"]
"""


class Sink:
    """Records what the daemon's side passes on: the latest peer view, and when the
    process was found silent or running again (loop times)."""

    def __init__(self) -> None:
        self.view: PeerView | None = None
        self.silent_at: list[tuple[float, str]] = []
        self.running_at: list[float] = []

    def __call__(self, view: PeerView, links: LinkView, notices: list[Notice], fenced: bool) -> None:
        self.view = view

    def silent(self, reason: str) -> None:
        self.silent_at.append((asyncio.get_running_loop().time(), reason))

    def running(self) -> None:
        self.running_at.append(asyncio.get_running_loop().time())


class Head:
    def __init__(self, tmp_path: Path, me: str, port: int) -> None:
        key = tmp_path / "hb.key"
        if not key.exists():
            key.write_bytes(b"h" * 32)
            key.chmod(0o600)
        self.config: Config = parse_config(CONFIG.format(me=me, port=port), label=f"{me}.toml",
                                           base_dir=tmp_path, environ={})
        self.state = State()
        apply_to_state(self.config, self.state)
        state_dir = tmp_path / f"state-{me}"
        state_dir.mkdir(exist_ok=True)
        self.sink = Sink()
        self.exits = 0
        channel = Measurements()
        self.perf = PerfCollector(self.state, channel, SystemClock())   # its samples only: never started
        self.hb: HeartbeatProcess = build(lambda: self.config, self.state, state_dir, self.sink, JobRow("heartbeat"),
                                          SystemClock(), "WARNING", self.exited, channel)

    def exited(self) -> None:
        self.exits += 1

    def heard(self) -> bool:
        return self.sink.view is not None and self.sink.view.heard


async def until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def run_pair(tmp_path: Path, body: Callable[[Head, Head], Any]) -> None:
    port = free_udp_port()

    async def main() -> None:
        head1, head2 = Head(tmp_path, "head1", port), Head(tmp_path, "head2", port)
        await head1.hb.start()
        await head2.hb.start()
        async def advertising() -> None:
            # As the role state machine does at every cycle: a heartbeat process whose
            # daemon sends nothing for its watchdog's time (1 s at least) falls silent on
            # purpose, which a slow, loaded run would otherwise reach mid-test.
            for _ in range(100_000):                       # bounded: 5,000 s at 50 ms
                for head in (head1, head2):
                    head.hb.advertise(LocalView(HeadStatus.STANDBY))
                await asyncio.sleep(0.05)

        advertiser = asyncio.get_running_loop().create_task(advertising())
        try:
            await until(lambda: head1.heard() and head2.heard(), 5, "the heads to hear each other")
            await body(head1, head2)
        finally:
            advertiser.cancel()
            for head in (head1, head2):
                if head.hb.proc is not None and head.hb.proc.returncode is None:
                    os.kill(head.hb.proc.pid, signal.SIGCONT)
                await head.hb.stop()
    asyncio.run(main())


def test_the_bound_is_two_intervals_or_half_the_dead_time_and_half_an_interval(tmp_path: Path) -> None:
    head = Head(tmp_path, "head1", 7789)
    assert silence_bound_ms(head.config) == 175             # 50 ms / 300 ms: half the dead time, + 25
    t = head.config.timing.model_copy(update={"heartbeat_interval_ms": 100, "heartbeat_dead_time_ms": 300})
    assert silence_bound_ms(head.config.model_copy(update={"timing": t})) == 250   # two intervals, + 50


def test_a_frozen_process_is_found_silent_within_its_bound_and_replaced(tmp_path: Path) -> None:
    async def body(head1: Head, head2: Head) -> None:
        loop = asyncio.get_running_loop()
        old = head1.hb.proc
        assert old is not None
        epoch = int((tmp_path / "state-head1" / "heartbeat.epoch").read_text())
        frozen_at = loop.time()
        os.kill(old.pid, signal.SIGSTOP)

        async def advertising() -> None:
            # The role machine advertises at every cycle, also while a new process starts:
            # nothing of it may reach the new process before its first message.
            for _ in range(1_000_000):        # at every pass of the loop; bounded
                if head1.sink.running_at:
                    return
                head1.hb.advertise(LocalView(HeadStatus.STANDBY))
                await asyncio.sleep(0)
        advertiser = asyncio.create_task(advertising())
        await until(lambda: bool(head1.sink.silent_at), 2, "head1's process to be found silent")
        found, reason = head1.sink.silent_at[0]
        bound = silence_bound_ms(head1.config) / 1000.0
        # Found after its bound, well before the peer's dead time (0.3 s) runs out. The
        # last report may have come up to an interval before the freeze.
        assert bound - 0.05 <= found - frozen_at < 0.3 - 0.05, (found - frozen_at, reason)
        assert "has sent nothing for" in reason
        await until(lambda: bool(head1.sink.running_at) or head1.exits > 0, 10, "a new process on head1")
        advertiser.cancel()
        assert head1.exits == 0, "the new process did not start"
        assert old.returncode == -signal.SIGKILL                     # the frozen one was killed
        assert head1.hb.proc is not old and head1.hb.proc.returncode is None
        # A new run: a higher boot counter, and the peer hears it again.
        assert int((tmp_path / "state-head1" / "heartbeat.epoch").read_text()) == epoch + 1
        await until(lambda: head1.heard() and head2.heard(), 5, "the heads to hear each other again")
        assert len(head1.sink.silent_at) == 1 and head1.exits == 0
        assert not head2.sink.silent_at                                # head2's process was fine
    run_pair(tmp_path, body)


def test_a_stalled_daemon_loop_does_not_take_its_own_pause_for_the_process_s_silence(tmp_path: Path) -> None:
    """The daemon's loop held for several silence bounds (a long garbage collection, a
    slow callback): the reports that came meanwhile are read before silence is judged."""
    async def body(head1: Head, head2: Head) -> None:
        bound = silence_bound_ms(head1.config) / 1000.0
        for _ in range(5):
            time.sleep(3 * bound)                 # the loop stands still
            await asyncio.sleep(0.05)
        assert not head1.sink.silent_at, head1.sink.silent_at
    run_pair(tmp_path, body)


def test_round_trips_per_path_and_the_send_lag_reach_the_performance_figures(tmp_path: Path) -> None:
    """The real process measures; its reports carry the figures to the collector; an
    operator's resetCounters reaches the process and starts its extremes again."""
    async def body(head1: Head, head2: Head) -> None:
        rows = head1.state.perf_hb_paths
        peer = (2, 1), (2, 2)                                  # head2 on lanA and lanB
        await until(lambda: all(k in rows and rows[k].replies >= 5 for k in peer), 5, "round trips on both paths")
        for key in peer:
            row = rows[key]
            assert 0 < row.rtt_min_us <= row.rtt_us <= row.rtt_max_us
            assert row.rtt_min_us <= row.rtt_mean_us <= row.rtt_max_us
        assert head1.state.perf_hb_send.lag_max_us >= head1.state.perf_hb_send.lag_us
        before = rows[peer[0]].replies
        reset = Event(EventType.OPERATOR_ACTION, "reset_counters", Severity.INFO, "reset", time.time())
        head1.hb.on_event(reset)
        await until(lambda: rows[peer[0]].replies < before, 2, "the reset to reach the process")
    run_pair(tmp_path, body)


def test_a_process_that_exits_is_replaced_and_one_that_keeps_dying_stops_the_daemon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hbproc, "MAX_RESTARTS", 2)

    async def body(head1: Head, head2: Head) -> None:
        for n in (1, 2):
            proc = head1.hb.proc
            assert proc is not None
            os.kill(proc.pid, signal.SIGKILL)
            await until(lambda: len(head1.sink.running_at) == n, 10, f"new process {n}")
            assert "exited" in head1.sink.silent_at[-1][1]
        await until(lambda: head1.heard(), 5, "head1 to hear head2 again")
        proc = head1.hb.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        await until(lambda: head1.exits == 1, 10, "the daemon to be told to stop")
        assert len(head1.sink.running_at) == 2                        # no third new process
    run_pair(tmp_path, body)
