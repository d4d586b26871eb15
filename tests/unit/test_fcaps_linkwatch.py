"""The link watch on hand-made netlink messages: parsing RTM_NEWLINK / RTM_DELLINK, the
state it keeps, what it reports, dumps, overruns (ENOBUFS) and malformed messages.

A fake netlink socket stands in for the kernel: the test queues datagrams (or an error)
and each makes the socket readable on the real event loop; dump requests the watch
sends are answered from the fake kernel's table of links unless the test answers them
itself."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from fcaps.fault.lan import links as lw
from fcaps.fault.lan import linkstate as ls
from fcaps.fault.lan import netlink as nl
from fcaps.fault.lan.links import LinkWatch
from fcaps.fault.lan.netlink import Malformed, parse_link, split
from haoscar_snmp.core.bug import BUG_MARKER

PORT = 4242
AF_BRIDGE = 7
NLM_F_MULTI = 0x2
NLA_F_NESTED = 0x8000


# -- message builders ----------------------------------------------------------------------


def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


@dataclass(frozen=True)
class Link:
    """One interface as the fake kernel describes it."""

    index: int
    name: str
    up: bool = True
    carrier: bool | None = True     # None: no IFLA_CARRIER attribute
    operstate: int = 6              # IF_OPER_UP
    stats: tuple[int, ...] | None = (10, 20, 1000, 2000, 1, 2, 3, 4)

    @property
    def flags(self) -> int:
        flags = nl.IFF_UP if self.up else 0
        if self.up and self.carrier is not False:
            flags |= nl.IFF_LOWER_UP | 0x40   # IFF_RUNNING
        return flags


def link_message(link: Link, *, kind: int = nl.RTM_NEWLINK, seq: int = 0, port: int = 0,
                 family: int = socket.AF_UNSPEC, msg_flags: int = 0, extra: bytes = b"") -> bytes:
    body = struct.pack("=BxHiII", family, 1, link.index, link.flags, 0)
    # The kernel's order: the name first, many others, the stats late.
    body += attr(nl.IFLA_IFNAME, link.name.encode() + b"\0")
    body += attr(13, struct.pack("=I", 1000))                        # IFLA_TXQLEN
    body += attr(nl.IFLA_OPERSTATE, bytes([link.operstate]))
    body += attr(4, struct.pack("=I", 1500))                          # IFLA_MTU
    if link.carrier is not None:
        body += attr(nl.IFLA_CARRIER, bytes([int(link.carrier)]))
    body += attr(NLA_F_NESTED | 26, attr(2, b"\0" * 8))               # IFLA_AF_SPEC, nested
    if link.stats is not None:
        body += attr(nl.IFLA_STATS64, struct.pack("=8Q", *link.stats) + b"\0" * 120)
    body += extra
    return struct.pack("=IHHII", 16 + len(body), kind, msg_flags, seq, port) + body


def done(seq: int, port: int = PORT, code: int = 0, msg_flags: int = NLM_F_MULTI) -> bytes:
    return struct.pack("=IHHIIi", 20, nl.NLMSG_DONE, msg_flags, seq, port, code)


def error(seq: int, code: int, port: int = PORT) -> bytes:
    request = nl.dump_request(seq)
    return struct.pack("=IHHIIi", 20 + len(request), nl.NLMSG_ERROR, 0, seq, port, -code) + request


# -- the fake kernel -----------------------------------------------------------------------


class FakeNetlink:
    """A netlink socket whose traffic the test scripts. Each queued datagram or error writes
    one byte to a socket pair, so the loop sees the socket readable."""

    def __init__(self, links: list[Link] | None = None) -> None:
        self.kernel: dict[int, Link] = {link.index: link for link in links or []}
        self.answer_dumps = True
        self.per_datagram = 2            # links per dump part
        self.dump_flags = NLM_F_MULTI
        self.requests: list[int] = []    # sequence numbers of the dump requests
        self.polled: list[list[int]] = []   # interface indexes of each carrier poll
        self.closed = False
        self._inbox: deque[bytes | OSError] = deque()
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)

    # what the test does
    def deliver(self, *datagrams: bytes | OSError) -> None:
        for item in datagrams:
            self._inbox.append(item)
            self._waker.send(b"x")

    def event(self, link: Link, kind: int = nl.RTM_NEWLINK, **kwargs: Any) -> None:
        """The kernel changes a link and tells its multicast group."""
        if kind == nl.RTM_DELLINK:
            self.kernel.pop(link.index, None)
        else:
            self.kernel[link.index] = link
        self.deliver(link_message(link, kind=kind, **kwargs))

    def dump_reply(self, seq: int) -> list[bytes]:
        parts = [link_message(link, seq=seq, port=PORT, msg_flags=self.dump_flags)
                 for link in sorted(self.kernel.values(), key=lambda k: k.index)]
        datagrams = [b"".join(parts[i:i + self.per_datagram])
                     for i in range(0, len(parts), self.per_datagram)]
        return datagrams + [done(seq, msg_flags=self.dump_flags)]

    @property
    def pending(self) -> int:
        return len(self._inbox)

    # what the watch does
    def fileno(self) -> int:
        return self._wake.fileno()

    def getsockname(self) -> tuple[int, int]:
        return (PORT, nl.RTMGRP_LINK)

    def send(self, data: bytes) -> int:
        messages = list(split(data))
        kind, flags, seq = messages[0][:3]
        assert kind == nl.RTM_GETLINK
        if flags == nl.NLM_F_REQUEST | nl.NLM_F_DUMP:
            assert len(messages) == 1
            self.requests.append(seq)
            if self.answer_dumps:
                self.deliver(*self.dump_reply(seq))
            return len(data)
        assert flags == nl.NLM_F_REQUEST   # one link each: answered one datagram per request
        indexes = [struct.unpack_from("=i", data, start + 20)[0] for *_, start, _end in messages]
        self.polled.append(indexes)
        for index in indexes:
            link = self.kernel.get(index)
            if link is None:
                self.deliver(error(seq, errno.ENODEV))
            else:
                self.deliver(link_message(replace(link, stats=None), seq=seq, port=PORT))
        return len(data)

    def recv(self, size: int) -> bytes:
        if not self._inbox:
            raise BlockingIOError(errno.EAGAIN, "empty")
        self._wake.recv(1)
        item = self._inbox.popleft()
        if isinstance(item, OSError):
            raise item
        return item

    def close(self) -> None:
        self.closed = True
        self._wake.close()
        self._waker.close()


class Rig:
    def __init__(self, names: list[str], links: list[Link], **kwargs: Any) -> None:
        self.nl = FakeNetlink(links)
        self.changes: list[tuple[str, bool, bool]] = []
        self.presence: list[tuple[str, bool]] = []
        kwargs.setdefault("carrier_poll", 0)
        self.watch = LinkWatch(names, lambda *a: self.changes.append(a),
                               on_presence=lambda *a: self.presence.append(a),
                               opener=lambda: self.nl, **kwargs)  # type: ignore[arg-type,return-value]

    async def settle(self) -> None:
        """Let the loop read everything queued (and what that brings)."""
        for _ in range(200):
            await asyncio.sleep(0)
            if not self.nl.pending:
                await asyncio.sleep(0)
                if not self.nl.pending:
                    return
        raise AssertionError("the fake socket never drained")


def run(names: list[str], links: list[Link], body: Callable[[Rig], Awaitable[None]],
        **kwargs: Any) -> Rig:
    rig = Rig(names, links, **kwargs)

    async def main() -> None:
        await rig.watch.open()
        try:
            await body(rig)
        finally:
            rig.watch.close()
    asyncio.run(main())
    return rig


LAN0, LAN1, OTHER = Link(2, "lan0"), Link(3, "lan1"), Link(4, "eth9")


# -- parsing -------------------------------------------------------------------------------


def test_a_new_link_message_gives_its_name_flags_carrier_operstate_and_64_bit_counters() -> None:
    big = (2**40, 2**33, 2**50, 2**51, 5, 6, 7, 8)
    data = link_message(Link(7, "eth0", stats=big))
    msg = parse_link(data, 0, len(data))
    assert msg is not None
    assert (msg.deleted, msg.ifindex, msg.name, msg.admin_up, msg.has_carrier) == (False, 7, "eth0", True, True)
    assert msg.operstate_name == "up" and msg.stats == big
    counters = lw.LinkCounters.of(msg)
    assert (counters.rx_packets, counters.tx_packets, counters.rx_errors, counters.tx_errors,
            counters.rx_dropped, counters.tx_dropped, counters.rx_bytes, counters.tx_bytes) == \
        (2**40, 2**33, 5, 6, 7, 8, 2**50, 2**51)
    assert (counters.carrier, counters.admin_up, counters.ifindex) == (True, True, 7)


def test_carrier_is_from_ifla_carrier_and_none_while_administratively_down() -> None:
    def parsed(link: Link) -> nl.LinkMessage:
        data = link_message(link)
        msg = parse_link(data, 0, len(data))
        assert msg is not None
        return msg
    lost = parsed(Link(1, "a", carrier=False, operstate=2))
    assert (lost.has_carrier, lost.admin_up, lost.operstate_name) == (False, True, "down")
    # A down dummy keeps its carrier bit set: it means nothing then.
    down = parsed(replace(Link(1, "a"), up=False))
    assert down.carrier == 1 and down.has_carrier is None and not down.admin_up
    # Without IFLA_CARRIER (very old kernels): IFF_LOWER_UP.
    assert parsed(Link(1, "a", carrier=None)).has_carrier is True
    assert parsed(Link(1, "a", operstate=42)).operstate_name == "unknown"


def test_a_deleted_link_and_what_is_not_wanted() -> None:
    data = link_message(LAN0, kind=nl.RTM_DELLINK)
    msg = parse_link(data, 0, len(data))
    assert msg is not None and msg.deleted and msg.name == "lan0"
    assert parse_link(data, 0, len(data), lambda name, index: name == "other") is None
    bridge = link_message(LAN0, family=AF_BRIDGE)
    assert parse_link(bridge, 0, len(bridge)) is None


@pytest.mark.parametrize("cut, why", [
    (lambda d: d[:16 + 10], "short ifinfomsg"),
    (lambda d: d[:-3], "attribute cut"),
    (lambda d: d[:32] + struct.pack("=HH", 2, 3) + d[36:], "attribute shorter than its header"),
    (lambda d: d[:32] + struct.pack("=HH", 4000, 3) + d[36:], "attribute beyond the message"),
])
def test_malformed_link_messages_raise(cut: Callable[[bytes], bytes], why: str) -> None:
    data = cut(link_message(LAN0))
    with pytest.raises(Malformed):
        parse_link(data, 0, len(data))


def test_short_counters_and_empty_byte_attributes_are_malformed() -> None:
    for bad in (attr(nl.IFLA_STATS64, b"\0" * 40), attr(nl.IFLA_CARRIER, b"")):
        body = struct.pack("=BxHiII", 0, 1, 5, 1, 0) + attr(nl.IFLA_IFNAME, b"x\0") + bad
        data = struct.pack("=IHHII", 16 + len(body), nl.RTM_NEWLINK, 0, 0, 0) + body
        with pytest.raises(Malformed):
            parse_link(data, 0, len(data))


def test_split_walks_the_messages_of_a_datagram_and_stops_at_a_bad_header() -> None:
    two = link_message(LAN0) + link_message(LAN1)
    assert [(k, e - s) for k, _f, _q, _p, s, e in split(two)] == [(nl.RTM_NEWLINK, len(link_message(LAN0)))] * 2
    with pytest.raises(Malformed):
        list(split(two + b"\1\2\3"))
    bad = link_message(LAN0) + struct.pack("=IHHII", 9999, nl.RTM_NEWLINK, 0, 0, 0)
    walked = split(bad)
    assert next(walked)[0] == nl.RTM_NEWLINK
    with pytest.raises(Malformed):
        next(walked)


def test_the_dump_request() -> None:
    data = nl.dump_request(77)
    assert struct.unpack_from("=IHHII", data) == (32, nl.RTM_GETLINK, 0x301, 77, 0)
    assert len(data) == 32


def test_the_carrier_poll_request_asks_for_each_link_without_counters() -> None:
    data = nl.link_requests(5, [3, 9])
    parts = list(split(data))
    assert [(k, f, q) for k, f, q, *_ in parts] == [(nl.RTM_GETLINK, nl.NLM_F_REQUEST, 5)] * 2
    for (*_, start, _end), index in zip(parts, [3, 9]):
        assert struct.unpack_from("=BxHiII", data, start + 16) == (0, 0, index, 0, 0)
        assert struct.unpack_from("=HHI", data, start + 32) == (8, nl.IFLA_EXT_MASK, nl.RTEXT_FILTER_SKIP_STATS)


# -- the watch -----------------------------------------------------------------------------


def test_open_takes_the_first_state_silently_and_knows_what_is_absent() -> None:
    async def body(rig: Rig) -> None:
        links = rig.watch.links()
        assert set(links) == {"lan0", "lan1"}
        assert links["lan0"] == ls.LinkState(2, True, True, "up")
        assert links["lan1"].carrier is False
        assert rig.watch.absent() == ["gone0"]
        assert "lan1 no carrier" in rig.watch.describe() and "gone0 absent" in rig.watch.describe()
    rig = run(["lan0", "lan1", "gone0"], [LAN0, replace(LAN1, carrier=False), OTHER], body)
    assert rig.changes == [] and rig.presence == []
    assert rig.nl.closed


def test_carrier_and_admin_changes_are_told_once_each() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.event(replace(LAN0, carrier=False, operstate=2))
        rig.nl.event(replace(LAN0, carrier=False, operstate=2))   # the same again: nothing
        rig.nl.event(replace(LAN0, carrier=False, up=False))
        rig.nl.event(LAN0)
        rig.nl.event(replace(OTHER, carrier=False))                 # not watched
        await rig.settle()
        assert rig.watch.links()["lan0"].usable
    rig = run(["lan0"], [LAN0, OTHER], body)
    assert rig.changes == [("lan0", False, True), ("lan0", False, False), ("lan0", True, True)]
    assert rig.watch.stats.changes == 3


def test_counters_come_from_one_dump_for_the_watched_interfaces_that_exist() -> None:
    async def body(rig: Rig) -> None:
        before = len(rig.nl.requests)
        rig.nl.kernel[2] = replace(LAN0, stats=(11, 21, 1100, 2100, 1, 2, 3, 4))
        first, second = await asyncio.gather(rig.watch.counters(), rig.watch.counters())
        assert len(rig.nl.requests) == before + 1        # the second shares the first's dump
        assert first == second and set(first) == {"lan0", "lan1"}
        assert first["lan0"].rx_packets == 11 and first["lan0"].carrier is True
        assert first["lan1"].carrier is None and not first["lan1"].admin_up   # down
    run(["lan0", "lan1", "nosuch"], [LAN0, replace(LAN1, up=False), OTHER], body)


def test_a_link_without_counters_is_left_out_of_them_but_its_state_is_kept() -> None:
    async def body(rig: Rig) -> None:
        assert await rig.watch.counters() == {}
        assert "lan0" in rig.watch.links()
    run(["lan0"], [replace(LAN0, stats=None)], body)


def test_deleted_and_created_interfaces_are_told() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.event(LAN0, kind=nl.RTM_DELLINK)
        await rig.settle()
        assert "lan0" not in rig.watch.links() and rig.watch.absent() == ["lan0", "lan1"]
        rig.nl.event(Link(9, "lan1", up=False))           # created, still down
        rig.nl.event(Link(9, "lan1"))                     # brought up
        await rig.settle()
    rig = run(["lan0", "lan1"], [LAN0], body)
    assert rig.presence == [("lan0", False), ("lan1", True)]
    assert rig.changes == [("lan0", False, False), ("lan1", True, True)]


def test_a_rename_is_the_old_name_gone_and_the_new_one_come() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.event(replace(LAN0, name="old0", up=False))    # lan0 renamed away
        rig.nl.event(replace(OTHER, name="lan1", up=False))   # eth9 renamed to lan1
        await rig.settle()
        assert set(rig.watch.links()) == {"lan1"} and rig.watch.links()["lan1"].ifindex == 4
        rig.nl.event(replace(OTHER, name="lan1"))
        await rig.settle()
    rig = run(["lan0", "lan1"], [LAN0, OTHER], body)
    assert rig.presence == [("lan0", False), ("lan1", True)]
    assert rig.changes == [("lan0", False, False), ("lan1", True, True)]


def test_bridge_port_notices_are_not_about_the_link() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.deliver(link_message(LAN0, kind=nl.RTM_DELLINK, family=AF_BRIDGE))
        await rig.settle()
        assert "lan0" in rig.watch.links()
    rig = run(["lan0"], [LAN0], body)
    assert rig.changes == [] and rig.presence == []


def test_an_overrun_is_counted_and_a_dump_resynchronises() -> None:
    async def body(rig: Rig) -> None:
        before = len(rig.nl.requests)
        # Events lost: lan0 lost its carrier, lan1 was deleted; the kernel says ENOBUFS.
        rig.nl.kernel[2] = replace(LAN0, carrier=False)
        del rig.nl.kernel[3]
        rig.nl.deliver(OSError(errno.ENOBUFS, "No buffer space available"))
        await rig.settle()
        assert len(rig.nl.requests) == before + 1
    rig = run(["lan0", "lan1"], [LAN0, LAN1], body)
    assert (rig.watch.stats.overruns, rig.watch.stats.resyncs) == (1, 1)
    assert rig.changes == [("lan0", False, True), ("lan1", False, False)]
    assert rig.presence == [("lan1", False)]


def test_an_overrun_during_a_dump_asks_for_one_more_after_it() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.answer_dumps = False
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        first = rig.nl.requests[-1]
        reply = rig.nl.dump_reply(first)
        rig.nl.deliver(reply[0])                            # part of the dump, made before...
        rig.nl.kernel[2] = replace(LAN0, carrier=False)     # ...lan0's change, whose event is lost
        rig.nl.deliver(OSError(errno.ENOBUFS, "lost"), *reply[1:])
        await rig.settle()
        assert (await counting)["lan0"].carrier is True    # the dump as it was made
        second = rig.nl.requests[-1]
        assert second != first
        rig.nl.deliver(*rig.nl.dump_reply(second))
        await rig.settle()
    rig = run(["lan0"], [LAN0], body)
    assert rig.changes == [("lan0", False, True)]
    assert rig.watch.stats.overruns == 1


def test_a_dump_part_older_than_an_event_does_not_undo_it() -> None:
    """Parts and events come in the kernel's order on one socket: an event queued after a
    part is newer, and one queued before it is already in the part."""
    async def body(rig: Rig) -> None:
        rig.nl.answer_dumps = False
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        reply = rig.nl.dump_reply(rig.nl.requests[-1])
        rig.nl.deliver(reply[0])                                        # lan0 up
        rig.nl.event(replace(LAN0, carrier=False))                      # then it lost carrier
        # lan1 renamed to lan2 after its part was made (lan2 is in no part at all):
        rig.nl.event(replace(LAN1, name="lan2"))
        rig.nl.deliver(*reply[1:])
        await counting
    rig = run(["lan0", "lan2"], [LAN0, Link(5, "x"), LAN1], body)
    assert rig.changes == [("lan0", False, True), ("lan2", True, True)]
    assert set(rig.watch.links()) == {"lan0", "lan2"}


def test_malformed_datagrams_are_counted_and_dropped_and_the_watch_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body(rig: Rig) -> None:
        good = link_message(replace(LAN0, carrier=False))
        rig.nl.deliver(good + b"\0" * 7)                          # the message before stands
        rig.nl.deliver(link_message(LAN1)[:-5])                   # length beyond the datagram
        truncated = bytearray(link_message(LAN1))
        struct.pack_into("=H", truncated, 32, 2)                  # attribute length 2
        rig.nl.deliver(bytes(truncated))
        rig.nl.event(LAN0)
        await rig.settle()
    with caplog.at_level(logging.WARNING):
        rig = run(["lan0", "lan1"], [LAN0, LAN1], body)
    assert rig.watch.stats.malformed == 3
    assert rig.changes == [("lan0", False, True), ("lan0", True, True)]
    assert BUG_MARKER not in caplog.text


def test_a_failing_callback_is_a_bug_logged_and_the_watch_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, bool, bool]] = []

    def on_change(name: str, carrier: bool, admin_up: bool) -> None:
        calls.append((name, carrier, admin_up))
        raise RuntimeError("consumer bug")
    nl = FakeNetlink([LAN0])
    watch = LinkWatch(["lan0"], on_change, opener=lambda: nl)  # type: ignore[arg-type,return-value]

    async def main() -> None:
        await watch.open()
        nl.event(replace(LAN0, carrier=False))
        nl.event(LAN0)
        for _ in range(10):
            await asyncio.sleep(0)
        watch.close()
    with caplog.at_level(logging.ERROR):
        asyncio.run(main())
    assert calls == [("lan0", False, True), ("lan0", True, True)]
    assert caplog.text.count(BUG_MARKER) == 2


def test_a_refused_dump_fails_counters_and_is_counted() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.answer_dumps = False
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        rig.nl.deliver(error(rig.nl.requests[-1], errno.EBUSY))
        with pytest.raises(OSError) as raised:
            await counting
        assert raised.value.errno == errno.EBUSY
        # An error in the dump's end (NLMSG_DONE with a negative code) too.
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        rig.nl.deliver(done(rig.nl.requests[-1], code=-errno.EINTR))
        with pytest.raises(OSError):
            await counting
        rig.nl.answer_dumps = True
        assert "lan0" in await rig.watch.counters()     # and the next one works
    rig = run(["lan0"], [LAN0], body)
    assert rig.watch.stats.dump_failures == 2


def test_a_dump_without_an_end_times_out_and_its_late_parts_are_still_events() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.answer_dumps = False
        with pytest.raises(OSError) as raised:
            await rig.watch.counters()
        assert raised.value.errno == errno.ETIMEDOUT
        late = rig.nl.requests[-1]
        rig.nl.kernel[2] = replace(LAN0, carrier=False)
        rig.nl.deliver(*rig.nl.dump_reply(late))
        await rig.settle()
        assert rig.watch.links()["lan0"].carrier is False
    rig = run(["lan0"], [LAN0], body, dump_timeout=0.05)
    assert rig.watch.stats.dump_failures == 1
    assert rig.changes == [("lan0", False, True)]


def test_an_event_carrying_the_dumps_sequence_from_another_sender_is_not_a_dump_part() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.answer_dumps = False
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        seq = rig.nl.requests[-1]
        rig.nl.deliver(link_message(LAN0, seq=seq, port=999), done(seq))
        assert await counting == {}
    run(["lan0"], [LAN0], body)


def test_an_interrupted_dump_judges_no_absence_and_asks_again() -> None:
    async def body(rig: Rig) -> None:
        before = len(rig.nl.requests)
        del rig.nl.kernel[3]
        rig.nl.dump_flags = NLM_F_MULTI | nl.NLM_F_DUMP_INTR
        rig.nl.answer_dumps = False
        counting = asyncio.ensure_future(rig.watch.counters())
        await rig.settle()
        rig.nl.deliver(*rig.nl.dump_reply(rig.nl.requests[-1]))
        await counting
        await rig.settle()
        assert "lan1" in rig.watch.links() and len(rig.nl.requests) == before + 2
        rig.nl.dump_flags = NLM_F_MULTI
        rig.nl.deliver(*rig.nl.dump_reply(rig.nl.requests[-1]))
        await rig.settle()
        assert "lan1" not in rig.watch.links()
    rig = run(["lan0", "lan1"], [LAN0, LAN1], body)
    assert rig.watch.stats.interrupted == 1
    assert rig.changes == [("lan1", False, False)]


def test_set_names_is_a_diff() -> None:
    async def body(rig: Rig) -> None:
        rig.nl.event(replace(LAN0, carrier=False))
        await rig.settle()
        said = rig.watch.set_names(["lan0", "eth9", "nosuch"])
        assert said == "link watch: now watching eth9, nosuch; no longer watching lan1"
        assert "eth9 unknown yet" in rig.watch.describe()
        await rig.settle()
        links = rig.watch.links()
        assert set(links) == {"lan0", "eth9"} and links["lan0"].carrier is False   # kept
        assert rig.watch.absent() == ["nosuch"]
        rig.nl.event(replace(LAN1, carrier=False))      # no longer watched: nothing
        rig.nl.event(replace(OTHER, carrier=False))
        await rig.settle()
        assert rig.watch.set_names(["lan0", "eth9", "nosuch"]) == "link watch unchanged (3 interfaces)"
    rig = run(["lan0", "lan1"], [LAN0, LAN1, OTHER], body)
    assert rig.changes == [("lan0", False, True), ("eth9", False, True)]
    assert rig.presence == []


def test_the_reader_stops_after_its_budget() -> None:
    async def body(rig: Rig) -> None:
        for i in range(lw.READ_BUDGET + 5):
            rig.nl.event(replace(LAN0, carrier=bool(i % 2)))
        rig.watch._readable()   # one reader call, as the loop makes it
        assert rig.nl.pending == 5
        await rig.settle()
    rig = run(["lan0"], [LAN0], body)
    assert len(rig.changes) == lw.READ_BUDGET + 5


def test_counters_need_an_open_watch_and_open_fails_if_the_first_dump_does() -> None:
    watch = LinkWatch(["lan0"], lambda *a: None)
    with pytest.raises(OSError):
        asyncio.run(watch.counters())
    nl = FakeNetlink([LAN0])
    nl.answer_dumps = False
    watch = LinkWatch(["lan0"], lambda *a: None, opener=lambda: nl, dump_timeout=0.02)  # type: ignore[arg-type,return-value]
    with pytest.raises(OSError):
        asyncio.run(watch.open())
    assert nl.closed and "closed" in watch.describe()


def test_the_carrier_poll_sees_a_carrier_the_kernel_has_not_told_yet() -> None:
    """The kernel may hold a NIC's carrier-loss event for up to a second; its carrier bit,
    which a link request reads, changes at once."""
    async def body(rig: Rig) -> None:
        await asyncio.sleep(0.05)
        assert rig.nl.polled and all(sorted(p) == [2, 3] for p in rig.nl.polled)
        rig.nl.kernel[2] = replace(LAN0, carrier=False)      # no event
        del rig.nl.kernel[3]                                  # gone, no event: ENODEV
        await asyncio.sleep(0.05)
        await rig.settle()
        assert rig.watch.links() == {"lan0": ls.LinkState(2, True, False, "up")}  # lan1: a dump said
        # Only links with a carrier are polled (only a loss can be held back): none now.
        polls = rig.watch.stats.polls
        await asyncio.sleep(0.03)
        assert rig.watch.stats.polls == polls
        rig.nl.event(LAN0)
        await asyncio.sleep(0.03)
        assert rig.watch.stats.polls > polls and rig.nl.polled[-1] == [2]
    rig = run(["lan0", "lan1"], [LAN0, LAN1], body, carrier_poll=0.005)
    assert sorted(rig.changes[:2]) == [("lan0", False, True), ("lan1", False, False)]
    assert rig.changes[2:] == [("lan0", True, True)]
    assert rig.watch.stats.polls >= 2 and rig.watch.stats.malformed == 0
