"""The heartbeat process's UDP sockets: one per path, on the heartbeat port.

Heartbeats and the heads' settings exchange (`fcaps/configuration/syncproto.py`) share
this port and these sockets, so that the exchange needs no port of its own. What
arrives is sorted at once: a datagram starting with CONFIG_MAGIC belongs to the
exchange and goes to the daemon unread (the daemon authenticates it); anything else is
a heartbeat, handed to the heartbeat logic. The daemon's own datagrams of the exchange
go out on the private LANs.

Rules: a flood of the exchange's datagrams must cost the heartbeat nothing, so at most
RELAY_PER_S a second go to the daemon, and none larger than RELAY_MAX_BYTES (they would
not fit the socket pair's messages once encoded); the others are counted as dropped, as
are those the daemon does not read (it may be frozen). The daemon's datagrams go out
only while the heartbeat process speaks (a silent process sends nothing), and only on
the private LANs: the public path only arbitrates.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import time
from typing import Callable, Mapping

from haoscar_snmp.core.state import Lan

from . import wire

log = logging.getLogger("fcaps.fault.heartbeat.peer")   # the heartbeat process's one logger

CONFIG_MAGIC = b"HAOC"       # the settings exchange's datagrams (fcaps/configuration/syncproto.py)
RELAY_PER_S = 50             # of them handed to the daemon a second, at most
RELAY_MAX_BYTES = 46_000     # larger ones do not fit the socket pair's messages once encoded


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, sockets: "PathSockets", lan: Lan) -> None:
        self.sockets = sockets
        self.lan = lan
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.sockets.received(data, self.lan)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a dead peer lands here: normal during failures.
        log.debug("heartbeat socket on %s: %s", self.lan.label, exc)


class PathSockets:
    """The sockets of the heartbeat paths, and the relay of the settings exchange on them."""

    def __init__(self, port: int, heartbeat: Callable[[bytes, Lan], None],
                 to_daemon: Callable[[bytes], bool]) -> None:
        self.port = port
        self._heartbeat = heartbeat      # a heartbeat datagram arrived on a path
        self._to_daemon = to_daemon      # a message on the socket pair; False if not sent
        self._endpoints: dict[Lan, _Endpoint] = {}
        self._remote: dict[Lan, str] = {}
        self._relay_window = 0.0         # monotonic second of the relay count
        self._relayed = 0
        self.relay_dropped = 0

    async def open(self, paths: Mapping[Lan, tuple[str, str]]) -> None:
        """One socket per path: `paths` gives each path's (local, remote) addresses."""
        loop = asyncio.get_running_loop()
        for lan, (local, remote) in paths.items():
            self._remote[lan] = remote
            family = socket.AF_INET6 if ipaddress.ip_address(local).version == 6 else socket.AF_INET
            _t, endpoint = await loop.create_datagram_endpoint(
                lambda lan=lan: _Endpoint(self, lan), local_addr=(local, self.port), family=family)
            self._endpoints[lan] = endpoint

    def close(self) -> None:
        for ep in self._endpoints.values():
            if ep.transport is not None:
                ep.transport.close()

    def sendto(self, lan: Lan, data: bytes, remote: str) -> None:
        """A datagram on one path, if that path has a socket."""
        ep = self._endpoints.get(lan)
        if ep is not None and ep.transport is not None:
            ep.transport.sendto(data, (remote, self.port))

    def received(self, data: bytes, lan: Lan) -> None:
        if data[:4] == CONFIG_MAGIC:
            self._relay(data, lan)
            return
        self._heartbeat(data, lan)

    # -- the settings exchange's datagrams --------------------------------------------------

    def _relay(self, data: bytes, lan: Lan) -> None:
        """To the daemon, unread; bounded, so a flood costs the heartbeat nothing."""
        now = time.monotonic()
        if now - self._relay_window >= 1.0:
            self._relay_window, self._relayed = now, 0
        if self._relayed >= RELAY_PER_S or len(data) > RELAY_MAX_BYTES:
            self.relay_dropped += 1
            return
        self._relayed += 1
        if not self._to_daemon(wire.pack("cfg", lan=int(lan), data=base64.b64encode(data).decode("ascii"))):
            self.relay_dropped += 1          # the daemon is not reading (frozen): dropped

    def send_config(self, data: bytes, silent: bool) -> None:
        """The daemon's datagram, on each private LAN (the public path only arbitrates);
        nothing while the heartbeat process is `silent`."""
        if silent or len(data) > RELAY_MAX_BYTES:
            return
        for lan in (Lan.LAN_A, Lan.LAN_B):
            if lan in self._remote:
                self.sendto(lan, data, self._remote[lan])
