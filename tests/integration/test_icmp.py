"""ICMP echo against real addresses: loopback, and two network namespaces made here.

Loopback answers at once (127.0.0.0/8 and ::1, in the test's own namespace). For the
rest the test builds, as root, a poller namespace and a targets namespace joined by a
veth pair:

    poller  p0 10.81.0.1/24 fd81::1/64  ──veth──  t0 10.81.0.2, .3 /24  fd81::2, ::3 /64  targets

  * .2 / ::2 answer;
  * .3 / ::3 are there, but nftables in the targets namespace drops their echo replies;
  * .99 / ::99 are on the LAN but nobody has them: the neighbour lookup fails and the
    poller's kernel reports the host unreachable;
  * 10.82.0.1 / fd82::1 have no route;
  * .5 / ::5: nftables in the poller namespace drops what is sent to them (the send fails,
    except on an IPv6 datagram socket, where the kernel keeps that error to itself).

The prober's sockets are made inside the poller namespace by a short-lived thread that
enters it (setns acts on the calling thread only); everything else of the test stays
where it is. With net.ipv4.ping_group_range at its default ("1 0") the prober falls back
to raw sockets; set to "0 0" there, root may have datagram sockets: both are tested.
The namespaces are deleted when the module's tests end, failed or not, and a leftover of
a crashed run with the same name is removed first.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator

import pytest

from fcaps.fault.lan import icmp, icmpsocket
from fcaps.fault.lan.icmp import Prober
from fcaps.fault.lan.icmpsocket import Opener
from fcaps.fault.lan.sweep import Sweep
from haoscar_snmp.core.bug import BUG_MARKER

from .nsutil import batch, in_namespace, remove, sh

NS = f"hsicmp{os.getpid() % 100000}"
POLLER, TARGETS = f"{NS}-p", f"{NS}-t"
INTERVAL = 0.2

NFT_TARGETS = """
table inet hsicmp {
  chain out {
    type filter hook output priority 0;
    ip saddr 10.81.0.3 icmp type echo-reply drop
    ip6 saddr fd81::3 icmpv6 type echo-reply drop
  }
}
"""
NFT_POLLER = """
table inet hsicmp {
  chain out {
    type filter hook output priority 0;
    ip daddr 10.81.0.5 drop
    ip6 daddr fd81::5 drop
  }
}
"""


def remove_namespaces() -> None:
    remove((POLLER, TARGETS))


def build_namespaces() -> None:
    sh("ip", "netns", "add", POLLER)
    sh("ip", "netns", "add", TARGETS)
    batch(POLLER, ["link set lo up", f"link add p0 type veth peer name t0 netns {TARGETS}",
                   "addr add 10.81.0.1/24 dev p0", "addr add fd81::1/64 dev p0 nodad", "link set p0 up"])
    batch(TARGETS, ["link set lo up", "addr add 10.81.0.2/24 dev t0", "addr add 10.81.0.3/24 dev t0",
                    "addr add fd81::2/64 dev t0 nodad", "addr add fd81::3/64 dev t0 nodad",
                    "link set t0 up"])
    sh("ip", "netns", "exec", TARGETS, "nft", "-f", "-", stdin=NFT_TARGETS)
    sh("ip", "netns", "exec", POLLER, "nft", "-f", "-", stdin=NFT_POLLER)


def opener_in(ns: str) -> Opener:
    """Open the prober's sockets inside namespace `ns`, from a thread that enters it."""
    return lambda version: in_namespace(ns, lambda: icmpsocket.open_socket(version))


@pytest.fixture(scope="module")
def lan() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    remove_namespaces()
    try:
        build_namespaces()
        yield
    finally:
        remove_namespaces()


@pytest.fixture(params=["raw", "datagram"])
def kind(request: pytest.FixtureRequest, lan: None) -> str:
    groups = "1 0" if request.param == "raw" else "0 0"
    sh("ip", "netns", "exec", POLLER, "sysctl", "-qw", f"net.ipv4.ping_group_range={groups}")
    return request.param


def sweep(targets: list[str], check: Callable[[Prober], bool], limit: float,
          opener: Opener = icmpsocket.open_socket, expect_kind: str | None = None) -> Prober:
    """Probe `targets` every INTERVAL until `check` holds or `limit` seconds pass."""
    prober = Prober(timeout=INTERVAL, opener=opener)

    async def main() -> None:
        try:
            await prober.open()
        except PermissionError as exc:
            pytest.skip(f"no ICMP socket for this user: {exc}")
        if expect_kind is not None:
            assert f"IPv4 {expect_kind} socket" in prober.describe()
            assert f"IPv6 {expect_kind} socket" in prober.describe()
        runner = Sweep(prober, INTERVAL, targets)
        runner.start()
        try:
            await until(lambda: check(prober), limit)
        finally:
            runner.stop()
            prober.close()
    asyncio.run(main())
    return prober


async def until(condition: Callable[[], bool], limit: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition() and loop.time() < deadline:
        await asyncio.sleep(0.02)


def count(prober: Prober, address: str, field: str) -> int:
    """One counter of an address, 0 before its first probe."""
    found = prober.stats(address)
    return 0 if found is None else getattr(found, field)


def stats(prober: Prober, address: str) -> icmp.TargetStats:
    found = prober.stats(address)
    assert found is not None, address
    return found


@pytest.fixture(autouse=True)
def no_bug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    assert BUG_MARKER not in caplog.text


# -- loopback --------------------------------------------------------------------------


LOOPBACK = [f"127.0.0.{i}" for i in range(1, 51)] + ["::1"]


def test_loopback_addresses_answer_every_probe() -> None:
    def answered(p: Prober) -> bool:
        return all(count(p, a, "received") >= 3 for a in LOOPBACK)
    prober = sweep(LOOPBACK, answered, limit=5)
    for address in LOOPBACK:
        s = stats(prober, address)
        assert s.received >= 3 and s.errors == 0, s
        assert s.sent - s.received <= 1                     # at most the one in flight
        assert s.last_rtt is not None and s.last_rtt < INTERVAL
    # Not `foreign`: this namespace is shared, and a raw socket sees the host's other ICMP.
    assert prober.counters.duplicates == 0 and prober.counters.send_errors == 0


# -- namespaces --------------------------------------------------------------------------


def test_targets_on_the_lan_answer(kind: str) -> None:
    targets = ["10.81.0.2", "fd81::2"]
    prober = sweep(targets, lambda p: all(count(p, a, "received") >= 3 for a in targets), limit=5,
                   opener=opener_in(POLLER), expect_kind=kind)
    for address in targets:
        s = stats(prober, address)
        assert s.received >= 3 and s.errors == 0 and s.last_rtt is not None, s
    assert prober.counters == icmp.ProberCounters(0, 0, 0, 0, 0)


def test_a_target_whose_replies_are_dropped_stays_unanswered_without_errors(kind: str) -> None:
    targets = ["10.81.0.3", "fd81::3", "10.81.0.2"]
    prober = sweep(targets, lambda p: count(p, "10.81.0.2", "received") >= 4, limit=5,
                   opener=opener_in(POLLER), expect_kind=kind)
    for address in targets[:2]:
        s = stats(prober, address)
        assert s.sent >= 4 and (s.received, s.errors, s.last_reply) == (0, 0, None), s
        assert s.waiting_since is not None


def test_a_missing_host_on_the_lan_is_reported_unreachable(kind: str) -> None:
    targets = ["10.81.0.99", "fd81::99"]
    prober = sweep(targets, lambda p: all(count(p, a, "errors") for a in targets), limit=10,
                   opener=opener_in(POLLER), expect_kind=kind)   # neighbour lookups give up after 3 s
    assert stats(prober, "10.81.0.99").last_error == "host unreachable from 10.81.0.1"
    assert stats(prober, "fd81::99").last_error == "address unreachable from fd81::1"
    for address in targets:
        assert stats(prober, address).received == 0


def test_no_route_and_a_firewall_drop_fail_the_send(kind: str) -> None:
    failing = ["10.82.0.1", "fd82::1", "10.81.0.5"]
    # An IPv6 datagram socket does not hear of the firewall's drop (the kernel does not
    # pass that error up for it): the probe is just never answered.
    silent = ["fd81::5"] if kind == "datagram" else []
    failing += [] if silent else ["fd81::5"]
    def done(p: Prober) -> bool:
        return (all(count(p, a, "errors") >= 2 for a in failing)
                and all(count(p, a, "sent") >= 2 for a in silent))
    prober = sweep(failing + silent, done, limit=5, opener=opener_in(POLLER), expect_kind=kind)
    words = {"10.82.0.1": "network is unreachable", "fd82::1": "network is unreachable",
             "10.81.0.5": "operation not permitted", "fd81::5": "operation not permitted"}
    for address in failing:
        s = stats(prober, address)
        assert s.last_error == f"send: {words[address]}" and s.sent == 0, s
    for address in silent:
        s = stats(prober, address)
        assert s.sent >= 2 and (s.received, s.errors) == (0, 0), s
    assert prober.counters.send_errors >= 2 * len(failing)


def test_two_probers_on_one_host_never_take_each_others_replies(kind: str) -> None:
    async def main() -> tuple[Prober, Prober]:
        first, second = (Prober(timeout=1, opener=opener_in(POLLER)) for _ in range(2))
        await first.open()
        await second.open()
        try:
            for _ in range(20):
                for p in (first, second, second):
                    p.probe("10.81.0.2")
                    p.probe("fd81::2")
                await asyncio.sleep(0.005)
            await until(lambda: all(count(p, a, "received") == count(p, a, "sent")
                                    for p in (first, second) for a in ("10.81.0.2", "fd81::2")), 2)
        finally:
            first.close()
            second.close()
        return first, second
    first, second = asyncio.run(main())
    for prober, sent in ((first, 20), (second, 40)):
        for address in ("10.81.0.2", "fd81::2"):
            assert (stats(prober, address).sent, stats(prober, address).received) == (sent, sent)
        # the kernel keeps the other's replies away: the BPF program on a raw socket, the
        # identifier (= port) on a datagram socket
        assert prober.counters == icmp.ProberCounters(0, 0, 0, 0, 0)
