"""The fast read path answers as the pysnmp path does: the same var-binds, error-status
and error-index for the same request, decoded with pysnmp's own decoder.

Two agents serve one state: one with the fast path, one with it switched off (the
benchmark switch), both started on loopback with ephemeral ports, both fed the same
datagrams at their receive seam. The corpus: every scalar, every column instance of a
populated state (including Counter64 columns and absent instances), whole GETNEXT walks,
GETBULK with every max-repetitions from 1 to 100 and non-repeaters 0 to 3, SNMPv1 and
SNMPv2c, names outside the MIB and past its end (handed over), a trap-only community,
an unknown community, junk, and responses too big for the maximum message size.

Where the two paths differ on purpose, the place is listed in RFC_DIFFERENCES and checked
against RFC 3416 instead:
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any, Iterator

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.proto import api

from fcaps.configuration.apply import apply_to_state
from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.values import Endpoint
from haoscar_snmp.core.state import (
    ClusterLinkRow,
    ClusterNodeRow,
    EventRow,
    HbPathRow,
    Lan,
    LanIfRow,
    ResourceRow,
    SecurityCounters,
    State,
)
from haoscar_snmp.snmp.agent import FASTPATH_SWITCH, Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import OID, MibModel
from haoscar_snmp.snmp.view import MibView

RFC_DIFFERENCES: dict[str, str] = {}     # none left: both paths take GETBULK's
__doc__ += "".join(f"\n* {text}" for text in RFC_DIFFERENCES.values()) or "\n(none)"

V1, V2C = 0, 1
DOMAIN = udp.DOMAIN_NAME + (1,)
PEER = ("127.0.0.1", 40000)


def _state(cfg: Any) -> State:
    state = State()
    apply_to_state(cfg, state)
    for i in range(1, 6):
        state.lan_ifs.put((i,), LanIfRow(node=f"head{i % 2 + 1}", lan=Lan.LAN_A, name=f"eth{i}",
                                         address=f"10.0.0.{i}", in_packets=i * 10**12,
                                         out_packets=2**64 + i, probes_sent=i, last_error="x" * i))
    for i in range(1, 40):
        state.events.put((i,), EventRow(1_700_000_000.0 + i, 12, f"svc{i}", 4, f"event {i} " * (i % 7 + 1) * 2))
    state.hb_paths.put((1, 1), HbPathRow(sent=5, received=4, lost=1))
    state.hb_paths.put((2, 2), HbPathRow(rtt_us=-5))
    # the cluster past two heads: TruthValue columns, a two-part index, TimeTicks
    state.membership.known, state.membership.quorate, state.membership.ring_id = True, True, "1.12"
    state.membership.changes, state.membership.last_changed = 3, 1.0
    for node_id in (1, 2, 3):
        state.cluster_nodes.put((node_id,), ClusterNodeRow(f"node{node_id}", 1, True, node_id != 3,
                                                           dc=node_id == 1, is_local=node_id == 1))
        if node_id != 1:
            for link in (0, 1):
                state.cluster_links.put((node_id, link), ClusterLinkRow(link == 0, 250 * link))
    state.resources.put((1,), ResourceRow("vip", "ocf:heartbeat:IPaddr2", "Started", "node1", False, 0, "ok",
                                          "192.0.2.10"))
    state.resources.put((7,), ResourceRow("web", "ocf:pacemaker:Dummy", "Stopped", "", True, 1000000, "error"))
    return state


class Pair:
    """Two started agents over one state: `fast` with the fast path, `slow` without."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch, users: tuple[Any, ...] = ()) -> None:
        base = load_config(None, state_dir=tmp)
        snmp = base.snmp.model_copy(update={
            "listen": (Endpoint.model_construct(host="127.0.0.1", port=0),),   # ephemeral
            "users": base.snmp.users + users,
            "targets": tuple(t.model_copy(update={"community": "trapsecret"}) for t in base.snmp.targets)})
        self.cfg = base.model_copy(update={"snmp": snmp})
        self.state = _state(self.cfg)
        self.view = MibView(MibModel.load())
        bind_all(self.view, self.state, lambda: self.cfg, CONFIG_MAP, lambda m: 0, lambda: 0)
        self.sent: dict[str, list[bytes]] = {"fast": [], "slow": []}
        self.agents = {}
        for name, switch in (("fast", "1"), ("slow", "0")):
            monkeypatch.setenv(FASTPATH_SWITCH, switch)
            (tmp / name).mkdir()
            cfg = self.cfg.model_copy(update={"cluster": self.cfg.cluster.model_copy(
                update={"state_dir": str(tmp / name)})})
            unused: Any = None
            agent = Agent(cfg, self.view, unused, unused, SecurityCounters())
            agent.start()
            transports = agent.engine.transport_dispatcher
            original = transports.send_message
            transports.send_message = (lambda out: lambda data, d, a: out.append(bytes(data)))(self.sent[name])
            self.agents[name] = agent
            del original
        assert self.agents["fast"].fastpath is not None and self.agents["slow"].fastpath is None

    def ask(self, name: str, message: bytes) -> bytes | None:
        agent = self.agents[name]
        out = self.sent[name]
        before = len(out)
        agent.engine.message_dispatcher.receive_message(agent.engine, DOMAIN, PEER, message)
        assert len(out) - before <= 1
        return out[-1] if len(out) > before else None

    def counter(self, name: str, symbol: str) -> int:
        """A pysnmp counter, as pysnmp would read it when it handles the next datagram."""
        if self.agents[name].fastpath is not None:
            self.agents[name].fastpath.flush()
        (c,) = self.agents[name].engine.get_mib_builder().import_symbols("__SNMPv2-MIB", symbol)
        return int(c.syntax)

    def set_max_size(self, size: int) -> None:
        for agent in self.agents.values():
            (m,) = agent.engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB",
                                                                 "snmpEngineMaxMessageSize")
            m.syntax = m.syntax.clone(size)

    async def stop(self) -> None:
        for agent in self.agents.values():
            await agent.stop()


def request(version: int, kind: str, names: list[OID], a: int = 0, b: int = 0,
            community: str = "public", request_id: int = 4242) -> bytes:
    p = api.PROTOCOL_MODULES[version]
    pdu = {"get": p.GetRequestPDU, "next": p.GetNextRequestPDU,
           "bulk": getattr(p, "GetBulkRequestPDU", None)}[kind]()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    if kind == "bulk":
        p.apiBulkPDU.set_non_repeaters(pdu, a)
        p.apiBulkPDU.set_max_repetitions(pdu, b)
    p.apiPDU.set_varbinds(pdu, [(n, p.Null("")) for n in names])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, community)
    p.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


def decode(message: bytes | None) -> tuple[int, int, list[tuple[OID, bytes]]] | None:
    """(error-status, error-index, [(name, value's BER)]) of a response, with pysnmp's decoder."""
    if message is None:
        return None
    version = int(api.decodeMessageVersion(message))
    p = api.PROTOCOL_MODULES[version]
    msg, rest = decoder.decode(message, asn1Spec=p.Message())
    assert rest == b""
    pdu = p.apiMessage.get_pdu(msg)
    vbs = [(tuple(n), encoder.encode(v)) for n, v in p.apiPDU.get_varbinds(pdu)]
    return int(p.apiPDU.get_error_status(pdu)), int(p.apiPDU.get_error_index(pdu)), vbs


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def make() -> Pair:      # the agents start inside a running loop, as in the daemon
        return Pair(tmp_path, monkeypatch)
    made = loop.run_until_complete(make())
    try:
        yield made
    finally:
        loop.run_until_complete(made.stop())
        asyncio.set_event_loop(None)
        loop.close()


def same(pair: Pair, message: bytes, served: bool = True) -> tuple[int, int, list[tuple[OID, bytes]]] | None:
    """Ask both agents; assert equal answers and counters; return the decoded answer."""
    fast_before = pair.agents["fast"].fastpath.served
    counters = ("snmpInPkts", "snmpOutTooBigs", "snmpSilentDrops", "snmpInASNParseErrs")
    before = {(n, c): pair.counter(n, c) for n in pair.agents for c in counters}
    answers = {n: decode(pair.ask(n, message)) for n in pair.agents}
    assert answers["fast"] == answers["slow"]
    moved = {(n, c): pair.counter(n, c) - before[(n, c)] for n in pair.agents for c in counters}
    assert {c: moved[("fast", c)] for c in counters} == {c: moved[("slow", c)] for c in counters}
    assert moved[("fast", "snmpInPkts")] == 1
    assert (pair.agents["fast"].fastpath.served - fast_before == 1) == served
    return answers["fast"]


def instances(view: MibView) -> list[OID]:
    out, oid = [], view.root
    while (found := view.next(oid)) is not None:
        oid = found[0]
        out.append(oid)
    return out


# -- GET -----------------------------------------------------------------------------------

def test_every_instance_read_with_get_answers_the_same(pair: Pair) -> None:
    every = instances(pair.view)
    assert len(every) > 300
    for version in (V1, V2C):
        for oid in every:
            same(pair, request(version, "get", [oid]))
        for chunk in range(0, len(every), 7):    # several var-binds in one GET
            same(pair, request(version, "get", every[chunk:chunk + 7]))


def test_exceptions_and_snmpv1_errors_answer_the_same(pair: Pair) -> None:
    mib = pair.view.mib
    root = pair.view.root
    absent = [mib["haoscarLanIfName"].oid + (99,), mib["haoscarClusterName"].oid + (1,),
              root + (99, 1, 0), root, mib["haoscarEventText"].oid]
    c64 = mib["haoscarLanIfInPackets"].oid + (2,)
    ok = mib["haoscarClusterName"].oid + (0,)
    for version in (V1, V2C):
        for names in ([absent[0]], absent, [ok, absent[1], ok], [ok, c64], [c64, absent[0], ok],
                      [absent[2], c64, c64, ok], [ok, ok], []):
            answer = same(pair, request(version, "get", names))
            if version == V1 and names and names != [ok, ok]:
                assert answer[0] == 2 and answer[1] > 0, answer


def test_names_outside_the_mib_are_handed_to_pysnmp(pair: Pair) -> None:
    sys_contact = (1, 3, 6, 1, 2, 1, 1, 4, 0)
    usm = (1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0)
    ok = pair.view.mib["haoscarClusterName"].oid + (0,)
    for version in (V1, V2C):
        for names in ([sys_contact], [ok, usm], [(1, 3, 6, 1, 2, 1, 1, 1, 0), ok]):
            same(pair, request(version, "get", names), served=False)
        # past the MIB's last instance: pysnmp's tree has what follows
        same(pair, request(version, "next", [instances(pair.view)[-1]]), served=False)
        same(pair, request(version, "next", [(1, 3, 6, 1, 2, 1)]), served=False)


def test_other_communities_and_junk_are_pysnmps(pair: Pair) -> None:
    ok = pair.view.mib["haoscarClusterName"].oid + (0,)
    same(pair, request(V2C, "get", [ok], community="trapsecret"), served=False)
    bad = {n: pair.counter(n, "snmpInBadCommunityNames") for n in pair.agents}
    for name in pair.agents:
        assert pair.ask(name, request(V2C, "get", [ok], community="nope")) is None
        assert pair.counter(name, "snmpInBadCommunityNames") == bad[name] + 1
    for junk in (b"", b"not snmp at all", b"\x02\x01\x00", b"\x30\x03\x02\x01\x07",
                 request(V2C, "get", [ok])[:-3], b"\x30\x84\xff\xff\xff\xff\x02\x01\x01"):
        errs = {n: pair.counter(n, "snmpInASNParseErrs") for n in pair.agents}
        pkts = {n: pair.counter(n, "snmpInPkts") for n in pair.agents}
        for name in pair.agents:
            assert pair.ask(name, junk) is None
        assert pair.counter("fast", "snmpInASNParseErrs") - errs["fast"] == \
            pair.counter("slow", "snmpInASNParseErrs") - errs["slow"]
        assert pair.counter("fast", "snmpInPkts") - pkts["fast"] == pair.counter("slow", "snmpInPkts") - pkts["slow"]


# -- GETNEXT and GETBULK ---------------------------------------------------------------------

def test_getnext_walks_answer_the_same(pair: Pair) -> None:
    every = instances(pair.view)
    for version in (V1, V2C):
        oid: OID = pair.view.root
        for _ in range(len(every) + 1):
            answer = same(pair, request(version, "next", [oid]), served=oid != every[-1])
            if oid == every[-1]:
                break
            oid = answer[2][0][0]
        starts = [pair.view.root, every[3], pair.view.mib["haoscarLanIfTable"].oid, every[40]]
        same(pair, request(version, "next", starts))


def test_getbulk_with_every_max_repetitions_and_non_repeaters(pair: Pair) -> None:
    mib = pair.view.mib
    starts = [mib["haoscarLanIfTable"].oid, mib["haoscarEventTable"].oid, pair.view.root,
              mib["haoscarHbPathTable"].oid]
    for n, m in itertools.product(range(4), range(1, 101)):
        names = starts[: n + 1]
        r = len(names) - n
        # Both paths go on to max-repetitions as far as the message size allows (RFC 3416
        # 4.2.3); pysnmp's own cap of 64 var-binds is not used.
        answer = same(pair, request(V2C, "bulk", names, n, m))
        assert answer[:2] == (0, 0) and len(answer[2]) == n + r * m


def test_getbulk_edge_cases_follow_the_rfc(pair: Pair) -> None:
    start = pair.view.mib["haoscarEventTable"].oid
    # negative counts are taken as 0 (RFC 3416 4.2.3)
    for a, b, count in ((-1, 3, 3), (0, -5, 0), (-3, -3, 0), (1, -1, 1), (-(1 << 31), 2, 2)):
        answer = same(pair, _bulk_raw([start], a, b))
        assert answer[:2] == (0, 0) and len(answer[2]) == count, (a, b, answer)
    # nothing to return: an empty list
    for names, n, m in (([], 0, 10), ([start], 0, 0), ([start], 1, 0)):
        same(pair, request(V2C, "bulk", names, n, m))
    # the same OID asked twice, and non-repeaters over the var-bind count
    same(pair, request(V2C, "bulk", [start, start], 5, 3))
    same(pair, request(V2C, "bulk", [start, start, start], 1, 10))


def _bulk_raw(names: list[OID], a: int, b: int) -> bytes:
    """A GETBULK with any non-repeaters and max-repetitions (pysnmp's encoder refuses
    negative ones)."""
    message = request(V2C, "bulk", names, 7, 7)
    at = message.index(b"\x02\x01\x07\x02\x01\x07")

    def integer(v: int) -> bytes:
        body = v.to_bytes((v + (v < 0)).bit_length() // 8 + 1, "big", signed=True)
        return b"\x02" + bytes([len(body)]) + body
    middle = integer(a) + integer(b)
    pdu_grew = len(middle) - 6
    patched = message[:at] + middle + message[at + 6:]
    # fix the PDU's and the message's short lengths
    out = bytearray(patched)
    out[1] += pdu_grew
    pdu_at = out.index(0xA5)
    out[pdu_at + 1] += pdu_grew
    return bytes(out)


# -- the maximum message size ------------------------------------------------------------------

def test_responses_over_the_maximum_size_follow_the_rfc(pair: Pair) -> None:
    every = instances(pair.view)
    pair.set_max_size(1500)
    texts = [pair.view.mib["haoscarEventText"].oid + (i,) for i in range(1, 40)]
    # GET: tooBig, with no var-binds (v2c) or the request's (v1), counted in snmpOutTooBigs
    assert same(pair, request(V2C, "get", texts)) == (1, 0, [])
    status, index, vbs = same(pair, request(V1, "get", texts[:30]))
    assert (status, index) == (1, 0) and [n for n, _ in vbs] == texts[:30]
    same(pair, request(V2C, "next", [t[:-1] + (i,) for i in range(40) for t in texts[:1]]))
    # nothing at all when even that does not fit: snmpSilentDrops
    assert same(pair, request(V1, "get", texts * 3)) is None
    # GETBULK: as many var-binds as fit, in order
    answer = pair.ask("fast", request(V2C, "bulk", [texts[0][:-1]], 0, 60))
    assert 1300 < len(answer) <= 1500
    status, index, vbs = same(pair, request(V2C, "bulk", [texts[0][:-1]], 0, 60))
    assert (status, index) == (0, 0) and [n for n, _ in vbs] == texts[: len(vbs)]
    assert 3 < len(vbs) < 39
    for n, m in itertools.product(range(3), (5, 20, 60)):
        same(pair, request(V2C, "bulk", [texts[0][:-1]] * 3, n, m))
    # a response that fits is the same as ever
    pair.set_max_size(65507)
    same(pair, request(V2C, "get", every[:20]))
