"""The performance figures as an NMS reads them: real requests from net-snmp's tools,
then the figures they left, read with snmpget, snmpwalk and snmpbulkwalk.

One daemon for every check (a single head: no takeover happens, so the duration rows
show zeroes and the bucket bounds; the figures themselves are the unit tests' job).
"""

from __future__ import annotations

import socket
import time

from .harness import Agent, R
from .test_read import values

PERF = f"{R}.1.12"
REQUESTS = f"{PERF}.24.1"            # haoscarPerfRequestEntry
CONTROL_ACTION = f"{R}.1.3.1.0"


def request_figures(agent: Agent) -> dict[str, int]:
    """haoscarPerfRequestTable's standalone row, as integers."""
    r = agent.v2c("snmpget", *(f"{REQUESTS}.{column}.1" for column in (2, 3, 4, 5, 6)))
    assert r.rc == 0, r.text
    v = values(r.out)
    names = ("served", "dropped", "mean", "recent", "max")
    return {name: int(v[f".{REQUESTS}.{column}.1"].split()[1])
            for name, column in zip(names, (2, 3, 4, 5, 6))}


def wait_for(agent: Agent, done: callable, bound_s: float = 5.0) -> dict[str, int]:  # type: ignore[valid-type]
    """The figures once `done(figures)`; the collector folds the meters in once a second."""
    deadline = time.monotonic() + bound_s
    while True:
        figures = request_figures(agent)
        if done(figures) or time.monotonic() > deadline:
            return figures
        time.sleep(0.3)


def test_requests_durations_and_jobs_are_read_back_after_real_traffic(agent: Agent) -> None:
    before = wait_for(agent, lambda f: f["served"] > 0)
    assert before["served"] > 0 and before["max"] >= before["mean"] > 0

    # Served: a walk of the whole subtree, by GETNEXT and by GETBULK.
    walk = agent.v2c("snmpwalk", R)
    bulk = agent.v2c("snmpbulkwalk", "-Cr20", R)
    assert walk.rc == 0 and bulk.rc == 0, walk.text + bulk.text
    # Dropped: a bad community (no answer at all) and three undecodable datagrams.
    bad = agent.v2c("snmpget", "-t", "0.3", "-r", "0", f"{R}.1.1.1.0", community="not-the-community")
    assert "Timeout" in bad.text, bad.text
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            s.sendto(b"not snmp at all", ("127.0.0.1", agent.port))
    walked = len(walk.out.splitlines())
    after = wait_for(agent, lambda f: f["dropped"] >= before["dropped"] + 4
                     and f["served"] >= before["served"] + walked)
    assert after["dropped"] == before["dropped"] + 4
    assert after["served"] >= before["served"] + walked       # one GETNEXT per object walked
    assert after["recent"] <= after["max"]

    # The durations and their buckets: both kinds, ten buckets each, bounds in order.
    durations = values(agent.v2c("snmpwalk", f"{PERF}.20").out)
    assert {k.rsplit(".", 2)[-2] + "." + k.rsplit(".", 1)[-1] for k in durations} == \
        {f"{column}.{kind}" for column in range(2, 7) for kind in (1, 2)}
    assert all(v.split()[1] == "0" for v in durations.values())   # no takeover on a single head
    uppers = values(agent.v2c("snmpwalk", f"{PERF}.21.1.3.1").out)
    bounds = [int(v.split()[1]) for v in uppers.values()]
    assert len(bounds) == 10 and bounds == sorted(bounds) and bounds[-1] == 4294967295

    # Jobs: every job the scheduler ran has a row, with cycles and a mean duration.
    jobs = values(agent.v2c("snmpbulkwalk", f"{PERF}.23").out)
    cycles = {k: int(v.split()[1]) for k, v in jobs.items() if k.startswith(f".{PERF}.23.1.1.")}
    assert cycles and all(n > 0 for n in cycles.values()), jobs
    names = values(agent.v2c("snmpwalk", f"{PERF}.10.1.2").out)     # haoscarJobName
    assert {k.rsplit(".", 1)[-1] for k in cycles} <= {k.rsplit(".", 1)[-1] for k in names}

    # resetCounters zeroes them: what is counted afterwards is only what came after.
    r = agent.v3("snmpset", CONTROL_ACTION, "i", "4", mib=False)
    assert r.rc == 0, r.text
    reset = wait_for(agent, lambda f: f["served"] < after["served"])
    assert reset["served"] < after["served"] and reset["dropped"] == 0
