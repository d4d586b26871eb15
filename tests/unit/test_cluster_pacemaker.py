"""Pacemaker's placement: crm_mon's XML parsed from fixtures made by crm_simulate
(tests/unit/pacemaker/generate), and the refreshes on demand, on the timer, coalesced."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable, Sequence

import pytest
from fakes import FakeClock

from fcaps.fault.cluster.model import Placement, PlacedNode, Resource
from fcaps.fault.cluster.pacemaker import (
    CIB_RESOURCES,
    CRM_MON,
    CrmMonError,
    PacemakerSource,
    address_params,
    parse_placement,
    read_placement,
)

HERE = Path(__file__).parent / "pacemaker"


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 5.0))


def placement(name: str) -> Placement:
    cib = HERE / f"{name}.cib.xml"
    return parse_placement((HERE / f"{name}.crm_mon.xml").read_text(),
                           cib.read_text() if cib.exists() else "")


def node(p: Placement, name: str) -> PlacedNode:
    return next(n for n in p.nodes if n.name == name)


def res(p: Placement, rid: str) -> Resource:
    return next(r for r in p.resources if r.resource_id == rid)


def test_three_nodes_running_everything() -> None:
    p = placement("running")
    assert p.dc == "node1"
    assert [(n.name, n.node_id, n.online, n.dc) for n in p.nodes] == [
        ("node1", 1, True, True), ("node2", 2, True, False), ("node3", 3, True, False)]
    assert res(p, "vip") == Resource("vip", "ocf:heartbeat:IPaddr2", "Started", "node1", False, 0, "ok",
                                     "192.0.2.10")
    assert res(p, "web").node == "node2" and res(p, "web").address == ""


def test_a_group_is_flattened_to_its_primitives() -> None:
    p = placement("running")
    assert (res(p, "vip2").node, res(p, "db").node) == ("node3", "node3")
    assert res(p, "vip2").address == "2001:db8::20"
    assert res(p, "db").agent == "systemd:postgresql"


def test_a_clones_instances_are_named_after_their_nodes() -> None:
    p = placement("running")
    assert [r.resource_id for r in p.resources if r.resource_id.startswith("ping")] == [
        "ping:node1", "ping:node2", "ping:node3"]
    assert [(r.resource_id, r.role) for r in p.resources if r.resource_id.startswith("state")] == [
        ("state:node1", "Promoted"), ("state:node2", "Unpromoted"), ("state:node3", "Unpromoted")]


def test_resources_are_sorted_and_unique() -> None:
    ids = [r.resource_id for r in placement("running").resources]
    assert ids == sorted(set(ids))


def test_an_offline_node_has_no_resources_and_its_clone_instances_go() -> None:
    p = placement("offline")
    assert not node(p, "node3").online and not node(p, "node3").unclean
    assert [r.resource_id for r in p.resources if r.node == "node3"] == []
    assert (res(p, "vip2").node, res(p, "db").node) == ("node1", "node1")
    assert "ping:node3" not in {r.resource_id for r in p.resources}
    assert "ping" not in {r.resource_id for r in p.resources}   # other instances run


def test_a_stopped_resource() -> None:
    idle = res(placement("running"), "idle")
    assert (idle.role, idle.node, idle.failed, idle.fail_count) == ("Stopped", "", False, 0)


def test_standby_moves_the_address_away() -> None:
    p = placement("standby")
    assert node(p, "node1").standby and node(p, "node1").online
    assert res(p, "vip").node == "node2"
    assert [r.resource_id for r in p.resources if r.node == "node1"] == []


def test_unclean() -> None:
    p = placement("unclean")
    n2 = node(p, "node2")
    assert (n2.online, n2.unclean) == (False, True)
    assert res(p, "web").node == "node2"         # still there as far as Pacemaker knows


def test_maintenance() -> None:
    p = placement("maintenance")
    assert node(p, "node3").maintenance and not node(p, "node1").maintenance


def test_a_recovered_failure_keeps_its_fail_count() -> None:
    web = res(placement("webfail"), "web")
    assert (web.failed, web.fail_count, web.last_result, web.node) == (False, 1, "ok", "node2")


def test_a_failed_resource() -> None:
    web = res(placement("webstuck"), "web")
    assert (web.failed, web.fail_count, web.last_result) == (True, 2, "error")


def test_no_resource_configured_is_an_empty_placement() -> None:
    p = placement("empty")
    assert p.resources == () and [n.online for n in p.nodes] == [True, True, True] and p.dc == "node1"


def test_crm_mons_error_document_is_refused() -> None:
    with pytest.raises(CrmMonError, match="Could not connect to the CIB"):
        placement("error")


@pytest.mark.parametrize("text", ["", "<html/>", "<pacemaker-result><status code='102' message='Not connected'/>"
                                  "</pacemaker-result>", "not xml <"])
def test_other_documents_are_refused(text: str) -> None:
    with pytest.raises(CrmMonError):
        parse_placement(text)


def test_address_params_from_a_template_and_the_primitives_own() -> None:
    xml = """<resources>
      <template id="t" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="t-ia"><nvpair id="t-ip" name="ip" value="192.0.2.1"/></instance_attributes>
      </template>
      <primitive id="a" template="t"/>
      <primitive id="b" template="t">
        <instance_attributes id="b-ia"><nvpair id="b-ip" name="ip" value="192.0.2.2"/></instance_attributes>
      </primitive>
      <primitive id="c" class="ocf" provider="pacemaker" type="Dummy">
        <instance_attributes id="c-ia"><nvpair id="c-ip" name="ip" value="192.0.2.3"/></instance_attributes>
      </primitive>
    </resources>"""
    assert address_params(xml) == {"a": "192.0.2.1", "b": "192.0.2.2"}


class FakeCommands:
    """Answers crm_mon and cibadmin from files; each answer may wait on an event."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.calls: list[tuple[str, ...]] = []
        self.gate: asyncio.Event | None = None

    async def output(self, argv: Sequence[str], timeout: float) -> str | None:
        self.calls.append(tuple(argv))
        if self.gate is not None:
            await self.gate.wait()
        if self.name is None:
            return None
        if tuple(argv) == CRM_MON:
            return (HERE / f"{self.name}.crm_mon.xml").read_text()
        assert tuple(argv) == CIB_RESOURCES
        return (HERE / f"{self.name}.cib.xml").read_text()


def test_a_read_gives_the_placement_or_none() -> None:
    run(_test_a_read_gives_the_placement_or_none)


async def _test_a_read_gives_the_placement_or_none() -> None:
    assert await read_placement(FakeCommands("running"), 5) == placement("running")
    assert await read_placement(FakeCommands(None), 5) is None
    assert await read_placement(_OnlyMon("error"), 5) is None


class _OnlyMon(FakeCommands):
    async def output(self, argv: Sequence[str], timeout: float) -> str | None:
        return (HERE / f"{self.name}.crm_mon.xml").read_text() if tuple(argv) == CRM_MON else None


def test_without_the_cib_the_placement_has_no_addresses() -> None:
    run(_test_without_the_cib_the_placement_has_no_addresses)


async def _test_without_the_cib_the_placement_has_no_addresses() -> None:
    p = await read_placement(_OnlyMon("running"), 5)
    assert p is not None and res(p, "vip").address == "" and res(p, "vip").node == "node1"


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_refreshes_coalesce_while_one_runs() -> None:
    run(_test_refreshes_coalesce_while_one_runs)


async def _test_refreshes_coalesce_while_one_runs() -> None:
    clock, got = FakeClock(), []
    commands = FakeCommands("running")
    commands.gate = asyncio.Event()
    source = PacemakerSource(got.append, clock, commands, interval=30)
    source.start()
    for _ in range(5):
        source.refresh()
    await settle()
    assert source.reads == 1 and got == []
    commands.gate.set()
    await settle()
    assert source.reads == 2 and got == [placement("running")] * 2
    await source.stop()


def test_the_slow_timer_reads_again_on_the_injected_clock() -> None:
    run(_test_the_slow_timer_reads_again_on_the_injected_clock)


async def _test_the_slow_timer_reads_again_on_the_injected_clock() -> None:
    clock, got = FakeClock(), []
    source = PacemakerSource(got.append, clock, FakeCommands("running"), interval=30)
    source.start()
    await settle()
    clock.advance(29)
    await settle()
    assert source.reads == 1
    clock.advance(1)
    await settle()
    assert source.reads == 2 and len(got) == 2
    source.refresh()                    # on demand: the timer starts over
    await settle()
    clock.advance(29)
    await settle()
    assert source.reads == 3
    await source.stop()
    clock.advance(100)
    await settle()
    assert source.reads == 3


def test_an_unreadable_pacemaker_is_delivered_as_unknown() -> None:
    run(_test_an_unreadable_pacemaker_is_delivered_as_unknown)


async def _test_an_unreadable_pacemaker_is_delivered_as_unknown() -> None:
    got: list[Placement | None] = []
    source = PacemakerSource(got.append, FakeClock(), FakeCommands(None))
    source.start()
    await settle()
    assert got == [None]
    await source.stop()
