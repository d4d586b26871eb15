"""fcaps.fault.lan.icmp, icmppacket, icmpsocket and sweep: echo requests and replies on fake
sockets and a fake clock.

The fake socket has a real file descriptor (one end of a socket pair) so the event loop's
reader runs as in the daemon; what it "receives" is scripted by the test, and the packets
are built here by reference code written apart from the module's (a plain checksum loop,
the IP headers by hand). Real sockets, loopback and namespaces are in
tests/integration/test_icmp.py.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fakes import FakeClock

from fcaps.fault.lan import icmp, icmppacket, icmpsocket
from fcaps.fault.lan.icmp import Prober
from fcaps.fault.lan.sweep import Sweep, batches

US4, US6 = "10.0.0.1", "fd00::1"


# -- reference packets -------------------------------------------------------------------


def ref_checksum(data: bytes) -> int:
    """RFC 1071, the slow and obvious way."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def message(kind: int, ident: int, seq: int, payload: bytes, code: int = 0) -> bytes:
    """An ICMP message with identifier and sequence fields and a correct checksum."""
    body = struct.pack("!BBHHH", kind, code, 0, ident, seq) + payload
    return body[:2] + struct.pack("!H", ref_checksum(body)) + body[4:]


def icmp_error(kind: int, code: int, quoted: bytes) -> bytes:
    """An ICMP error message quoting (part of) a packet, with a correct checksum."""
    body = struct.pack("!BBHI", kind, code, 0, 0) + quoted
    return body[:2] + struct.pack("!H", ref_checksum(body)) + body[4:]


def ipv4(src: str, dst: str, body: bytes, proto: int = 1) -> bytes:
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0)
            + socket.inet_aton(src) + socket.inet_aton(dst) + body)


def ipv6(src: str, dst: str, body: bytes, next_header: int = 58) -> bytes:
    return (struct.pack("!IHBB", 6 << 28, len(body), next_header, 64)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + body)


def fields(request: bytes) -> tuple[int, int, int, bytes]:
    """type, identifier, sequence, payload of a request the prober sent."""
    kind, _code, _sum, ident, seq = struct.unpack_from("!BBHHH", request)
    return kind, ident, seq, request[8:]


def answer(request: bytes, version: int = 4, ip_header: bool = True, src: str = "10.0.0.2") -> bytes:
    """What a host answers to `request` (as a raw IPv4 socket sees it, by default)."""
    _kind, ident, seq, payload = fields(request)
    reply = message(0 if version == 4 else 129, ident, seq, payload)
    return ipv4(src, US4, reply) if version == 4 and ip_header else reply


# -- fakes -------------------------------------------------------------------------------


class FakeSocket:
    """An ICMP socket whose traffic the test scripts. Each queued packet, error or
    error-queue entry writes one byte to a socket pair, so the loop sees it as readable."""

    def __init__(self, version: int, port: int = 40000) -> None:
        self.version = version
        self.port = port
        self.options: list[tuple[int, int, Any]] = []
        self.bound: Any = None
        self.sent: list[tuple[bytes, Any]] = []
        self.send_error: OSError | None = None
        self.closed = False
        self._inbox: deque[tuple[bytes, Any] | OSError] = deque()
        self._errors: deque[tuple[bytes, list[tuple[int, int, bytes]], Any]] = deque()
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)

    # what the test does
    def deliver(self, data: bytes, source: str) -> None:
        self._inbox.append((data, (source, 0) if self.version == 4 else (source, 0, 0, 0)))
        self._waker.send(b"x")

    def fail_read(self, error: OSError) -> None:
        self._inbox.append(error)
        self._waker.send(b"x")

    def queue_error(self, data: bytes, ancillary: list[tuple[int, int, bytes]], destination: str) -> None:
        self._errors.append((data, ancillary, (destination, 0)))
        self._waker.send(b"x")

    def option(self, level: int, name: int) -> Any:
        return next(value for lvl, nm, value in self.options if (lvl, nm) == (level, name))

    # what the prober does
    def fileno(self) -> int:
        return self._wake.fileno()

    def setblocking(self, flag: bool) -> None:
        assert flag is False

    def setsockopt(self, level: int, name: int, value: Any) -> None:
        self.options.append((level, name, value))

    def bind(self, address: Any) -> None:
        self.bound = address

    def getsockname(self) -> Any:
        return ("0.0.0.0", self.port) if self.version == 4 else ("::", self.port, 0, 0)

    def sendto(self, data: bytes, address: Any) -> int:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append((bytes(data), address))
        return len(data)

    def recvfrom(self, size: int) -> tuple[bytes, Any]:
        if not self._inbox:
            raise BlockingIOError(errno.EAGAIN, "empty")
        self._wake.recv(1)
        item = self._inbox.popleft()
        if isinstance(item, OSError):
            raise item
        return item

    def recvmsg(self, size: int, ancsize: int, flags: int) -> tuple[bytes, list, int, Any]:
        assert flags == socket.MSG_ERRQUEUE
        if not self._errors:
            raise BlockingIOError(errno.EAGAIN, "empty")
        self._wake.recv(1)
        data, ancillary, address = self._errors.popleft()
        return data, ancillary, socket.MSG_ERRQUEUE, address

    def close(self) -> None:
        self.closed = True
        self._wake.close()
        self._waker.close()


class Rig:
    """A prober on fake sockets (raw unless told) and a fake clock."""

    def __init__(self, raw: bool = True, timeout: float = 1.0,
                 fail: dict[int, OSError] | None = None) -> None:
        self.clock = FakeClock()
        self.sockets: dict[int, FakeSocket] = {}
        self.raw = raw

        def opener(version: int) -> tuple[Any, bool]:
            if fail and version in fail:
                raise fail[version]
            self.sockets[version] = FakeSocket(version, port=40000 + version)
            return self.sockets[version], raw
        self.prober = Prober(timeout, self.clock, opener)   # type: ignore[arg-type]

    @property
    def s4(self) -> FakeSocket:
        return self.sockets[4]

    @property
    def s6(self) -> FakeSocket:
        return self.sockets[6]

    def last4(self) -> bytes:
        return self.s4.sent[-1][0]


async def settle() -> None:
    """Let the loop run its readers on what was delivered."""
    for _ in range(5):
        await asyncio.sleep(0)


def run(body: Callable[[Rig], Awaitable[None]], **kwargs: Any) -> Rig:
    rig = Rig(**kwargs)

    async def main() -> None:
        await rig.prober.open()
        try:
            await asyncio.wait_for(body(rig), 5)
        finally:
            rig.prober.close()
    asyncio.run(main())
    return rig


# -- packets -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", bytes(range(255)),
                                  b"\xff" * 64, b"haoscar-\x00\x01\x02"])
def test_checksum_agrees_with_the_reference(data: bytes) -> None:
    assert icmppacket.checksum(data) == ref_checksum(data)


def test_checksum_of_the_rfc_1071_example() -> None:
    assert icmppacket.checksum(b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7") == 0x220D   # ~0xddf2


def test_requests_carry_identifier_sequence_token_and_a_valid_checksum() -> None:
    async def body(rig: Rig) -> None:
        for _ in range(3):
            rig.prober.probe("10.0.0.2")
        rig.prober.probe("fd00::2")
    rig = run(body)
    seqs, idents = [], set()
    for packet, address in rig.s4.sent:
        kind, ident, seq, payload = fields(packet)
        assert (kind, address) == (8, ("10.0.0.2", 0))
        idents.add(ident)
        assert payload.startswith(icmpsocket.MARK) and len(payload) == len(icmpsocket.MARK) + icmp.TOKEN_SIZE
        assert ref_checksum(packet) == 0
        seqs.append(seq)
    assert seqs == [0, 1, 2] and len(idents) == 1
    kind, _ident, seq, payload = fields(rig.s6.sent[0][0])
    assert (kind, seq, payload) == (128, 0, fields(rig.s4.sent[0][0])[3])


@pytest.mark.parametrize("seq", [0, 1, 0x7FFF, 0xFFFE, 0xFFFF])
def test_the_precomputed_checksum_holds_for_every_sequence_number(seq: int) -> None:
    channel = icmpsocket.Channel(4, FakeSocket(4), True, b"12345678")   # type: ignore[arg-type]
    assert ref_checksum(channel.request(seq)) == 0


def test_two_probers_have_different_tokens() -> None:
    assert Prober()._token != Prober()._token


def test_a_raw_socket_filters_types_and_identifiers_in_the_kernel() -> None:
    rig = run(lambda rig: asyncio.sleep(0))
    mask = struct.unpack("=I", rig.s4.option(icmpsocket.SOL_RAW, icmpsocket.ICMP_FILTER))[0]
    assert [t for t in range(32) if not mask >> t & 1] == [0, 3, 11, 12]
    words = struct.unpack("=8I", rig.s6.option(socket.IPPROTO_ICMPV6, icmpsocket.ICMP6_FILTER))
    assert [t for t in range(256) if not words[t >> 5] >> (t & 31) & 1] == [1, 2, 3, 4, 129]
    assert any(name == icmpsocket.SO_ATTACH_FILTER for _, name, _ in rig.s4.options)
    assert rig.s4.bound is None


def test_a_datagram_socket_binds_takes_the_kernels_identifier_and_asks_for_errors() -> None:
    async def body(rig: Rig) -> None:
        assert rig.prober.describe() == ("IPv4 datagram socket, identifier 40004; "
                                         "IPv6 datagram socket, identifier 40006")
        rig.prober.probe("10.0.0.2")
    rig = run(body, raw=False)
    assert rig.s4.bound == ("0.0.0.0", 0) and rig.s6.bound == ("::", 0)
    assert fields(rig.last4())[1] == 40004
    assert rig.s4.option(socket.IPPROTO_IP, icmpsocket.IP_RECVERR) == 1
    assert rig.s6.option(socket.IPPROTO_IPV6, icmpsocket.IPV6_RECVERR) == 1
    assert not any(name == icmpsocket.SO_ATTACH_FILTER for _, name, _ in rig.s4.options)


# -- the BPF program, run by a small interpreter of the instructions it uses ----------------


def bpf(program: bytes, packet: bytes) -> int:
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = pc = 0
    for _ in range(len(insns)):
        code, jt, jf, k = insns[pc]
        if code == 0x06:
            return k
        if code == 0xB1:
            x = (packet[k] & 0x0F) * 4
        elif code == 0x30:
            a = packet[k]
        elif code == 0x50:
            a = packet[x + k]
        elif code == 0x28:
            a = int.from_bytes(packet[k:k + 2], "big")
        elif code == 0x48:
            a = int.from_bytes(packet[x + k:x + k + 2], "big")
        elif code == 0x15:
            pc += jt if a == k else jf
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1
    raise AssertionError("ran off the end")


def test_the_bpf_program_keeps_our_replies_and_the_errors_and_drops_other_replies() -> None:
    ours, theirs = 0x1234, 0x4321
    v4 = icmpsocket.ident_filter(4, ours)
    assert bpf(v4, ipv4("10.0.0.2", US4, message(0, ours, 7, b"x"))) > 0
    assert bpf(v4, ipv4("10.0.0.2", US4, message(0, theirs, 7, b"x"))) == 0
    with_options = (struct.pack("!BBHHHBBH", 0x46, 0, 0, 0, 0, 64, 1, 0) + bytes(8) + bytes(4)
                    + message(0, ours, 7, b"x"))
    assert bpf(v4, with_options) > 0                     # the IP header length is read, not assumed
    assert bpf(v4, ipv4("10.0.0.9", US4, icmp_error(3, 1, b"quoted"))) > 0
    v6 = icmpsocket.ident_filter(6, ours)
    assert bpf(v6, message(129, ours, 7, b"x")) > 0
    assert bpf(v6, message(129, theirs, 7, b"x")) == 0
    assert bpf(v6, icmp_error(1, 3, b"quoted")) > 0


# -- matching ------------------------------------------------------------------------------


def test_a_reply_is_credited_with_its_round_trip_time() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        waiting = rig.prober.stats("10.0.0.2")
        assert waiting is not None and waiting.waiting_since == rig.clock.monotonic()
        rig.clock.advance(0.004)
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
    rig = run(body)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None
    assert (stats.sent, stats.received, stats.late, stats.errors) == (1, 1, 0, 0)
    assert stats.last_rtt == pytest.approx(0.004)
    assert stats.last_reply == rig.clock.monotonic() and stats.waiting_since is None
    assert rig.prober.counters == icmp.ProberCounters(0, 0, 0, 0, 0)


def test_ipv6_and_datagram_replies_come_without_an_ip_header() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("fd00::2")
        rig.prober.probe("10.0.0.2")
        rig.s6.deliver(answer(rig.s6.sent[-1][0], version=6), "fd00::2")
        rig.s4.deliver(answer(rig.last4(), ip_header=False), "10.0.0.2")
        await settle()
    rig = run(body, raw=False)
    assert [rig.prober.stats(a).received for a in ("fd00::2", "10.0.0.2")] == [1, 1]  # type: ignore[union-attr]


def test_an_ipv6_address_is_matched_whatever_way_it_was_written() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("FD00:0::2")
        rig.s6.deliver(answer(rig.s6.sent[-1][0], version=6), "fd00::2")
        await settle()
    rig = run(body)
    assert rig.prober.stats("FD00:0::2").received == 1   # type: ignore[union-attr]


def test_a_duplicated_reply_counts_once() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        reply = answer(rig.last4())
        rig.s4.deliver(reply, "10.0.0.2")
        rig.s4.deliver(reply, "10.0.0.2")
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2").received == 1     # type: ignore[union-attr]
    assert rig.prober.counters.duplicates == 1


def test_foreign_replies_are_dropped_and_counted() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        _kind, ident, seq, payload = fields(rig.last4())
        src = "10.0.0.2"
        for reply in (message(0, ident ^ 1, seq, payload),                  # another identifier
                      message(0, ident, seq, icmpsocket.MARK + b"notours!"),      # another token
                      message(0, ident, seq + 1, payload)):                 # nothing sent with it
            rig.s4.deliver(ipv4(src, US4, reply), src)
        rig.s4.deliver(answer(rig.last4(), src="10.0.0.3"), "10.0.0.3")    # from another address
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2").received == 0     # type: ignore[union-attr]
    assert rig.prober.counters.foreign == 4


def test_malformed_packets_are_dropped_and_counted() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        good = answer(rig.last4())
        corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])
        truncated_quote = ipv4(US4, "10.0.0.2", rig.last4())[:24]
        for data in (b"", good[:24], corrupt, ipv4("10.0.0.2", US4, icmp_error(3, 1, b"short")),
                     ipv4("10.0.0.1", US4, icmp_error(3, 1, truncated_quote))):
            rig.s4.deliver(data, "10.0.0.2")
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2").received == 0     # type: ignore[union-attr]
    assert rig.prober.counters.malformed == 5 and rig.prober.counters.foreign == 0


def test_other_icmp_of_the_host_is_foreign() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        udp = ipv4(US4, "10.0.0.9", struct.pack("!HHHH", 5353, 53, 8, 0), proto=17)
        for data in (ipv4("10.0.0.2", US4, message(13, 1, 1, b"")),          # a timestamp request
                     ipv4("10.0.0.9", US4, icmp_error(3, 3, udp))):           # a UDP port unreachable
            rig.s4.deliver(data, "10.0.0.9")
        rig.s6.deliver(icmp_error(1, 4, ipv6(US6, "fd00::9", bytes(8), next_header=17)), "fd00::9")
        await settle()
    rig = run(body)
    assert rig.prober.counters.foreign == 3 and rig.prober.counters.malformed == 0


def test_a_reply_after_the_timeout_is_received_but_gives_no_round_trip_time() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        rig.clock.advance(0.002)
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
        rig.prober.probe("10.0.0.2")
        rig.clock.advance(1.5)
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
    rig = run(body, timeout=1.0)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None and (stats.received, stats.late) == (2, 1)
    assert stats.last_rtt == pytest.approx(0.002) and stats.last_reply == rig.clock.monotonic()


def test_a_reply_to_an_older_request_is_late_and_does_not_take_the_newer_ones_place() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        first = rig.last4()
        rig.clock.advance(0.5)
        rig.prober.probe("10.0.0.2")
        rig.clock.advance(0.1)
        rig.s4.deliver(answer(first), "10.0.0.2")
        await settle()
        stats = rig.prober.stats("10.0.0.2")
        assert stats is not None and (stats.received, stats.late, stats.last_rtt) == (1, 1, None)
        assert stats.waiting_since == pytest.approx(rig.clock.monotonic() - 0.1)   # still waiting
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
    rig = run(body)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None and (stats.received, stats.late, stats.waiting_since) == (2, 1, None)
    assert stats.last_rtt == pytest.approx(0.1)


def test_a_target_that_stops_answering_owes_a_reply_since_its_first_unanswered_request() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
        rig.clock.advance(1)
        first_unanswered = rig.clock.monotonic()
        for _ in range(3):
            rig.prober.probe("10.0.0.2")
            rig.clock.advance(1)
        stats = rig.prober.stats("10.0.0.2")
        assert stats is not None and stats.waiting_since == first_unanswered
        assert (stats.sent, stats.received) == (4, 1)
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")     # the newest is answered: owes nothing
        await settle()
    rig = run(body, timeout=2.0)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None and stats.waiting_since is None and stats.late == 0


def test_sequence_numbers_wrap_at_16_bits_and_a_reused_slot_answers_the_new_request() -> None:
    async def body(rig: Rig) -> None:
        for _ in range(icmpsocket.SEQUENCES):
            rig.prober.probe("10.0.0.2")
        old = rig.s4.sent[0][0]
        rig.prober.probe("10.0.0.3")                       # sequence 0 again
        assert fields(rig.last4())[2] == 0
        rig.s4.deliver(answer(old), "10.0.0.2")            # the old request's reply: its slot is taken
        rig.s4.deliver(answer(rig.last4(), src="10.0.0.3"), "10.0.0.3")
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2").received == 0     # type: ignore[union-attr]
    assert rig.prober.stats("10.0.0.3").received == 1     # type: ignore[union-attr]
    assert rig.prober.counters.foreign == 1


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("code, words", [(errno.EHOSTUNREACH, "no route to host"),
                                         (errno.ENETUNREACH, "network is unreachable"),
                                         (errno.EPERM, "operation not permitted"),
                                         (errno.ENOBUFS, "no buffer space available")])
def test_a_failed_send_counts_against_the_target_and_never_raises(code: int, words: str) -> None:
    async def body(rig: Rig) -> None:
        rig.s4.send_error = OSError(code, "whatever")
        rig.prober.probe("10.0.0.2")
    rig = run(body)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None and (stats.sent, stats.errors) == (0, 1)
    assert stats.last_error == f"send: {words}" and stats.waiting_since == rig.clock.monotonic()
    assert rig.prober.counters.send_errors == 1


def test_an_icmp_error_about_our_request_counts_against_its_target() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        quoted = ipv4(US4, "10.0.0.2", rig.last4())
        rig.s4.deliver(ipv4("10.0.0.1", US4, icmp_error(3, 1, quoted)), "10.0.0.1")
        only_header = ipv4(US4, "10.0.0.2", rig.last4()[:8])
        rig.s4.deliver(ipv4("10.0.0.254", US4, icmp_error(11, 0, only_header)), "10.0.0.254")
        await settle()
    rig = run(body)
    stats = rig.prober.stats("10.0.0.2")
    assert stats is not None and (stats.errors, stats.received) == (2, 0)
    assert stats.last_error == "TTL exceeded from 10.0.0.254"


def test_an_icmp_error_about_another_destination_is_foreign() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        quoted = ipv4(US4, "10.0.0.77", rig.last4())
        rig.s4.deliver(ipv4("10.0.0.1", US4, icmp_error(3, 1, quoted)), "10.0.0.1")
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2").errors == 0       # type: ignore[union-attr]
    assert rig.prober.counters.foreign == 1


def test_an_ipv6_raw_error_names_the_unreachable_address() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("fd00::2")
        quoted = ipv6(US6, "fd00::2", rig.s6.sent[-1][0])
        rig.s6.deliver(icmp_error(1, 3, quoted), "fd00::1")
        await settle()
    rig = run(body)
    assert rig.prober.stats("fd00::2").last_error == "address unreachable from fd00::1"  # type: ignore[union-attr]


def extended_err(version: int, kind: int, code: int, sender: str) -> bytes:
    header = struct.pack("=IBBBBII", errno.EHOSTUNREACH, 2 if version == 4 else 3, kind, code, 0, 0, 0)
    if version == 4:
        return header + struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(sender))
    return header + struct.pack("=HHI16sI", socket.AF_INET6, 0, 0,
                                socket.inet_pton(socket.AF_INET6, sender), 0)


def test_a_datagram_socket_reports_errors_through_its_error_queue() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        rig.prober.probe("fd00::2")
        rig.s4.fail_read(OSError(errno.EHOSTUNREACH, "No route to host"))
        rig.s4.queue_error(rig.last4(), [(socket.IPPROTO_IP, icmpsocket.IP_RECVERR,
                                          extended_err(4, 3, 1, "10.0.0.1"))], "10.0.0.2")
        rig.s6.queue_error(rig.s6.sent[-1][0], [(socket.IPPROTO_IPV6, icmpsocket.IPV6_RECVERR,
                                                 extended_err(6, 1, 3, "fd00::1"))], "fd00::2")
        await settle()
    rig = run(body, raw=False)
    assert rig.prober.stats("10.0.0.2").last_error == "host unreachable from 10.0.0.1"   # type: ignore[union-attr]
    assert rig.prober.stats("fd00::2").last_error == "address unreachable from fd00::1"  # type: ignore[union-attr]
    assert rig.prober.counters == icmp.ProberCounters(0, 0, 0, 0, 0)


def test_a_read_error_on_a_raw_socket_is_counted_and_the_reader_goes_on() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        rig.s4.fail_read(OSError(errno.ENOMEM, "Cannot allocate memory"))
        await settle()
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
    rig = run(body)
    assert rig.prober.counters.socket_errors == 1
    assert rig.prober.stats("10.0.0.2").received == 1     # type: ignore[union-attr]


def test_a_family_without_a_socket_counts_its_probes_as_errors() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("fd00::2")
        rig.prober.probe("10.0.0.2")
    rig = run(body, fail={6: OSError(errno.EAFNOSUPPORT, "no IPv6")})
    stats = rig.prober.stats("fd00::2")
    assert stats is not None and stats.errors == 1
    assert stats.last_error == "no IPv6 ICMP socket: address family not supported by protocol"
    assert rig.prober.stats("10.0.0.2").sent == 1         # type: ignore[union-attr]


def test_opening_fails_when_no_family_can_have_a_socket() -> None:
    denied = OSError(errno.EPERM, "Operation not permitted")
    rig = Rig(fail={4: denied, 6: denied})
    with pytest.raises(OSError, match="no IPv4 ICMP socket: operation not permitted"):
        asyncio.run(rig.prober.open())


def test_not_an_address_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Prober().probe("head2.example")


def test_forget_drops_the_counters_and_late_replies_become_foreign() -> None:
    async def body(rig: Rig) -> None:
        rig.prober.probe("10.0.0.2")
        rig.prober.forget("10.0.0.2")
        rig.s4.deliver(answer(rig.last4()), "10.0.0.2")
        await settle()
    rig = run(body)
    assert rig.prober.stats("10.0.0.2") is None
    assert rig.prober.counters.foreign == 1


def test_close_stops_reading_and_closes_the_sockets() -> None:
    rig = run(lambda rig: asyncio.sleep(0))
    assert rig.s4.closed and rig.s6.closed
    rig.prober.probe("10.0.0.2")
    assert rig.prober.stats("10.0.0.2").last_error == "the prober is closed"   # type: ignore[union-attr]


# -- sweep ---------------------------------------------------------------------------------


class RecordingProber:
    """Notes when each address was probed (the loop's clock), in which cycle of the sweep
    and in which of its batches."""

    def __init__(self) -> None:
        self.probes: list[tuple[float, str, int]] = []
        self.batch: list[int] = []
        self.sweep: Sweep | None = None

    def probe(self, address: str) -> None:
        assert self.sweep is not None
        self.probes.append((asyncio.get_running_loop().time(), address, self.sweep.cycles))
        self.batch.append(self.sweep._index)

    def cycle(self, n: int) -> list[tuple[float, str]]:
        return [(t, a) for t, a, c in self.probes if c == n]


@pytest.mark.parametrize("count, expected", [(0, 1), (1, 1), (10, 1), (11, 2), (2000, 200),
                                             (100_000, 10_000)])
def test_batches(count: int, expected: int) -> None:
    assert batches(count) == expected


def sweep_for(targets: list[str], interval: float, seconds: float,
              during: Callable[[Sweep], None] | None = None) -> tuple[RecordingProber, Sweep]:
    prober = RecordingProber()
    sweep = prober.sweep = Sweep(prober, interval, targets)

    async def main() -> None:
        sweep.start()
        if during is not None:
            await asyncio.sleep(seconds / 2)
            during(sweep)
            await asyncio.sleep(seconds / 2)
        else:
            await asyncio.sleep(seconds)
        sweep.stop()
    asyncio.run(main())
    return prober, sweep


def test_a_sweep_probes_every_target_once_per_interval_spread_across_it() -> None:
    targets = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(500)]
    prober, sweep = sweep_for(targets, 0.2, 0.9)            # two cycles, with a margin for a busy machine
    assert sweep.cycles >= 2
    for n in (0, 1):
        assert sorted(a for _, a in prober.cycle(n)) == sorted(targets)
    groups: dict[int, list[float]] = {}
    for (t, _, cycle), batch in zip(prober.probes, prober.batch, strict=True):
        if cycle == 0:
            groups.setdefault(batch, []).append(t)
    assert len(groups) == batches(500) == 50                # 50 callbacks of 10 probes
    assert {len(g) for g in groups.values()} == {10}
    assert groups[49][0] - groups[0][0] >= 0.15             # spread over the interval (0.196 s)


def test_new_targets_take_effect_at_the_next_cycle() -> None:
    changed: list[int] = []

    def change(sweep: Sweep) -> None:
        changed.append(sweep.cycles)
        sweep.set_targets(["10.1.0.3"])
    prober, sweep = sweep_for(["10.1.0.1", "10.1.0.2"], 0.1, 0.35, during=change)
    for _, address, cycle in prober.probes:
        assert address == ("10.1.0.3" if cycle > changed[0] else address)
        assert address != "10.1.0.3" or cycle > changed[0]
    assert {a for _, a, c in prober.probes if c == sweep.cycles - 1} == {"10.1.0.3"}


def test_a_sweep_that_fell_an_interval_behind_starts_afresh_instead_of_catching_up() -> None:
    targets = [f"10.1.0.{i}" for i in range(1, 101)]
    prober, sweep = sweep_for(targets, 0.05, 0.4, during=lambda s: time.sleep(0.3))
    assert sweep.restarts >= 1
    for cycle in range(sweep.cycles):          # never a target twice in a cycle, the missed
        sent = [a for _, a in prober.cycle(cycle)]       # cycles are not made up for
        assert len(sent) == len(set(sent))
    assert sorted(a for _, a in prober.cycle(sweep.cycles - 1)) == sorted(targets)
    # 0.7 s in all: catching up would make it 14 cycles; 0.3 s of them were missed
    assert len(prober.probes) <= len(targets) * 12


def test_a_sweep_goes_on_after_a_probe_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Failing(RecordingProber):
        def probe(self, address: str) -> None:
            super().probe(address)
            if address == "bad":
                raise RuntimeError("boom")
    prober = Failing()
    sweep = Sweep(prober, 0.02, ["bad", "10.1.0.1"])
    prober.sweep = sweep

    async def main() -> None:
        sweep.start()
        await asyncio.sleep(0.1)
        sweep.stop()
    asyncio.run(main())
    assert sum(1 for _, a, _ in prober.probes if a == "10.1.0.1") >= 3
    assert "please report it as a BUG" in caplog.text
