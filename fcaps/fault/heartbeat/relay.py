"""The heartbeat process's relay of the settings exchange's datagrams.

The heads' settings exchange (`fcaps/configuration/syncproto.py`) shares the heartbeat
port and sockets, so that it needs no port of its own. Its datagrams start with
CONFIG_MAGIC. The heartbeat process does not read them: those from the peer go to the
daemon (which authenticates them), and the daemon's go out on the private LANs.

Rules: a flood must cost the heartbeat nothing, so at most RELAY_PER_S datagrams a
second go to the daemon, and none larger than RELAY_MAX_BYTES (they would not fit the
socket pair's messages once encoded); the others are counted as dropped, as are those
the daemon does not read (it may be frozen). The daemon's datagrams go out only while
the heartbeat process speaks (a silent process sends nothing), and only on the private
LANs: the public path only arbitrates.
"""

from __future__ import annotations

import base64
import time
from typing import Callable

from haoscar_snmp.core.state import Lan

from . import wire

CONFIG_MAGIC = b"HAOC"       # the settings exchange's datagrams (fcaps/configuration/syncproto.py)
RELAY_PER_S = 50             # of them handed to the daemon a second, at most
RELAY_MAX_BYTES = 46_000     # larger ones do not fit the socket pair's messages once encoded


class ConfigRelay:
    """Hands the peer's settings datagrams to the daemon, bounded, and sends the daemon's."""

    def __init__(self, to_daemon: Callable[[bytes], bool], to_peer: Callable[[Lan, bytes], None]) -> None:
        self._to_daemon = to_daemon      # a message on the socket pair; False if not sent
        self._to_peer = to_peer          # a datagram to the peer on one path
        self._relay_window = 0.0         # monotonic second of the relay count
        self._relayed = 0
        self.dropped = 0

    def received(self, data: bytes, lan: Lan) -> None:
        """To the daemon, unread; bounded, so a flood costs the heartbeat nothing."""
        now = time.monotonic()
        if now - self._relay_window >= 1.0:
            self._relay_window, self._relayed = now, 0
        if self._relayed >= RELAY_PER_S or len(data) > RELAY_MAX_BYTES:
            self.dropped += 1
            return
        self._relayed += 1
        if not self._to_daemon(wire.pack("cfg", lan=int(lan), data=base64.b64encode(data).decode("ascii"))):
            self.dropped += 1                # the daemon is not reading (frozen): dropped

    def send(self, data: bytes, silent: bool) -> None:
        """The daemon's datagram, on each private LAN (the public path only arbitrates);
        nothing while the heartbeat process is `silent`."""
        if silent or len(data) > RELAY_MAX_BYTES:
            return
        for lan in (Lan.LAN_A, Lan.LAN_B):
            self._to_peer(lan, data)
