"""Alias addresses: add and remove them with netlink (pyroute2), and announce them.

Adding is idempotent (an address already there is fine) and uses the conventional
`iface:N` label so `ip addr` and old tools show whose it is. IPv6 aliases are added
without duplicate address detection (`nodad`): the address must answer at once, and
the peer that held it a moment ago would otherwise hold it back as a duplicate.

Announcing tells every neighbour on the LAN that the address now lives at this head's
MAC, so clients follow at once instead of when their cache expires:
* IPv4: gratuitous ARP, as ARP requests whose sender and target are the alias address,
  broadcast on the alias's interface (42-byte frames built here: pyroute2 speaks
  netlink, not ARP);
* IPv6: unsolicited neighbour advertisements (RFC 4861, section 7.2.6) to all nodes,
  with the override flag and this head's MAC, from a raw ICMPv6 socket (the kernel
  computes the checksum).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

# Imported up front: pyroute2's first import takes a few hundred milliseconds, which
# must not be spent in the middle of a takeover.
from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NETLINK_TIMEOUT_S = 1.0
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


def address_request(command: str, index: int, alias: Alias, seq: int) -> bytes:
    """An RTM_NEWADDR / RTM_DELADDR request for an alias, encoded by pyroute2."""
    v4 = ipaddress.ip_address(alias.address).version == 4
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if v4 else socket.AF_INET6
    msg["prefixlen"] = alias.prefix_length
    msg["index"] = index
    msg["scope"] = 0
    msg["flags"] = IFA_F_NODAD if command == "add" and not v4 else 0
    attrs: list[tuple[str, str]] = [("IFA_LOCAL", alias.address)] if v4 else []
    attrs.append(("IFA_ADDRESS", alias.address))
    if command == "add" and v4:
        attrs.append(("IFA_LABEL", f"{alias.interface}:{alias.index}"[:15]))
    msg["attrs"] = attrs
    msg["header"]["type"] = RTM_NEWADDR if command == "add" else RTM_DELADDR
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if command == "add" else 0)
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


class NetlinkAliases:
    """The real thing: pyroute2 for addresses, an AF_PACKET socket for gratuitous ARP.

    Adding and removing an alias must not yield to the event loop in the middle of a
    takeover: anything queued meanwhile (SNMP requests, notifications) would run first
    (measured: an awaited netlink round trip of 0.35 ms became 14 ms in a failover). So
    the request is encoded by pyroute2's message class (`ifaddrmsg`) and sent on a netlink
    socket kept open, and the kernel's answer is read at once: 0.09 ms, done before
    anything else runs. Looking addresses up (not time-critical) goes through
    pyroute2's asynchronous API.
    """

    def __init__(self) -> None:
        self._ipr: AsyncIPRoute | None = None
        self._nl: socket.socket | None = None
        self._seq = 0
        # One send-only packet socket per interface, kept open: creating, binding and
        # sending take ~0.2 ms, but closing one waits for the kernel's network RCU grace
        # period (8 to 16 ms measured), which would sit in every takeover.
        self._sockets: dict[str, socket.socket] = {}

    async def open(self) -> None:
        """Open the netlink sockets now (at start), not in the middle of a takeover."""
        if self._ipr is None:
            self._ipr = AsyncIPRoute()
            await self._ipr.setup_endpoint()
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
        await self.open()
        assert self._ipr is not None
        async for addr in await self._ipr.addr("dump", index=index):
            if addr.get("address") == alias.address:
                return True
        return False

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
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self._nl is not None:
            self._nl.close()
            self._nl = None
