"""The AgentX subagent session against a hand-written master on a unix socket.

The master here speaks the codec directly: it checks what the subagent sends (Open,
Register, AddAgentCaps, Ping, Notify, Close) and asks what snmpd would ask (Get, GetNext,
GetBulk, the SET phases), in either byte order, with retransmissions, bad bytes and a
foreign context. Reconnect delays run on a fake sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeConfigSource, FakeProblem
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString

from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import AgentxStats, AgentxStatus, SecurityCounters, State
from haoscar_snmp.snmp.agentx import pdu as ax
from haoscar_snmp.snmp.agentx.backoff import Backoff
from haoscar_snmp.snmp.agentx.encoder import encode
from haoscar_snmp.snmp.agentx.pdu import ResponseError, SearchRange, ValueType, VarBind
from haoscar_snmp.snmp.agentx.requests import RequestHandler
from haoscar_snmp.snmp.agentx.session import (
    SessionLost,
    SessionSettings,
    Subagent,
    _Connection,
)
from haoscar_snmp.snmp.agentx.stream import StreamDecoder
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.setter import SetHandler
from haoscar_snmp.snmp.view import MibView

R = (1, 3, 6, 1, 4, 1, 32473, 1)
CLUSTER_NAME = R + (1, 1, 1, 0)
HB_INTERVAL = R + (1, 2, 1, 0)
HB_DEAD = R + (1, 2, 2, 0)
RETRY = R + (1, 2, 6, 0)
CONTROL_ACTION = R + (1, 3, 1, 0)
TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
SESSION = 7


class StableSource(FakeConfigSource):
    """Like the daemon's store: current() is one object until a commit replaces it."""

    def __init__(self, file_config: Config) -> None:
        super().__init__(file_config)
        self._current = super().current()

    def current(self) -> Config:
        return self._current

    def commit(self, plan: SetPlan) -> None:
        super().commit(plan)
        self._current = super().current()


class FakeCommitter:
    def __init__(self, source: StableSource) -> None:
        self.source = source
        self.commits: list[tuple[SetPlan, str]] = []
        self.rejections: list[tuple[str, str, int]] = []
        self.fail = False
        self.peer_refuses = False
        self.refusal = "inconsistentValue"

    async def commit(self, plan: SetPlan, principal: str) -> None:
        await asyncio.sleep(0)            # the real one awaits its fsync
        if self.fail:
            raise OSError("disk full")
        if self.peer_refuses:
            raise CommitRefused("the peer head refused it: its settings are newer", self.refusal)
        self.source.commit(plan)
        self.commits.append((plan, principal))

    def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None:
        self.rejections.append((principal, status, index))


class MasterSide:
    """One accepted connection, seen from the master."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = StreamDecoder()
        self.packet_id = 1000

    async def recv(self, timeout: float = 2.0) -> tuple[ax.Pdu, ax.Header]:
        while True:
            pdu = self.decoder.next_pdu()
            if pdu is not None:
                assert self.decoder.last_header is not None
                return pdu, self.decoder.last_header
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("the subagent closed the connection")
            self.decoder.feed(data)

    def send(self, pdu: ax.Pdu, network_byte_order: bool = True) -> None:
        self.writer.write(encode(pdu, network_byte_order=network_byte_order))

    def answer(self, request: ax.Pdu, **fields: Any) -> None:
        self.send(ax.Response.answering(request, **fields))

    async def handshake(self) -> list[tuple[ax.Pdu, ax.Header]]:
        seen = []
        for expected in (ax.Open, ax.Register, ax.AddAgentCaps):
            pdu, header = await self.recv()
            assert isinstance(pdu, expected), pdu
            seen.append((pdu, header))
            self.send(dataclasses.replace(ax.Response.answering(pdu), session_id=SESSION))
        return seen

    async def ask(self, pdu: ax.Pdu, network_byte_order: bool = True) -> tuple[ax.Response, ax.Header]:
        """Send a request; the subagent's Response to it (skipping its own PDUs)."""
        self.packet_id += 1
        pdu = dataclasses.replace(pdu, session_id=SESSION, transaction_id=pdu.transaction_id or 1,
                                  packet_id=self.packet_id)
        self.send(pdu, network_byte_order)
        return await self.response_to(self.packet_id)

    async def response_to(self, packet_id: int) -> tuple[ax.Response, ax.Header]:
        while True:
            got, header = await self.recv()
            if isinstance(got, ax.Response) and got.packet_id == packet_id:
                return got, header
            if isinstance(got, (ax.Ping, ax.Notify)):
                self.answer(got)


class Rig:
    def __init__(self, tmp_path: Path, mib: MibModel, cfg: Config, **settings: Any) -> None:
        self.path = tmp_path / "master"
        self.state = State()
        apply_to_state(cfg, self.state, {})
        view = MibView(mib)
        bind_all(view, self.state, lambda: self.source.current(), CONFIG_MAP, lambda m: 0, lambda: 0)
        self.source = StableSource(cfg)
        self.committer = FakeCommitter(self.source)
        self.counters = SecurityCounters()
        self.handler = RequestHandler(view, SetHandler(mib, self.source, CONFIG_MAP), self.committer,
                                      self.counters, f"agentx:{self.path}", lambda: 4242)
        defaults: dict[str, Any] = {"master": str(self.path), "timeout_s": 0.5, "retries": 1, "priority": 100,
                                    "ping_interval_s": 60.0, "queue_size": 3, "subtree": R,
                                    "identity": R + (3, 1), "caps": R}
        self.settings = SessionSettings(**{**defaults, **settings})
        self.stats = AgentxStats()
        self.sleeps: list[float] = []
        self.subagent = Subagent(self.settings, self.handler, self.stats, sleep=self.sleep, rand=lambda: 0.5)
        self.accepted: asyncio.Queue[MasterSide] = asyncio.Queue()
        self.server: asyncio.AbstractServer | None = None

    async def sleep(self, seconds: float) -> None:
        """The backoff's clock: records the delay, waits a moment only."""
        self.sleeps.append(seconds)
        await asyncio.sleep(0.001)

    async def listen(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self.accepted.put(MasterSide(reader, writer))
        self.server = await asyncio.start_unix_server(accept, str(self.path))

    async def connected(self) -> MasterSide:
        """Listen, start the subagent, complete its handshake."""
        if self.server is None:
            await self.listen()
        if self.subagent._task is None:
            self.subagent.start()
        master = await asyncio.wait_for(self.accepted.get(), 2)
        self.handshake = await master.handshake()
        await until(lambda: self.stats.status is AgentxStatus.REGISTERED)
        return master

    async def close(self) -> None:
        await self.subagent.stop(drain_s=0.1)
        if self.server is not None:
            self.server.close()


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never came true"
        await asyncio.sleep(0.005)


def run(mib: MibModel, cfg: Config, tmp_path: Path, test: Callable[[Rig], Awaitable[None]],
        **settings: Any) -> Rig:
    async def main() -> Rig:
        rig = Rig(tmp_path, mib, cfg, **settings)
        try:
            await test(rig)
        finally:
            await rig.close()
        return rig
    return asyncio.run(main())


def get(*oids: tuple[int, ...]) -> ax.Get:
    return ax.Get(ranges=tuple(SearchRange(o) for o in oids))


def test_set(*varbinds: VarBind, txn: int = 1) -> ax.TestSet:
    return ax.TestSet(transaction_id=txn, varbinds=varbinds)


test_set.__test__ = False  # type: ignore[attr-defined]   # a helper, not a test


def gauge(oid: tuple[int, ...], value: int) -> VarBind:
    return VarBind(oid, ValueType.GAUGE32, value)


# -- open and register ------------------------------------------------------------------------


def test_open_register_and_agent_caps_in_order(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        await rig.connected()
        (opened, h1), (registered, _), (caps, _) = rig.handshake
        assert (opened.timeout, opened.id, opened.session_id) == (1, R + (3, 1), 0)
        assert b"haoscar-snmp" in opened.descr and h1.network_byte_order
        assert (registered.subtree, registered.priority, registered.timeout) == (R, 100, 1)
        assert registered.session_id == SESSION and registered.context is None
        assert caps.id == R and caps.session_id == SESSION
        assert (rig.stats.session_id, rig.stats.connects, rig.stats.reconnects) == (SESSION, 1, 0)
        assert "registered, session 7" in rig.subagent.describe()

    rig = run(mib, cfg, tmp_path, test)
    assert rig.stats.status is AgentxStatus.CLOSED


def test_a_refused_registration_is_retried_with_backoff(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        await rig.listen()
        rig.subagent.start()
        master = await asyncio.wait_for(rig.accepted.get(), 2)
        opened, _ = await master.recv()
        master.send(dataclasses.replace(ax.Response.answering(opened), session_id=SESSION))
        registered, _ = await master.recv()
        master.answer(registered, error=ResponseError.DUPLICATE_REGISTRATION)
        again = await asyncio.wait_for(rig.accepted.get(), 2)
        await again.handshake()
        await until(lambda: rig.stats.status is AgentxStatus.REGISTERED)
        assert rig.stats.failed_attempts == 1 and rig.sleeps == [0.5]

    run(mib, cfg, tmp_path, test)


# -- reads ------------------------------------------------------------------------------------


def test_get_answers_instances_and_the_right_exceptions(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(get(CLUSTER_NAME, CLUSTER_NAME[:-1] + (5,), R + (1, 77, 0),
                                         (1, 3, 6, 1, 2, 1, 1, 5, 0)))
        assert answer.error == 0 and answer.sys_uptime == 4242
        assert answer.varbinds[0] == VarBind(CLUSTER_NAME, ValueType.OCTET_STRING, cfg.cluster.name.encode())
        assert [vb.type for vb in answer.varbinds[1:]] == [
            ValueType.NO_SUCH_INSTANCE, ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_OBJECT]
        assert [vb.name for vb in answer.varbinds] == [r.start for r in get(
            CLUSTER_NAME, CLUSTER_NAME[:-1] + (5,), R + (1, 77, 0), (1, 3, 6, 1, 2, 1, 1, 5, 0)).ranges]

    run(mib, cfg, tmp_path, test)


def test_getnext_honours_include_and_the_end_of_the_range(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        second = R + (1, 1, 2, 0)
        answer, _ = await master.ask(ax.GetNext(ranges=(
            SearchRange(CLUSTER_NAME, include=True),          # the start itself
            SearchRange(CLUSTER_NAME),                        # the one after
            SearchRange(R, R[:-1] + (2,), include=True),      # from the region's start
            SearchRange(CLUSTER_NAME, second),                # next is at the end bound: none
            SearchRange(R + (9, 9)),                          # past our last object
        )))
        names = [vb.name for vb in answer.varbinds]
        assert names[:3] == [CLUSTER_NAME, second, CLUSTER_NAME]
        assert answer.varbinds[3] == VarBind(CLUSTER_NAME, ValueType.END_OF_MIB_VIEW)
        assert answer.varbinds[4] == VarBind(R + (9, 9), ValueType.END_OF_MIB_VIEW)

    run(mib, cfg, tmp_path, test)


def test_getbulk_repeats_and_stops_at_the_end(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(ax.GetBulk(non_repeaters=1, max_repetitions=3, ranges=(
            SearchRange(R), SearchRange(R + (1, 1)), SearchRange(R + (1, 2)))))
        vbs = answer.varbinds
        assert len(vbs) == 1 + 3 * 2
        assert vbs[0].name == CLUSTER_NAME
        assert [vb.name for vb in vbs[1::2]] == [R + (1, 1, n, 0) for n in (1, 2, 3)]
        assert vbs[2].name == R + (1, 2, 1, 0) and vbs[4].name == R + (1, 2, 2, 0)
        # Near the end of the MIB a whole row of endOfMibView ends the answer early.
        last = max(rig.handler.view._oids)
        answer, _ = await master.ask(ax.GetBulk(max_repetitions=50, ranges=(SearchRange(last),)))
        assert len(answer.varbinds) < 50 and answer.varbinds[-1].type == ValueType.END_OF_MIB_VIEW

    run(mib, cfg, tmp_path, test)


def test_requests_are_answered_in_their_own_byte_order(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        little, h_little = await master.ask(get(CLUSTER_NAME), network_byte_order=False)
        big, h_big = await master.ask(get(CLUSTER_NAME), network_byte_order=True)
        assert not h_little.network_byte_order and h_big.network_byte_order
        assert little.varbinds == big.varbinds

    run(mib, cfg, tmp_path, test)


def test_a_foreign_context_finds_nothing(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(ax.Get(context=b"other", ranges=(SearchRange(CLUSTER_NAME),)))
        assert answer.varbinds == (VarBind(CLUSTER_NAME, ValueType.NO_SUCH_OBJECT),)
        answer, _ = await master.ask(ax.GetNext(context=b"other", ranges=(SearchRange(R),)))
        assert answer.varbinds == (VarBind(R, ValueType.END_OF_MIB_VIEW),)
        answer, _ = await master.ask(ax.TestSet(context=b"other", varbinds=(gauge(HB_INTERVAL, 1000),)))
        assert (answer.error, answer.index) == (ResponseError.NOT_WRITABLE, 1)

    run(mib, cfg, tmp_path, test)


def test_a_request_for_another_session_is_not_open(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        master.send(ax.Get(session_id=99, packet_id=5, ranges=(SearchRange(CLUSTER_NAME),)))
        answer, _ = await master.response_to(5)
        assert answer.error == ResponseError.NOT_OPEN

    run(mib, cfg, tmp_path, test)


# -- SET ------------------------------------------------------------------------------------------


def test_the_four_phases_commit_once_and_cleanup_gets_no_answer(mib: MibModel, cfg: Config,
                                                                 tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(test_set(gauge(HB_INTERVAL, 1000), txn=5))
        assert answer.error == 0 and not rig.committer.commits
        answer, _ = await master.ask(ax.CommitSet(transaction_id=5))
        assert answer.error == 0
        assert [p for _, p in rig.committer.commits] == [f"agentx:{rig.path}"]
        assert rig.source.current().timing.heartbeat_interval_ms == 1000
        master.send(ax.CleanupSet(session_id=SESSION, transaction_id=5, packet_id=77))
        answer, _ = await master.ask(get(HB_INTERVAL))       # the next answer is the Get's
        assert answer.varbinds[0].value == 1000
        assert rig.handler.open_transactions == 0
        assert rig.counters.snmp_set_accepted == 1

    run(mib, cfg, tmp_path, test)


@pytest.mark.parametrize("varbinds, error, index", [
    ((VarBind(HB_INTERVAL, ValueType.OCTET_STRING, b"1000"),), ResponseError.WRONG_TYPE, 1),
    ((gauge(RETRY, 5), gauge(HB_INTERVAL, 5)), ResponseError.WRONG_VALUE, 2),
    ((VarBind(R + (1, 2, 10, 0), ValueType.OCTET_STRING, b"x" * 256),), ResponseError.WRONG_LENGTH, 1),
    ((VarBind(R + (1, 8, 1, 14, 1), ValueType.INTEGER, 4),), ResponseError.INCONSISTENT_VALUE, 1),
    ((VarBind(CLUSTER_NAME, ValueType.OCTET_STRING, b"x"),), ResponseError.NOT_WRITABLE, 1),
    ((gauge(HB_INTERVAL[:-1] + (1,), 1000),), ResponseError.NO_CREATION, 1),
    ((VarBind(R + (1, 77, 0), ValueType.GAUGE32, 1),), ResponseError.NOT_WRITABLE, 1),
])
def test_testset_refusals_carry_the_exact_error_and_index(mib: MibModel, cfg: Config, tmp_path: Path,
                                                          varbinds: tuple, error: int, index: int) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(test_set(*varbinds))
        assert (answer.error, answer.index) == (error, index)
        # snmpd follows a failed TestSet with CleanupSet; a CommitSet anyway fails.
        answer, _ = await master.ask(ax.CommitSet(transaction_id=1))
        assert answer.error == ResponseError.COMMIT_FAILED
        assert not rig.committer.commits and rig.counters.snmp_set_rejected == 1
        assert rig.committer.rejections[0][0] == f"agentx:{rig.path}"

    run(mib, cfg, tmp_path, test)


def test_a_failed_commit_answers_commitfailed_and_changes_nothing(mib: MibModel, cfg: Config,
                                                                  tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        rig.committer.fail = True
        await master.ask(test_set(gauge(HB_INTERVAL, 1000)))
        answer, _ = await master.ask(ax.CommitSet(transaction_id=1))
        assert answer.error == ResponseError.COMMIT_FAILED
        assert rig.source.current().timing.heartbeat_interval_ms == 5000

    run(mib, cfg, tmp_path, test)


def test_a_set_the_peer_head_refuses_answers_commitfailed_and_is_audited(mib: MibModel, cfg: Config,
                                                                         tmp_path: Path) -> None:
    """A cluster-wide change the peer head refuses at commit: a CommitSet can only fail."""
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        rig.committer.peer_refuses = True
        await master.ask(test_set(gauge(HB_INTERVAL, 1000)))
        answer, _ = await master.ask(ax.CommitSet(transaction_id=1))
        assert (answer.error, answer.index) == (ResponseError.COMMIT_FAILED, 1)
        assert rig.source.current().timing.heartbeat_interval_ms == 5000
        assert rig.committer.rejections == [(f"agentx:{rig.path}", "commitFailed", 0)]
        assert rig.counters.snmp_set_rejected == 1

    run(mib, cfg, tmp_path, test)


def test_a_set_left_partly_applied_by_the_peer_answers_undofailed_to_the_undo(mib: MibModel, cfg: Config,
                                                                              tmp_path: Path) -> None:
    """A timing change in two steps whose second step the peer refused: both heads hold
    the first. The CommitSet fails; the master then asks to undo, which cannot be done."""
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        rig.committer.peer_refuses, rig.committer.refusal = True, "undoFailed"
        await master.ask(test_set(gauge(HB_INTERVAL, 1000)))
        answer, _ = await master.ask(ax.CommitSet(transaction_id=1))
        assert (answer.error, answer.index) == (ResponseError.COMMIT_FAILED, 1)
        answer, _ = await master.ask(ax.UndoSet(transaction_id=1))
        assert (answer.error, answer.index) == (ResponseError.UNDO_FAILED, 1)
        master.send(ax.CleanupSet(session_id=SESSION, transaction_id=1, packet_id=78))
        answer, _ = await master.ask(ax.UndoSet(transaction_id=1))
        assert answer.error == ResponseError.NO_ERROR                  # cleaned up: nothing to undo
        assert rig.source.current().timing.heartbeat_interval_ms == 5000

    run(mib, cfg, tmp_path, test)


def test_a_set_committed_elsewhere_meanwhile_is_validated_again(mib: MibModel, cfg: Config,
                                                                tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        await master.ask(test_set(gauge(HB_INTERVAL, 1000), txn=1))
        # Another SET (the standalone agent) commits meanwhile, after which the first no
        # longer fits the configuration.
        plan = rig.handler.set_handler.prepare([(RETRY, rig_gauge(5))])
        await rig.committer.commit(plan, "v3:admin@127.0.0.1")
        rig.source.problems = [FakeProblem("timing.heartbeat_interval_ms", "no longer fits")]
        answer, _ = await master.ask(ax.CommitSet(transaction_id=1))
        assert (answer.error, answer.index) == (ResponseError.COMMIT_FAILED, 1)
        assert rig.source.current().timing.heartbeat_interval_ms == 5000

    run(mib, cfg, tmp_path, test)


def rig_gauge(value: int) -> Any:
    from pysnmp.proto.rfc1902 import Gauge32
    return Gauge32(value)


def test_undo_before_commit_drops_the_plan_and_after_commit_reverts(mib: MibModel, cfg: Config,
                                                                    tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        await master.ask(test_set(gauge(HB_INTERVAL, 1000), txn=1))
        answer, _ = await master.ask(ax.UndoSet(transaction_id=1))
        assert answer.error == 0 and not rig.committer.commits
        await master.ask(test_set(gauge(HB_INTERVAL, 1000), txn=2))
        await master.ask(ax.CommitSet(transaction_id=2))
        assert rig.source.current().timing.heartbeat_interval_ms == 1000
        answer, _ = await master.ask(ax.UndoSet(transaction_id=2))
        assert answer.error == 0
        assert rig.source.current().timing.heartbeat_interval_ms == 5000
        revert, who = rig.committer.commits[-1]
        assert who.endswith("(undo)") and (revert.changes[0].old, revert.changes[0].new) == ("1000", "5000")

    run(mib, cfg, tmp_path, test)


def test_undo_of_an_operator_action_fails_honestly(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        await master.ask(test_set(VarBind(CONTROL_ACTION, ValueType.INTEGER, 4), txn=3))   # resetCounters
        await master.ask(ax.CommitSet(transaction_id=3))
        answer, _ = await master.ask(ax.UndoSet(transaction_id=3))
        assert (answer.error, answer.index) == (ResponseError.UNDO_FAILED, 1)

    run(mib, cfg, tmp_path, test)


def test_a_retransmitted_request_is_answered_once_from_the_cache(mib: MibModel, cfg: Config,
                                                                 tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        await master.ask(test_set(gauge(HB_INTERVAL, 1000), txn=9))
        commit = ax.CommitSet(session_id=SESSION, transaction_id=9, packet_id=500)
        master.send(commit)
        master.send(commit, network_byte_order=False)      # the same request again
        first, _ = await master.response_to(500)
        second, header = await master.response_to(500)
        assert first == second and not header.network_byte_order
        assert len(rig.committer.commits) == 1 and rig.stats.duplicates == 1

    run(mib, cfg, tmp_path, test)


# -- bad bytes --------------------------------------------------------------------------------


def test_an_unreadable_pdu_gets_parse_error_and_the_session_goes_on(mib: MibModel, cfg: Config,
                                                                     tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        bad = bytearray(encode(ax.Get(session_id=SESSION, transaction_id=3, packet_id=600)))
        bad[1] = 77                                       # an unknown PDU type, well framed
        master.writer.write(bytes(bad))
        answer, _ = await master.response_to(600)
        assert answer.error == ResponseError.PARSE_ERROR and answer.transaction_id == 3
        answer, _ = await master.ask(get(CLUSTER_NAME))
        assert answer.varbinds[0].type == ValueType.OCTET_STRING
        assert rig.stats.parse_errors == 1 and rig.stats.connects == 1
        # The performance meter: the Get served (its handling time measured), the PDU
        # that could not be read dropped.
        served = rig.subagent.meter.take("snmp.agentx")
        assert (served.count, served.dropped) == (1, 1) and served.max_us > 0

    run(mib, cfg, tmp_path, test)


def test_lost_framing_closes_with_parse_error_and_reconnects(mib: MibModel, cfg: Config,
                                                             tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        master.writer.write(b"\x07" + bytes(19))          # version 7: nothing to resync on
        closed, _ = await master.recv()
        assert isinstance(closed, ax.Close) and closed.reason == ax.CloseReason.PARSE_ERROR
        again = await asyncio.wait_for(rig.accepted.get(), 2)
        await again.handshake()
        await until(lambda: rig.stats.connects == 2)
        assert rig.stats.reconnects == 1 and rig.stats.parse_errors == 1

    run(mib, cfg, tmp_path, test)


# -- notifications ----------------------------------------------------------------------------


def trap(n: int) -> list[tuple[tuple[int, ...], Any]]:
    return [(TRAP_OID, ObjectIdentifier(R + (0, n))), (CLUSTER_NAME, OctetString(f"n{n}"))]


def test_notifications_go_out_as_notify_and_wait_while_disconnected(mib: MibModel, cfg: Config,
                                                                     tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        rig.subagent.notify(trap(1))                     # before any master: queued
        master = await rig.connected()
        got, _ = await master.recv()
        assert isinstance(got, ax.Notify) and got.session_id == SESSION
        assert got.varbinds[0] == VarBind(TRAP_OID, ValueType.OBJECT_IDENTIFIER, R + (0, 1))
        master.answer(got)
        rig.subagent.notify(trap(2))
        got, _ = await master.recv()
        assert got.varbinds[1].value == b"n2"
        master.answer(got)
        await until(lambda: rig.stats.notifications_sent == 2)

    run(mib, cfg, tmp_path, test)


def test_the_queue_is_bounded_and_counts_what_it_drops(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        for n in range(5):                               # queue_size 3, nobody to send to
            rig.subagent.notify(trap(n))
        assert rig.subagent.queued == 3 and rig.stats.notifications_dropped == 2
        master = await rig.connected()
        sent = []
        while len(sent) < 3:
            got, _ = await master.recv()
            if isinstance(got, ax.Notify):
                sent.append(got.varbinds[1].value)
                master.answer(got)
        assert sent == [b"n2", b"n3", b"n4"]             # the oldest went first

    run(mib, cfg, tmp_path, test)


def test_a_notification_unanswered_when_the_link_drops_is_sent_again(mib: MibModel, cfg: Config,
                                                                     tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        rig.subagent.notify(trap(1))
        got, _ = await master.recv()
        assert isinstance(got, ax.Notify)
        master.writer.close()                            # snmpd dies before answering
        again = await asyncio.wait_for(rig.accepted.get(), 2)
        await again.handshake()
        got, _ = await again.recv()
        assert isinstance(got, ax.Notify) and got.varbinds[1].value == b"n1"

    run(mib, cfg, tmp_path, test)


# -- keepalive, reconnects, shutdown ----------------------------------------------------------


def test_unanswered_pings_make_the_master_dead(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        pings = 0
        while pings < 2:                                  # retries = 1: the second miss kills
            got, _ = await master.recv(timeout=3)
            assert isinstance(got, ax.Ping)
            pings += 1
        again = await asyncio.wait_for(rig.accepted.get(), 3)
        await again.handshake()
        await until(lambda: rig.stats.reconnects == 1)

    run(mib, cfg, tmp_path, test, ping_interval_s=0.05, timeout_s=0.1)


def test_reconnect_delays_double_to_thirty_seconds_and_reset(mib: MibModel, cfg: Config,
                                                             tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        rig.subagent.start()                              # nobody listens yet
        await until(lambda: len(rig.sleeps) >= 9, timeout=60)
        assert rig.sleeps[:9] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
        assert rig.stats.status in (AgentxStatus.BACKOFF, AgentxStatus.CONNECTING)
        await rig.listen()
        master = await asyncio.wait_for(rig.accepted.get(), 60)
        await master.handshake()
        await until(lambda: rig.stats.status is AgentxStatus.REGISTERED)
        master.writer.close()                             # snmpd restarted
        again = await asyncio.wait_for(rig.accepted.get(), 5)
        assert rig.sleeps[-1] == 0.5                      # a registration reset the delay
        await again.handshake()

    run(mib, cfg, tmp_path, test)


def test_backoff_jitter_stays_within_a_quarter() -> None:
    low, high = Backoff(rand=lambda: 0.0), Backoff(rand=lambda: 1.0)
    assert [low.next() for _ in range(3)] == [0.375, 0.75, 1.5]
    assert [high.next() for _ in range(3)] == [0.625, 1.25, 2.5]


def test_stop_sends_close_after_the_queue_drains(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        rig.subagent.notify(trap(1))
        got, _ = await master.recv()
        master.answer(got)
        stopping = asyncio.ensure_future(rig.subagent.stop(drain_s=0.5))
        closed, _ = await master.recv()
        assert isinstance(closed, ax.Close) and closed.reason == ax.CloseReason.SHUTDOWN
        master.answer(closed)
        await stopping
        assert rig.stats.status is AgentxStatus.CLOSED

    run(mib, cfg, tmp_path, test)


class _StuckTransport:
    def __init__(self) -> None:
        self.aborted = False

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return 2 << 20

    def abort(self) -> None:
        self.aborted = True


class _Writer:
    def __init__(self) -> None:
        self.transport = _StuckTransport()

    def write(self, data: bytes) -> None:
        pass


def test_a_master_that_stops_reading_is_dropped_not_buffered() -> None:
    writer = _Writer()
    conn = _Connection(None, writer, AgentxStats())  # type: ignore[arg-type]
    with pytest.raises(SessionLost, match="stopped reading"):
        conn.send(ax.Ping(), True)
    assert writer.transport.aborted
    with pytest.raises(SessionLost, match="closed"):
        conn.send(ax.Ping(), True)


def test_an_enum_integer_goes_as_integer(mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        master = await rig.connected()
        answer, _ = await master.ask(get(R + (1, 1, 2, 0)))   # haoscarClusterStatus
        assert answer.varbinds[0].type == ValueType.INTEGER
        assert isinstance(Integer32(answer.varbinds[0].value), Integer32)

    run(mib, cfg, tmp_path, test)


# -- a master sending garbage -------------------------------------------------------------------


def fuzzed_pdus(count: int, seed: int = 2741) -> list[bytes]:
    """Well-framed PDUs (version 1, our session, a length that fits) with nonsense inside:
    request types the session answers (Get, GetNext, GetBulk, TestSet), types it never
    expects, random flags and either byte order; payloads random, or a valid request's
    payload with bits flipped or cut short."""
    import random
    import struct
    rng = random.Random(seed)
    valid = [encode(get(CLUSTER_NAME)), encode(test_set(gauge(HB_INTERVAL, 1000))),
             encode(ax.GetBulk(non_repeaters=0, max_repetitions=5, ranges=(SearchRange(R),)))]
    out = []
    for n in range(count):
        kind = rng.choice((5, 6, 7, 8, 8, rng.randrange(19, 256), 18, 12))
        network = rng.random() < 0.5
        flags = (0x10 if network else 0) | (rng.getrandbits(4) & 0x0F)
        shape = rng.random()
        if shape < 0.5:
            payload = rng.randbytes(4 * rng.randrange(0, 64))
        else:
            payload = bytearray(rng.choice(valid)[20:])
            for _ in range(rng.randrange(1, 8)):
                if payload:
                    payload[rng.randrange(len(payload))] ^= 1 << rng.randrange(8)
            payload = bytes(payload[: 4 * (len(payload) // 4 - rng.randrange(0, 3))] if payload else b"")
        order = "!" if network else "<"
        header = struct.pack(order[0] + "BBBBIIII", 1, kind, flags, 0, SESSION, rng.getrandbits(32),
                             100_000 + n, len(payload))
        out.append(header + payload)
    return out


def test_ten_thousand_malformed_pdus_leave_the_session_serving_in_bounded_memory(
        mib: MibModel, cfg: Config, tmp_path: Path) -> None:
    import tracemalloc
    garbage = fuzzed_pdus(10_000)

    async def test(rig: Rig) -> None:
        master = await rig.connected()

        async def drain() -> None:           # the master reads whatever comes back meanwhile
            try:
                while True:
                    got, _ = await master.recv(timeout=0.2)
                    if isinstance(got, (ax.Ping, ax.Notify)):
                        master.answer(got)
            except (TimeoutError, asyncio.TimeoutError):
                pass
        tracemalloc.start()
        try:
            peaks = []
            for start in range(0, len(garbage), 500):        # 20 bounded rounds
                master.writer.write(b"".join(garbage[start:start + 500]))
                await master.writer.drain()
                await drain()
                peaks.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
        answer, _ = await master.ask(get(CLUSTER_NAME))
        assert answer.varbinds[0].type == ValueType.OCTET_STRING      # still serving
        assert rig.stats.connects == 1 and rig.stats.parse_errors > 1000
        # Memory flat: what the second half of the rounds holds is within 256 KiB of the first half.
        assert max(peaks[10:]) - max(peaks[:10]) < 256 * 1024, peaks

    run(mib, cfg, tmp_path, test)
