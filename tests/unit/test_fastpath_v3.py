"""SNMPv3 reads on the fast path answer as the pysnmp path does, and everything off the
happy path is pysnmp's, answered and counted exactly as before.

Two agents over one state (test_fastpath_equivalence.Pair), with one USM user per
authentication and privacy protocol the configuration accepts (5 x 4). Requests are
built, and responses checked (digest), decrypted and decoded, with pysnmp's own message
classes and USM services (v3wire.py), never with the fast path's code. The corpus is the
SNMPv2c one: every scalar and column instance, GETNEXT walks, GETBULK with
max-repetitions 1..100 and non-repeaters 0..3, exceptions, names outside the MIB, and
responses over the size limit (ours, and the manager's msgMaxSize). Every protocol pair
reads every instance (in GETs of 23), the exceptions, the size limits and GETBULKs at
max-repetitions 1, 33 and 100; one pair (SHA-256/AES-128) reads each instance alone,
walks the MIB with GETNEXT (SHA-512/AES-256) and takes every max-repetitions from 1 to
100: the PDU rules do not depend on the protocols, and the pysnmp path's GETBULKs are
slow. There is no difference on purpose (GETBULK fills the message on both paths).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path
from typing import Any, Iterator

import pytest
from test_fastpath_equivalence import Pair, instances
from v3wire import AUTH_NAMES, PRIV_NAMES, Manager, Response, pdu

from haoscar_snmp.config.schema import UserConfig
from haoscar_snmp.snmp.fastpath.usm import Salt
from haoscar_snmp.snmp.mib import OID

AUTH_PASS = "fast-auth-passphrase"
PRIV_PASS = "fast-priv-passphrase"
COMBOS = list(itertools.product(AUTH_NAMES, PRIV_NAMES))
COUNTERS = (("__SNMPv2-MIB", "snmpInPkts"), ("__SNMPv2-MIB", "snmpOutTooBigs"),
            ("__SNMPv2-MIB", "snmpSilentDrops"), ("__SNMPv2-MIB", "snmpInASNParseErrs"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests"),
            ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors"),
            ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels"), ("__SNMP-MPD-MIB", "snmpInvalidMsgs"),
            ("__SNMP-TARGET-MIB", "snmpUnknownContexts"))


def user_name(auth: str, priv: str) -> str:
    return f"u-{auth}-{priv}"


def users(auth_pass: str = AUTH_PASS, priv_pass: str = PRIV_PASS) -> tuple[UserConfig, ...]:
    out = []
    for auth, priv in COMBOS:
        fields = {"name": user_name(auth, priv), "auth_protocol": auth, "auth_key": auth_pass,
                  "priv_protocol": priv}
        if priv != "none":
            fields["priv_key"] = priv_pass
        out.append(UserConfig.model_validate(fields))
    return tuple(out)


class V3Pair:
    """The two agents, and a manager per user."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.view = pair.view
        engine = pair.agents["fast"].engine
        (eid,) = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineID")
        self.engine_id = bytes(eid.syntax)
        for agent in pair.agents.values():     # engines up for 1,000 s: times 151 s ago exist
            (start,) = agent.engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineTime")
            start.syntax = start.syntax.clone(int(start.syntax) - 1000)
        self.managers = {(a, p): Manager.of(user_name(a, p), a, p, AUTH_PASS, PRIV_PASS, self.engine_id)
                         for a, p in COMBOS}

    def clock(self, name: str = "fast") -> tuple[int, int]:
        b = self.pair.agents[name].engine.get_mib_builder()
        boots, now = b.import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineBoots", "snmpEngineTime")
        return int(boots.syntax), int(now.syntax.clone())

    def counter(self, name: str, module: str, symbol: str) -> int:
        agent = self.pair.agents[name]
        if agent.fastpath is not None:
            agent.fastpath.flush()
        (c,) = agent.engine.get_mib_builder().import_symbols(module, symbol)
        return int(c.syntax)

    def counters(self) -> dict[tuple[str, str], int]:
        return {(n, s): self.counter(n, m, s) for n in self.pair.agents for m, s in COUNTERS}

    def both(self, make: Any) -> dict[str, bytes | None]:
        """Ask both agents the message `make(boots, time)` builds with each agent's clock."""
        return {n: self.pair.ask(n, make(*self.clock(n))) for n in self.pair.agents}

    def same(self, manager: Manager, make: Any, served: bool = True) -> Response | None:
        """Both agents' answers to one request decode alike; the counters move alike."""
        fast = self.pair.agents["fast"].fastpath
        was = fast.served
        before = self.counters()
        raw = self.both(make)
        moved = {k: v - before[k] for k, v in self.counters().items()}
        assert {s: moved[("fast", s)] for _, s in COUNTERS} == {s: moved[("slow", s)] for _, s in COUNTERS}
        assert moved[("fast", "snmpInPkts")] == 1
        assert (fast.served - was == 1) == served
        if raw["fast"] is None or raw["slow"] is None:
            assert raw["fast"] is raw["slow"] is None
            return None
        a, b = manager.open(raw["fast"]), manager.open(raw["slow"])
        assert a.answer == b.answer
        assert (a.msg_id, a.max_size, a.flags, a.engine_id, a.boots, a.user, a.context_engine, a.context,
                a.tag) == (b.msg_id, b.max_size, b.flags, b.engine_id, b.boots, b.user, b.context_engine,
                           b.context, b.tag)
        for answer, name in ((a, "fast"), (b, "slow")):     # each engine's own time (they started apart)
            assert 0 <= self.clock(name)[1] - answer.engine_time <= 1
        if served:      # a response: the request's level, not reportable (pysnmp's reports are)
            assert a.flags == (3 if manager.level == 3 else 1)
            if manager.level == 3:
                assert len(a.salt) == 8 and a.salt != b.salt
        return a

    def read(self, manager: Manager, kind: str, names: list[OID], a: int = 0, b: int = 0,
             served: bool = True, **spoil: Any) -> Response | None:
        return self.same(manager, lambda boots, now: manager.request(pdu(kind, names, a, b), boots, now, **spoil),
                         served)


@pytest.fixture
def v3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[V3Pair]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def make() -> Pair:
        return Pair(tmp_path, monkeypatch, users())
    made = loop.run_until_complete(make())
    try:
        yield V3Pair(made)
    finally:
        loop.run_until_complete(made.stop())
        asyncio.set_event_loop(None)
        loop.close()


def test_every_protocol_pair_reads_every_instance(v3: V3Pair) -> None:
    every = instances(v3.view)
    for combo, manager in v3.managers.items():
        answer = v3.read(manager, "get", every[:1])
        assert answer is not None and answer.status == 0, combo
    manager = v3.managers[("sha256", "aes128")]
    for oid in every:
        v3.read(manager, "get", [oid])
    for combo, manager in v3.managers.items():
        for chunk in range(0, len(every), 23):
            v3.read(manager, "get", every[chunk:chunk + 23])


def test_exceptions_and_outside_names(v3: V3Pair) -> None:
    mib, root = v3.view.mib, v3.view.root
    absent = [mib["haoscarLanIfName"].oid + (99,), mib["haoscarClusterName"].oid + (1,), root + (99, 1, 0), root]
    ok = mib["haoscarClusterName"].oid + (0,)
    c64 = mib["haoscarLanIfInPackets"].oid + (2,)
    for manager in v3.managers.values():
        for names in ([absent[0]], absent, [ok, absent[1], ok], [ok, c64], []):
            v3.read(manager, "get", names)
        v3.read(manager, "get", [(1, 3, 6, 1, 2, 1, 1, 4, 0)], served=False)
        v3.read(manager, "next", [instances(v3.view)[-1]], served=False)


def test_walks_and_bulks(v3: V3Pair) -> None:
    every = instances(v3.view)
    manager = v3.managers[("sha512", "aes256")]
    oid: OID = v3.view.root
    for _ in range(len(every)):
        oid = v3.read(manager, "next", [oid]).varbinds[0][0]
    assert oid == every[-1]
    starts = [mib_oid for mib_oid in (v3.view.mib["haoscarLanIfTable"].oid, v3.view.mib["haoscarEventTable"].oid,
                                      v3.view.root, v3.view.mib["haoscarHbPathTable"].oid)]
    for combo, manager in v3.managers.items():
        ms = range(1, 101) if combo == ("sha256", "aes128") else (1, 33, 100)
        for n, m in itertools.product(range(4), ms):
            names = starts[: n + 1]
            r = len(names) - n
            answer = v3.read(manager, "bulk", names, n, m)      # the same on both paths
            assert answer is not None and answer.answer[:2] == (0, 0) and len(answer.varbinds) == n + r * m


def test_responses_over_the_size_limits(v3: V3Pair) -> None:
    texts = [v3.view.mib["haoscarEventText"].oid + (i,) for i in range(1, 40)]
    v3.pair.set_max_size(1500)
    for manager in v3.managers.values():
        assert v3.read(manager, "get", texts).answer == (1, 0, [])
        answer = v3.read(manager, "bulk", [texts[0][:-1]], 0, 60)
        assert answer.status == 0 and 3 < len(answer.varbinds) < 39
        assert [n for n, _ in answer.varbinds] == texts[: len(answer.varbinds)]
    v3.pair.set_max_size(65507)
    # the manager's msgMaxSize is the lower limit here
    for manager in v3.managers.values():
        for size in (484, 700, 1400):
            raw = v3.same(manager, lambda boots, now: manager.request(pdu("bulk", [texts[0][:-1]], 0, 60),
                                                                   boots, now, max_size=size))
            assert raw is not None and raw.status == 0 and len(raw.varbinds) < 39
            assert v3.read(manager, "get", texts, max_size=size).answer == (1, 0, [])


# -- off the happy path: pysnmp's, exactly as before --------------------------------------

def usm_moved(v3: V3Pair, before: dict[tuple[str, str], int]) -> dict[str, int]:
    """The counters that moved on the fast agent (the same moved on the other: `same`)."""
    return {s: v - before[(n, s)] for (n, s), v in v3.counters().items() if n == "fast" and v != before[(n, s)]}


def refused(v3: V3Pair, manager: Manager, make: Any, counter: str | None) -> Response | None:
    before = v3.counters()
    answer = v3.same(manager, make, served=False)
    moved = usm_moved(v3, before)
    moved.pop("snmpInPkts")
    assert moved == ({counter: 1} if counter else {}), moved
    if counter and answer is not None:
        assert answer.tag[0][2] == 8 and answer.varbinds[0][0][-2] in range(1, 7)   # a Report
    return answer


def test_wrong_credentials_times_engines_and_levels_are_pysnmps(v3: V3Pair) -> None:
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    get = pdu("get", [ok])
    for combo in (("sha256", "aes128"), ("sha", "none"), ("sha512", "aes256"), ("sha224", "aes192")):
        m = v3.managers[combo]
        name = user_name(*combo)
        wrong_auth = Manager.of(name, *combo, "not-the-auth-key", PRIV_PASS, v3.engine_id)
        refused(v3, m, lambda b, t: wrong_auth.request(get, b, t), "usmStatsWrongDigests")
        if combo[1] != "none":
            wrong_priv = Manager.of(name, *combo, AUTH_PASS, "not-the-priv-key", v3.engine_id)
            refused(v3, m, lambda b, t: wrong_priv.request(get, b, t), "usmStatsDecryptionErrors")
            # authNoPriv by a user whose reads need authPriv
            refused(v3, m, lambda b, t: m.request(get, b, t, level=2), "usmStatsUnsupportedSecLevels")
        else:
            # authPriv flags on a user without privacy
            refused(v3, m, lambda b, t: m.request(get, b, t, flags=0x07), "usmStatsUnsupportedSecLevels")
        refused(v3, m, lambda b, t: m.request(get, b, t, level=1), "usmStatsUnsupportedSecLevels")
        refused(v3, m, lambda b, t: m.request(get, b, t - 151), "usmStatsNotInTimeWindows")
        refused(v3, m, lambda b, t: m.request(get, b, t + 200), "usmStatsNotInTimeWindows")
        refused(v3, m, lambda b, t: m.request(get, b + 1, t), "usmStatsNotInTimeWindows")
        refused(v3, m, lambda b, t: m.request(get, b, t, user="nobody"), "usmStatsUnknownUserNames")
        # another engine's ID: pysnmp looks the user up under it (RFC 3414 3.2.3a, as it
        # reads it) and counts an unknown user; an ID too short to be one, an unknown engine
        refused(v3, m, lambda b, t: m.request(get, b, t, engine_id=b"\x80\x00\x1f\x88\x04other"),
                "usmStatsUnknownUserNames")
        refused(v3, m, lambda b, t: m.request(get, b, t, engine_id=b"\x80\x00"), "usmStatsUnknownEngineIDs")
        # inside the window at its edge: served
        v3.same(m, lambda b, t: m.request(get, b, t + 150))
        # another context, another context engine: pysnmp decides (the same on both)
        v3.same(m, lambda b, t: m.request(get, b, t, context=b"other"), served=False)
        v3.same(m, lambda b, t: m.request(get, b, t, context_engine=b"\x80\x00\x1f\x88\x04other"),
                served=False)


def test_discovery_is_pysnmps(v3: V3Pair) -> None:
    m = v3.managers[("sha256", "aes128")]
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    answer = refused(v3, m, lambda b, t: m.request(pdu("get", []), 0, 0, level=1, engine_id=b"", user="",
                                                   context_engine=b""), "usmStatsUnknownEngineIDs")
    assert answer is not None and answer.engine_id == v3.engine_id
    refused(v3, m, lambda b, t: m.request(pdu("get", [ok]), 0, 0, engine_id=b""), "usmStatsUnknownEngineIDs")


def test_boots_at_their_maximum_are_pysnmps(v3: V3Pair) -> None:
    m = v3.managers[("sha384", "aes128")]
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    for agent in v3.pair.agents.values():
        (boots,) = agent.engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB", "snmpEngineBoots")
        boots.syntax = boots.syntax.clone(2147483647)
    refused(v3, m, lambda b, t: m.request(pdu("get", [ok]), b, t), "usmStatsNotInTimeWindows")


def test_truncated_and_bit_flipped_messages_are_pysnmps(v3: V3Pair) -> None:
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    for combo in (("sha256", "aes128"), ("sha", "none")):
        m = v3.managers[combo]
        for cut in (1, 2, 5, 17, 40, 80):
            v3.same(m, lambda b, t: m.request(pdu("get", [ok]), b, t)[:-cut], served=False)
        size = len(m.request(pdu("get", [ok]), *v3.clock()))
        for bit in range(0, size * 8, 7):
            def flipped(b: int, t: int, bit: int = bit) -> bytes:
                raw = bytearray(m.request(pdu("get", [ok]), b, t))
                raw[bit // 8] ^= 1 << (bit % 8)
                return bytes(raw)
            v3.same(m, flipped, served=False)


def test_a_credential_rotation_is_read_at_once(v3: V3Pair) -> None:
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    get = pdu("get", [ok])
    old = v3.managers[("sha256", "aes128")]
    v3.read(old, "get", [ok])
    for agent in v3.pair.agents.values():
        snmp = agent.config.snmp
        rotated = tuple(u for u in snmp.users if not u.name.startswith("u-"))
        rotated += users("rotated-auth-key", "rotated-priv-key")
        changed = agent.config.model_copy(update={"snmp": snmp.model_copy(update={"users": rotated})})
        assert agent.reconfigure(changed)
    new = Manager.of(old.name, "sha256", "aes128", "rotated-auth-key", "rotated-priv-key", v3.engine_id)
    refused(v3, new, lambda b, t: old.request(get, b, t), "usmStatsWrongDigests")
    assert v3.read(new, "get", [ok]).status == 0


def test_the_salt_is_a_64_bit_integer_incremented_per_message(v3: V3Pair) -> None:
    """RFC 3826 3.1.2.1: one more per message, wrapping to 0 after 2**64 - 1."""
    m = v3.managers[("sha256", "aes256")]
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    salts = [int.from_bytes(v3.read(m, "get", [ok]).salt, "big") for _ in range(3)]
    assert salts[1] == salts[0] + 1 and salts[2] == salts[1] + 1
    salt = Salt()
    salt._next = (1 << 64) - 1
    assert [salt.take(), salt.take()] == [b"\xff" * 8, bytes(8)]


def test_mangled_messages_never_raise_and_are_never_opened(v3: V3Pair) -> None:
    """Random edits of valid messages (octets changed, cut, inserted): `UsmReader.open`
    returns None for each (the HMAC covers every octet) and never raises."""
    usm = v3.pair.agents["fast"].fastpath._usm
    ok = v3.view.mib["haoscarClusterName"].oid + (0,)
    rng = random.Random(20261208)
    for combo in (("sha256", "aes128"), ("sha", "none"), ("sha512", "aes256")):
        m = v3.managers[combo]
        valid = m.request(pdu("bulk", [ok], 0, 5), *v3.clock())
        assert usm.open(valid, 65507) is not None
        for _ in range(1500):
            raw = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(raw))
                edit = rng.randrange(3)
                if edit == 0:
                    raw[at] = rng.randrange(256)
                elif edit == 1:
                    del raw[at:at + rng.randint(1, 8)]
                else:
                    raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            if bytes(raw) != valid:
                assert usm.open(bytes(raw), 65507) is None
