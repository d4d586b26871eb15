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

import asyncio
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

# Imported up front: pyroute2's first import takes a few hundred milliseconds, which
# must not be spent in the middle of a takeover.
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
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


class NetlinkAliases:
    """The real thing: pyroute2 for addresses, an AF_PACKET socket for gratuitous ARP.

    Netlink calls are quick but blocking, so they run in a worker thread.
    """

    async def add(self, alias: Alias) -> None:
        await asyncio.to_thread(self._addr, "add", alias)

    async def remove(self, alias: Alias) -> None:
        await asyncio.to_thread(self._addr, "del", alias)

    async def present(self, alias: Alias) -> bool:
        return await asyncio.to_thread(self._present, alias)

    def __init__(self) -> None:
        # One send-only packet socket per interface, kept open: creating, binding and
        # sending take ~0.2 ms, but closing one waits for the kernel's network RCU grace
        # period (8 to 16 ms measured), which would sit in every takeover.
        self._sockets: dict[str, socket.socket] = {}

    async def announce(self, alias: Alias, count: int = 1) -> int:
        """Send `count` announcements now (no thread hop: it takes ~0.1 ms)."""
        if count <= 0:
            return 0
        if ipaddress.ip_address(alias.address).version == 4:
            return self._send_garp(alias, count)
        return self._send_na(alias, count)

    def _addr(self, command: str, alias: Alias) -> None:
        with IPRoute() as ipr:
            index = self._index(ipr, alias.interface)
            kwargs: dict[str, object] = dict(index=index, address=alias.address, prefixlen=alias.prefix_length)
            if command == "add" and ipaddress.ip_address(alias.address).version == 4:
                kwargs["label"] = f"{alias.interface}:{alias.index}"[:15]
            elif command == "add":
                kwargs["flags"] = IFA_F_NODAD
            try:
                ipr.addr(command, **kwargs)
            except NetlinkError as exc:
                # 17 EEXIST on add, 99 EADDRNOTAVAIL on delete: already as wanted.
                if exc.code not in (17, 99):
                    raise

    def _present(self, alias: Alias) -> bool:
        with IPRoute() as ipr:
            indexes = ipr.link_lookup(ifname=alias.interface)
            if not indexes:
                return False
            return any(a.get("IFA_ADDRESS") == alias.address for a in ipr.get_addr(index=indexes[0]))

    @staticmethod
    def _index(ipr: object, ifname: str) -> int:
        indexes = ipr.link_lookup(ifname=ifname)  # type: ignore[attr-defined]
        if not indexes:
            raise OSError(f"interface {ifname} does not exist")
        return indexes[0]

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


class FakeAliases:
    """In-memory AliasOps for unit tests: records every call."""

    def __init__(self, present: set[str] | None = None) -> None:
        self.addresses: set[str] = set(present or ())
        self.calls: list[tuple[str, str]] = []
        self.fail_add = False

    async def add(self, alias: Alias) -> None:
        self.calls.append(("add", alias.address))
        if self.fail_add:
            raise OSError("add failed")
        self.addresses.add(alias.address)

    async def remove(self, alias: Alias) -> None:
        self.calls.append(("remove", alias.address))
        self.addresses.discard(alias.address)

    async def present(self, alias: Alias) -> bool:
        return alias.address in self.addresses

    async def announce(self, alias: Alias, count: int = 1) -> int:
        self.calls.append(("announce", alias.address))
        return count
