"""Alias addresses: add and remove them with netlink, and announce them.

Adding is idempotent (an address already there is fine) and uses the conventional
`iface:N` label so `ip addr` and old tools show whose it is. IPv6 aliases are added
without duplicate address detection (`nodad`): the address must answer at once, and
the peer that held it a moment ago would otherwise hold it back as a duplicate.

Announcing tells every neighbour on the LAN that the address now lives at this head's
MAC, so clients follow at once instead of when their cache expires:
* IPv4: gratuitous ARP, as ARP requests whose sender and target are the alias address,
  broadcast on the alias's interface (42-byte frames built here);
* IPv6: unsolicited neighbour advertisements (RFC 4861, section 7.2.6) to all nodes,
  with the override flag and this head's MAC, from a raw ICMPv6 socket (the kernel
  computes the checksum).

The netlink messages (nlmsghdr, ifaddrmsg and route attributes: fixed C structures) are
made and read here with `struct`, as the link watch does (fault/lan/netlink.py); pyroute2,
which did this before, held about 8 MiB of the daemon's memory for three message kinds
(bench/bench_memory.py), and its first import took a few hundred milliseconds.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3
NLA_TYPE_MASK = 0x3FFF          # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
NETLINK_TIMEOUT_S = 1.0
DUMP_MAX_DATAGRAMS = 4096       # an address dump of a head is a few datagrams
IFA_F_NODAD = 0x02
IPV6_FREEBIND = 78
ND_NEIGHBOR_ADVERT = 136
NA_FLAG_OVERRIDE = 0x20000000


@dataclass(frozen=True)
class Alias:
    address: str
    prefix_length: int
    interface: str
    index: int = 0      # MIB row index, also used for the label iface:N


class AliasOps(Protocol):
    """What the role machine needs from the OS; a fake stands in for it in unit tests."""

    async def add(self, alias: Alias) -> None: ...
    async def remove(self, alias: Alias) -> None: ...
    async def present(self, alias: Alias) -> bool: ...
    async def announce(self, alias: Alias, count: int = 1) -> int: ...


def garp_frame(mac: bytes, ip: str) -> bytes:
    """A broadcast gratuitous ARP request: sender IP = target IP = the alias."""
    addr = socket.inet_aton(ip)
    ether = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\x00" * 6 + addr
    return ether + arp


def unsolicited_na(mac: bytes, ip: str) -> bytes:
    """An unsolicited neighbour advertisement for `ip` (ICMPv6 body; checksum left to the
    kernel): override set, solicited clear, with the target link-layer address option."""
    return (struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, NA_FLAG_OVERRIDE)
            + socket.inet_pton(socket.AF_INET6, ip) + bytes([2, 1]) + mac)


_NLMSGHDR = struct.Struct("=IHHII")     # length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")    # family, prefix length, flags, scope, interface index
_RTATTR = struct.Struct("=HH")          # length (header and data, not the padding), type


def _attribute(kind: int, data: bytes) -> bytes:
    """One route attribute, padded to 4 bytes."""
    return _RTATTR.pack(_RTATTR.size + len(data), kind) + data + bytes(-len(data) % 4)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body


def address_request(command: str, index: int, alias: Alias, seq: int) -> bytes:
    """An RTM_NEWADDR ("add") / RTM_DELADDR request for an alias: IPv4 with IFA_LOCAL and
    IFA_ADDRESS (and the label iface:N, at most 15 characters, when adding), IPv6 with
    IFA_ADDRESS and, when adding, no duplicate address detection."""
    v4 = ipaddress.ip_address(alias.address).version == 4
    family = socket.AF_INET if v4 else socket.AF_INET6
    packed = socket.inet_pton(family, alias.address)
    add = command == "add"
    attrs = (_attribute(IFA_LOCAL, packed) if v4 else b"") + _attribute(IFA_ADDRESS, packed)
    if add and v4:
        attrs += _attribute(IFA_LABEL, f"{alias.interface}:{alias.index}"[:15].encode() + b"\0")
    body = _IFADDRMSG.pack(family, alias.prefix_length, IFA_F_NODAD if add and not v4 else 0, 0, index) + attrs
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if add else 0)
    return _message(RTM_NEWADDR if add else RTM_DELADDR, flags, seq, body)


def dump_request(seq: int) -> bytes:
    """RTM_GETADDR for every address of every interface (the kernel does not filter)."""
    return _message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))


def addresses_in(datagram: bytes, seq: int) -> tuple[list[tuple[int, bytes]], bool]:
    """The (interface index, IFA_ADDRESS) of each RTM_NEWADDR answering `seq` in one
    datagram of a dump, and whether the dump is over; OSError when the kernel refused it."""
    found: list[tuple[int, bytes]] = []
    pos = 0
    while pos + _NLMSGHDR.size <= len(datagram):
        length, kind, _flags, reply_seq, _pid = _NLMSGHDR.unpack_from(datagram, pos)
        if length < _NLMSGHDR.size or pos + length > len(datagram):
            raise OSError("netlink: a truncated address message")
        if reply_seq == seq:
            if kind == NLMSG_DONE:
                return found, True
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", datagram, pos + _NLMSGHDR.size)[0]
                raise OSError(code, f"netlink address dump: {os.strerror(code)}")
            if kind == RTM_NEWADDR:
                index = _IFADDRMSG.unpack_from(datagram, pos + _NLMSGHDR.size)[4]
                at, end = pos + _NLMSGHDR.size + _IFADDRMSG.size, pos + length
                while at + _RTATTR.size <= end:
                    size, attr = _RTATTR.unpack_from(datagram, at)
                    if size < _RTATTR.size:
                        break
                    if attr & NLA_TYPE_MASK == IFA_ADDRESS:
                        found.append((index, datagram[at + _RTATTR.size:at + size]))
                    at += (size + 3) & ~3
        pos += (length + 3) & ~3
    return found, False


def address_present(index: int, address: str) -> bool:
    """Whether `address` is on the interface `index`, from a dump on a socket of its own
    (blocking, bounded by NETLINK_TIMEOUT_S per datagram and DUMP_MAX_DATAGRAMS)."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.settimeout(NETLINK_TIMEOUT_S)
        s.send(dump_request(1))
        present = False
        for _ in range(DUMP_MAX_DATAGRAMS):
            found, done = addresses_in(s.recv(65536), 1)
            present = present or (index, packed) in found
            if done:
                return present
    raise OSError("netlink: the address dump did not end")


class NetlinkAliases:
    """The real thing: netlink for addresses, an AF_PACKET socket for gratuitous ARP.

    Adding and removing an alias must not yield to the event loop in the middle of a
    takeover: anything queued meanwhile (SNMP requests, notifications) would run first
    (measured: an awaited netlink round trip of 0.35 ms became 14 ms in a failover). So
    the request (`address_request`) is sent on a netlink socket kept open, and the
    kernel's answer is read at once: 0.09 ms, done before anything else runs. Looking
    addresses up (not time-critical) is a dump read in a worker thread, off the loop.
    """

    def __init__(self) -> None:
        self._nl: socket.socket | None = None
        self._seq = 0
        # One send-only packet socket per interface, kept open: creating, binding and
        # sending take ~0.2 ms, but closing one waits for the kernel's network RCU grace
        # period (8 to 16 ms measured), which would sit in every takeover.
        self._sockets: dict[str, socket.socket] = {}

    async def open(self) -> None:
        """Open the netlink socket now (at start), not in the middle of a takeover."""
        if self._nl is None:
            self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self._nl.bind((0, 0))
            self._nl.settimeout(NETLINK_TIMEOUT_S)

    async def add(self, alias: Alias) -> None:
        self._addr("add", alias)

    async def remove(self, alias: Alias) -> None:
        self._addr("del", alias)

    def _addr(self, command: str, alias: Alias) -> None:
        try:
            index = socket.if_nametoindex(alias.interface)
        except OSError:
            raise OSError(f"interface {alias.interface} does not exist") from None
        self._seq = self._seq % 0xFFFFFFFF + 1
        code = self._call(address_request(command, index, alias, self._seq))
        # 17 EEXIST on add, 99 EADDRNOTAVAIL on delete: already as wanted.
        if code not in (0, errno.EEXIST, errno.EADDRNOTAVAIL):
            raise OSError(code, f"netlink {command} {alias.address}: {os.strerror(code)}")

    def _call(self, request: bytes) -> int:
        """Send one request and return the kernel's answer (0 or an errno)."""
        if self._nl is None:
            self._nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self._nl.bind((0, 0))
            self._nl.settimeout(NETLINK_TIMEOUT_S)
        seq = struct.unpack_from("=I", request, 8)[0]
        self._nl.send(request)
        for _ in range(16):   # skip answers to an earlier request that timed out
            reply = self._nl.recv(65536)
            _length, kind, _flags, reply_seq, _pid = struct.unpack_from("=IHHII", reply)
            if kind == NLMSG_ERROR and reply_seq == seq:
                return -struct.unpack_from("=i", reply, 16)[0]
        raise OSError("netlink: no answer to the request")

    async def present(self, alias: Alias) -> bool:
        try:
            index = socket.if_nametoindex(alias.interface)
        except OSError:
            return False
        return await asyncio.to_thread(address_present, index, alias.address)

    async def announce(self, alias: Alias, count: int = 1) -> int:
        """Send `count` announcements now (no thread hop: it takes ~0.1 ms)."""
        if count <= 0:
            return 0
        if ipaddress.ip_address(alias.address).version == 4:
            return self._send_garp(alias, count)
        return self._send_na(alias, count)

    def _send_garp(self, alias: Alias, count: int) -> int:
        for attempt in (1, 2):  # a cached socket may be bound to an interface since recreated
            try:
                s = self._socket(alias.interface)
                frame = garp_frame(s.getsockname()[4][:6], alias.address)
                for _ in range(count):
                    s.send(frame)
                return count
            except OSError as exc:  # no CAP_NET_RAW, interface gone: log, the takeover goes on
                stale = self._sockets.pop(alias.interface, None)
                if stale is not None:
                    stale.close()
                if attempt == 2:
                    log.warning("gratuitous ARP for %s on %s failed: %s", alias.address,
                                alias.interface, exc)
        return 0

    def _send_na(self, alias: Alias, count: int) -> int:
        try:
            mac = self._socket(alias.interface).getsockname()[4][:6]
            with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
                index = socket.if_nametoindex(alias.interface)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, alias.interface.encode())
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # RFC 4861: 255
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
                s.bind((alias.address, 0, 0, index))
                body = unsolicited_na(mac, alias.address)
                for _ in range(count):
                    s.sendto(body, ("ff02::1", 0, 0, index))
            return count
        except OSError as exc:
            log.warning("neighbour advertisement for %s on %s failed: %s", alias.address,
                        alias.interface, exc)
            return 0

    def _socket(self, ifname: str) -> socket.socket:
        s = self._sockets.get(ifname)
        if s is None:
            # Protocol 0: send-only. With a protocol the kernel also registers a receive
            # hook, which costs ~8 ms more to set up.
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                s.bind((ifname, 0))
            except OSError:
                s.close()
                raise
            self._sockets[ifname] = s
        return s

    def close(self) -> None:
        for s in self._sockets.values():
            s.close()
        self._sockets.clear()
        if self._nl is not None:
            self._nl.close()
            self._nl = None
