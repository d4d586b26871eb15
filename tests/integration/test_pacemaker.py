"""The Pacemaker reader with the real tools, no cluster needed: crm_mon and cibadmin
read saved CIBs (CIB_file), the subprocess bound in time, and this machine's addresses
from the kernel through pyroute2."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from fcaps.fault.cluster.pacemaker import ExecCommands, parse_placement, read_placement
from fcaps.fault.cluster.stale import NetlinkAddresses

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "pacemaker"
STATES = sorted(p.name.removesuffix(".cib.xml") for p in FIXTURES.glob("*.cib.xml") if p.name != "base.cib.xml")


@pytest.fixture(scope="module", autouse=True)
def _pacemaker_tools() -> None:
    missing = [t for t in ("crm_mon", "cibadmin") if shutil.which(t) is None]
    if missing:     # not a skip: scripts/setup installs them
        pytest.fail(f"Pacemaker tools missing: {missing}; run scripts/setup")


def commands(cib: Path) -> ExecCommands:
    return ExecCommands(dict(os.environ, CIB_file=str(cib)))


@pytest.mark.parametrize("state", STATES)
def test_the_real_tools_give_the_fixtures_placement(state: str) -> None:
    cib = FIXTURES / f"{state}.cib.xml"
    got = asyncio.run(read_placement(commands(cib), 30))
    expected = parse_placement((FIXTURES / f"{state}.crm_mon.xml").read_text(), cib.read_text())
    assert got == expected


def test_no_cib_is_unknown(tmp_path: Path) -> None:
    assert asyncio.run(read_placement(commands(tmp_path / "absent.xml"), 30)) is None


def test_a_command_past_its_time_is_killed_and_gives_nothing() -> None:
    async def body() -> tuple[str | None, float]:
        start = time.monotonic()
        out = await ExecCommands().output(["sleep", "30"], 0.3)
        return out, time.monotonic() - start
    out, took = asyncio.run(body())
    assert out is None and took < 10
    assert asyncio.run(ExecCommands().output(["/nonexistent/crm_mon"], 5)) is None
    assert asyncio.run(ExecCommands().output(["false"], 5)) is None


def test_this_machines_addresses_from_the_kernel() -> None:
    async def body() -> dict[str, str]:
        source = NetlinkAddresses()
        try:
            return await source.addresses()
        finally:
            source.close()
    found = asyncio.run(body())
    assert found.get("127.0.0.1") == "lo"
