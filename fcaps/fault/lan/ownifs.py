"""This head's own watched LAN interfaces: found by address, watched through netlink.

An echo to one's own address proves nothing, so the LAN poller pings none of this head's
interfaces. Each is found by the address the configuration gives it (`local_interface`,
read at each reload) and the kernel tells its carrier through a netlink subscription
within milliseconds and its packet, error and drop counters at each round
(fault/lan/links.py). A carrier change goes into the row at once; the notices of this
head's own interfaces follow the same hold-down as the pinged ones (`Teller`).

`OwnInterfaces` is the part of the LAN poller (fault/lan/poller.py) that does this: a
mixin of `LanPoller`, which builds the fields it reads (`_own`, `links`, the state, the
clock) and the row lookup `_row`.

Writer of the runtime fields of this head's own rows of haoscarLanIfTable (carrier,
status, kernel counters, source, last change).
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from haoscar_snmp.config.lanrows import IfKey
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import Lan, LanIfRow, LanSource, LinkStatus, State

from .links import LinkCounters
from .watch import Teller

log = logging.getLogger(__name__)

SIOCGIFADDR = 0x8915          # ioctl: an interface's (primary) IPv4 address


class Links(Protocol):
    """This head's own interfaces, from netlink (fault/lan/links.py)."""

    def set_names(self, names: list[str]) -> None: ...
    async def counters(self) -> dict[str, LinkCounters]: ...
    async def open(self) -> None: ...
    def close(self) -> None: ...


# (interface name, carrier, admin up): a change the watch tells at once.
LinkChanged = Callable[[str, bool, bool], None]


@dataclass
class Own:
    """One of this head's own watched interfaces."""

    name: str                       # Linux name; "" while no interface holds the address
    teller: Teller


def local_interface(address: str) -> str:
    """The name of this host's interface that holds `address`, or "" (read at each reload:
    an IPv4 address from each interface's primary address, an IPv6 one from
    /proc/net/if_inet6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if ip.version == 6:
        try:
            lines = Path("/proc/net/if_inet6").read_text().splitlines()
        except OSError:
            return ""
        wanted = ip.packed.hex()
        return next((f[5] for f in (line.split() for line in lines) if len(f) == 6 and f[0] == wanted), "")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue                 # no IPv4 address on it
            if socket.inet_ntoa(answer[20:24]) == str(ip):
                return name
    return ""


class OwnInterfaces:
    """The LAN poller's part for this head's own interfaces (a mixin of `LanPoller`)."""

    state: State
    clock: Clock
    links: Links | None
    _own: dict[IfKey, Own]
    _row: Callable[[IfKey], LanIfRow | None]

    async def open_links(self) -> None:
        """Start watching this head's interfaces. Without netlink the poller goes on
        pinging, and this head's own rows stay unknown."""
        if self.links is None:
            return
        try:
            await self.links.open()
        except OSError as exc:
            log.error("LAN poller: cannot watch this head's interfaces over netlink: %s", exc)
            self.links = None

    def close_links(self) -> None:
        if self.links is not None:
            self.links.close()

    async def _own_rows(self, config: Config, now: float) -> list[tuple[str, Lan, bool]]:
        """This head's own interfaces: carrier and kernel counters. Returns what to tell
        (node, LAN, down) by the hold-down rule the pinged interfaces follow."""
        tells: list[tuple[str, Lan, bool]] = []
        if not self._own:
            return tells
        counters = await self.links.counters() if self.links is not None else {}
        hold_down = config.lan.hold_down_ms / 1000.0
        for key, own in self._own.items():
            row = self._row(key)
            if row is None:
                continue
            row.source = LanSource.THIS_HEAD
            c = counters.get(own.name) if own.name else None
            if c is not None:
                row.in_packets, row.out_packets = c.rx_packets, c.tx_packets
                row.in_errors, row.out_errors = c.rx_errors, c.tx_errors
                row.in_discards, row.out_discards = c.rx_dropped, c.tx_dropped
            up = None if c is None or c.carrier is None else c.carrier and c.admin_up
            self.carrier(key, up, "" if c is not None else
                         f"no interface {own.name} here" if own.name else "no interface holds the address")
            news = own.teller.tell(row.status == LinkStatus.DOWN if row.status != LinkStatus.UNKNOWN else None,
                                   now, hold_down)
            if news is not None:
                tells.append((key[0], key[1], news))
        return tells

    def carrier(self, key: IfKey, up: bool | None, why: str = "") -> None:
        """One of this head's interfaces changed (netlink event, or the round's counters)."""
        row = self._row(key)
        if row is None:
            return
        row.carrier = LinkStatus.UNKNOWN if up is None else LinkStatus.UP if up else LinkStatus.DOWN
        status = LinkStatus.UNKNOWN if up is None else row.carrier
        if status != row.status:
            row.status, row.last_change = status, self.clock.time()
            log.info("LAN interface %s/%s (this head's %s) %s%s", key[0], key[1].label,
                     self._own[key].name if key in self._own else "?", status.name.lower(),
                     f": {why}" if why else "")

    def link_changed(self, name: str, carrier: bool, admin_up: bool) -> None:
        """The netlink callback: a carrier or admin change on one of this head's interfaces."""
        for key, own in self._own.items():
            if own.name == name:
                self.carrier(key, carrier and admin_up)
