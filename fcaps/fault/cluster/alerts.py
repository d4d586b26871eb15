"""The daemon's side of Pacemaker's alert agent (alert_agent.py): a datagram socket.

Each datagram asks for one refresh of the placement (the callback given); the content
is only logged at debug level. The socket is a unix datagram socket at a path the
daemon chooses (its directory must let the user hacluster, who runs the agent, reach
it). It is made writable by its owner and, when the group exists, by the group
haclient (Pacemaker's), and by nobody else: whoever can write to it can only make the
daemon read Pacemaker's status, which the refresh coalesces. A stale socket file left
by an earlier run is replaced; anything else at the path is refused.

Pacemaker runs the alert agent only on the node that carried out the operation. A move
alerts the old node when the stop is done (the start elsewhere is not over yet) and the
new node when the start is; the other nodes hear nothing. So an alert asks for a read at
once and for one more `settle_s` later (`AlertReads`), which sees where the transition
ended; alerts meanwhile share that later read.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Callable

from haoscar_snmp.core.clock import Clock, Timer

log = logging.getLogger(__name__)

GROUP = "haclient"


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_alert: Callable[[], None]) -> None:
        self.on_alert = on_alert
        self.received = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received += 1
        log.debug("Pacemaker alert: %s", data[:512].decode("utf-8", "replace"))
        self.on_alert()


class AlertListener:
    """Listens on `path` while started; `on_alert()` for every datagram."""

    def __init__(self, path: Path, on_alert: Callable[[], None]) -> None:
        self.path = path
        self._protocol = _Protocol(on_alert)
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def received(self) -> int:
        return self._protocol.received

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(f"{self.path} exists and is not a socket: not replaced")
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)
            with contextlib.suppress(KeyError, PermissionError):
                os.chown(self.path, -1, grp.getgrnam(GROUP).gr_gid)
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: self._protocol, sock=sock)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            raise
        self._transport = transport     # type: ignore[assignment]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class AlertReads:
    """What an alert asks of the reader: a read now (`refresh`, which coalesces), and one
    more `settle_s` later on the injected clock. Call `close` at shutdown."""

    def __init__(self, refresh: Callable[[], None], clock: Clock, settle_s: float = 1.0) -> None:
        self.refresh = refresh
        self.clock = clock
        self.settle_s = settle_s
        self._timer: Timer | None = None

    def __call__(self) -> None:
        self.refresh()
        if self._timer is None:
            self._timer = self.clock.call_later(self.settle_s, self._again)

    def _again(self) -> None:
        self._timer = None
        self.refresh()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
