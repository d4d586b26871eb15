"""The Corosync membership source against a real 3-node Corosync + Pacemaker lab.

One lab for the module (about 7 s to start). In each node's namespaces the source runs
as `tests/integration/programs/corosync_watch.py`, which prints every membership it
gives. The tests check that it agrees with `corosync-quorumtool -s` on every node, follows
a cut node out and back, and goes unknown when its Corosync is killed, then recovers after
a restart without crashing. The measured times are printed (pytest -s shows them).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from .corolab import OWNERS, REPO, CoroLab, MembershipWatch as Watch, online, sweep_crashed_labs


def agrees(m: dict[str, Any] | None, q: dict[str, Any]) -> bool:
    """The source's membership says what corosync-quorumtool -s says."""
    if m is None or not q:
        return False
    return (m["quorum"]["quorate"] == q["quorate"] and m["quorum"]["ring_id"] == q["ring_id"]
            and m["quorum"]["expected_votes"] == q["expected_votes"]
            and m["quorum"]["total_votes"] == q["total_votes"] and m["local_node_id"] == q["node_id"]
            and {x["node_id"]: x["name"] for x in m["members"] if x["online"]} == q["members"]
            and {x["node_id"]: x["votes"] for x in m["members"] if x["online"]} == q["votes"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoroLab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with CoroLab(tmp_path_factory.mktemp("corolab")) as lab:
        lab.start(timeout=60)
        print(f"\nlab started: {lab.timings}")
        yield lab
    assert lab.wait_gone(), "namespaces left behind"


@pytest.fixture(scope="module")
def watches(lab: CoroLab) -> dict[str, Watch]:
    watches = {node: Watch(lab, node) for node in lab.nodes}
    CoroLab.wait_for(lambda: all(w.latest() for w in watches.values()), 30, "a first membership everywhere")
    return watches


def test_the_source_agrees_with_corosync_quorumtool_on_every_node(lab: CoroLab, watches: dict[str, Watch]) -> None:
    assert all(lab.dc(node) for node in lab.nodes), "Pacemaker has a DC everywhere"
    for node, watch in watches.items():
        took = CoroLab.wait_for(lambda: agrees(watch.latest(), lab.quorumtool(node)), 15,
                                f"{node}'s source to agree with corosync-quorumtool")
        m = watch.latest()
        assert online(m) == set(lab.nodes) and m["quorum"]["quorate"]
        assert m["quorum"]["token_ms"] == int(lab.cmap(node, "runtime.config.totem.token")
                                              ["runtime.config.totem.token"])
        assert [x["links"] for x in m["members"] if x["node_id"] == m["local_node_id"]] == [[]]
        others = [x for x in m["members"] if x["node_id"] != m["local_node_id"]]
        assert all([link["link"] for link in x["links"]] == [0, 1] for x in others)
        CoroLab.wait_for(lambda: all(link["connected"] for x in (watch.latest() or {"members": []})["members"]
                                     for link in x["links"]), 10, f"{node}: every knet link connected")
        print(f"{node}: agrees with corosync-quorumtool (after {took:.2f} s)")


def test_a_cut_node_leaves_the_others_quorate_and_loses_quorum_itself(lab: CoroLab, watches: dict[str, Watch]) -> None:
    t0 = time.monotonic()
    lab.cut("node3")
    try:
        for node in ("node1", "node2"):
            CoroLab.wait_for(lambda: online(watches[node].latest()) == {"node1", "node2"}, 20,
                             f"{node} to see node3 leave")
            assert watches[node].latest()["quorum"]["quorate"] is True
        CoroLab.wait_for(lambda: (watches["node3"].latest() or {"quorum": {"quorate": True}})["quorum"]["quorate"]
                         is False, 20, "node3 to lose quorum")
        assert online(watches["node3"].latest()) == {"node3"}
        for node in lab.nodes:
            CoroLab.wait_for(lambda: agrees(watches[node].latest(), lab.quorumtool(node)), 15,
                             f"{node}'s source to agree with corosync-quorumtool after the cut")
        seen = {node: watches[node].first_since(t0, lambda m: online(m) == {"node1", "node2"}) - t0
                for node in ("node1", "node2")}
        lost = watches["node3"].first_since(t0, lambda m: m is not None and not m["quorum"]["quorate"]) - t0
        print(f"cut node3: listener saw it leave after {seen['node1']:.2f} s (node1), "
              f"{seen['node2']:.2f} s (node2); node3 lost quorum after {lost:.2f} s")
        link_down = watches["node1"].first_since(
            t0, lambda m: m is not None and not any(link["connected"] for x in m["members"]
                                                      if x["name"] == "node3" for link in x["links"]))
        if link_down is not None:
            print(f"node1 saw both knet links to node3 down after {link_down - t0:.2f} s (1 s poll)")
    finally:
        lab.heal("node3")
    t1 = time.monotonic()
    for node in lab.nodes:
        CoroLab.wait_for(lambda: online(watches[node].latest()) == set(lab.nodes)
                         and watches[node].latest()["quorum"]["quorate"], 30, f"{node} to see node3 back")
    back = max(watches[n].first_since(t1, lambda m: online(m) == set(lab.nodes)) for n in lab.nodes) - t1
    print(f"healed: every source saw all 3 members after {back:.2f} s")


def test_a_killed_corosync_makes_its_source_unknown_then_it_recovers(lab: CoroLab, watches: dict[str, Watch]) -> None:
    t0 = time.monotonic()
    lab.kill_corosync("node2")
    CoroLab.wait_for(lambda: watches["node2"].latest() is None, 10, "node2's source to go unknown")
    unknown = watches["node2"].first_since(t0, lambda m: m is None) - t0
    for node in ("node1", "node3"):
        CoroLab.wait_for(lambda: online(watches[node].latest()) == {"node1", "node3"}, 20,
                         f"{node} to see node2 leave")
        assert watches[node].latest()["quorum"]["quorate"] is True
    t1 = time.monotonic()
    lab.restart("node2")
    CoroLab.wait_for(lambda: online(watches["node2"].latest()) == set(lab.nodes), 30,
                     "node2's source to come back with all members")
    back = watches["node2"].first_since(t1, lambda m: online(m) == set(lab.nodes)) - t1
    after = [line for line in watches["node2"].memberships() if line["t"] >= t0]
    assert [line["membership"] is None for line in after].count(True) == 1, "unknown exactly once"
    assert watches["node2"].proc.poll() is None, "the source process is still running"
    assert "Traceback" not in watches["node2"].errors.read_text()
    CoroLab.wait_for(lambda: agrees(watches["node2"].latest(), lab.quorumtool("node2")), 15,
                     "node2's source to agree with corosync-quorumtool after the restart")
    print(f"kill -9 corosync on node2: unknown after {unknown:.3f} s; restarted: all members after {back:.2f} s")
    CoroLab.wait_for(lambda: all(lab.dc(n) for n in lab.nodes), 30, "a DC everywhere after the restart")


def test_the_lab_places_an_address_resource(lab: CoroLab) -> None:
    lab.add_ip("labip", "10.71.1.100")
    CoroLab.wait_for(lambda: any(lab.run(n, "ip", "-o", "addr", "show", "dev", "lana").stdout.count("10.71.1.100/24")
                                 for n in lab.nodes), 30, "the address resource to start")
    holders = [n for n in lab.nodes if "10.71.1.100/24" in lab.run(n, "ip", "-o", "addr", "show", "dev", "lana").stdout]
    assert len(holders) == 1


def test_a_lab_whose_owner_was_killed_is_swept_by_the_next(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    prefix = f"clx{os.getpid() % 10000}"
    code = ("import sys, time; from pathlib import Path; from tests.scenarios.corolab import CoroLab\n"
            f"lab = CoroLab(Path({str(tmp_path)!r}), prefix={prefix!r}).__enter__()\n"
            "print('built', flush=True); time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "built"
    finally:
        owner.kill()                    # no teardown, no atexit: a crash
        owner.wait(10)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert f"{prefix}-node1" in left and (OWNERS / prefix).exists()
    assert prefix in sweep_crashed_labs()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert prefix not in left and not (OWNERS / prefix).exists()
