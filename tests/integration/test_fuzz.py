"""A short fuzz of the standalone agent: a few thousand malformed and mutated datagrams.

Every datagram reaches the agent (the sender paces itself on the agent's answers), every
one is counted in snmpInPkts, the junk lands in the standard counters it belongs to, and
afterwards the agent answers net-snmp's tools as before. The long run, with memory
figures, is bench/bench_fuzz.py.
"""

from __future__ import annotations

from .harness import AUTH_KEY, PRIV_KEY, Agent, R
from .snmpfuzz import COUNTERS, KINDS, Mutator, capture, send_paced

PER_KIND = 400


def counters(agent: Agent) -> dict[str, int]:
    r = agent.v2c("snmpget", *COUNTERS.values(), mib=False)
    assert r.rc == 0, r.text
    by_oid = {line.split(" = ")[0].strip("."): int(line.split()[-1])
              for line in r.out.splitlines() if " = " in line}
    return {name: by_oid[oid] for name, oid in COUNTERS.items()}


def test_fuzzed_agent_counts_the_junk_and_still_answers(agent: Agent) -> None:
    v3_args = ["-u", "admin", "-l", "authPriv", "-a", "SHA-256", "-A", AUTH_KEY,
               "-x", "AES", "-X", PRIV_KEY]
    seeds = capture(("127.0.0.1", agent.port), "public", v3_args)
    assert {"v1", "v2c", "v3", "v3probe"} <= set(seeds.by_kind), seeds.by_kind.keys()
    walk_before = agent.v2c("snmpwalk", R)
    before = counters(agent)

    run = send_paced(("127.0.0.1", agent.port),
                     Mutator(seeds, seed=20261207).stream(PER_KIND * len(KINDS)), "public")

    after = counters(agent)
    delta = {k: after[k] - before[k] for k in COUNTERS}
    assert run.sync_lost == 0 and run.total == PER_KIND * len(KINDS), run
    # Every datagram reached the agent and was counted: the fuzz, the pacing GETs and
    # the GET that read the counters afterwards.
    assert delta["snmpInPkts"] == run.total + run.syncs + 1, (delta, run)
    assert delta["snmpInBadVersions"] >= run.sent["badversion"], delta
    assert delta["snmpInBadCommunityNames"] >= run.sent["wrongcommunity"], delta
    undecodable = run.sent["random"] + run.sent["truncated"] + run.sent["hugelength"]
    assert delta["snmpInASNParseErrs"] >= 0.9 * undecodable, (delta, run.sent)
    # SNMP junk is counted by the standard counters; haoscarMalformedPackets is for the
    # heartbeat and AgentX packets, which saw none.
    assert delta["haoscarMalformedPackets"] == 0, delta

    # The agent answers as before, v2c and v3.
    r = agent.v2c("snmpget", f"{R}.1.1.1.0")
    assert r.rc == 0 and "itest" in r.out, r.text
    r = agent.v3("snmpget", f"{R}.1.1.1.0")
    assert r.rc == 0 and "itest" in r.out, r.text
    walk_after = agent.v2c("snmpwalk", R)
    assert walk_after.rc == 0, walk_after.text
    # The same objects, but for the event history's new rows: refused requests are
    # events (rate-limited) since the security area records who and why.
    events = f".{R}.1.9.2."
    names = lambda w: [n for n in (line.split(" = ")[0] for line in w.out.splitlines())  # noqa: E731
                       if not n.startswith(events)]
    assert names(walk_after) == names(walk_before)
