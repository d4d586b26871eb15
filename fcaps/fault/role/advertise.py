"""What the role machine hands outward: its advertised view, and the takeover generation.

The machine gives every change of this head's view (status, flags, aliases held, public
reach, generation) to an `Advertiser`: the heartbeat process, which sends it to the peer;
`NoPeer` in a single-head cluster. The takeover generation is advertised too: a head
that takes over goes above every generation it has seen, so that after a partition both
heads know who took over last. `GenerationFile` keeps it across restarts; it is written
off the event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from haoscar_snmp.core.files import atomic_write

from fcaps.fault.heartbeat.peer import LocalView


class Advertiser(Protocol):
    """Where this head's advertised view goes: the heartbeat thread."""

    def advertise(self, local: LocalView) -> None: ...


class NoPeer:
    """The advertiser of a single-head cluster: nobody listens."""

    def advertise(self, local: LocalView) -> None:
        pass


class GenerationFile:
    """The takeover generation, kept in the state directory across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.value = int(path.read_text().strip())
        except (OSError, ValueError):
            self.value = 0

    async def save(self, value: int) -> None:
        self.value = value
        await asyncio.to_thread(atomic_write, self.path, f"{value}\n".encode())
