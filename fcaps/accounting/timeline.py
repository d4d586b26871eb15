"""Ledger time: what the outage ledger stores, wall-clock based but never stepping.

The wall clock may be stepped (NTP, an operator) and may disagree between heads; the
monotonic clock may be small (a machine booted seconds ago). The ledger therefore reads
one monotonic clock and fixes, once per boot of the machine, where it lies on the wall
clock (the *anchor*): ledger time = anchor wall time + (monotonic - anchor monotonic).
Within a boot every run of the agent uses the same anchor, so durations, also across a
restart or a `kill -9`, are monotonic differences: a step of the wall clock can never
make one negative or absurd. A new boot takes a new anchor from the wall clock, never
earlier than the last time already recorded, so the ledger's time never goes back.

The price: if the wall clock is stepped during a boot, ledger times (shown to people as
dates) differ from the wall clock by the step until the next boot. The ledger also
stores the wall clock as read at each start and end of an outage, for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from haoscar_snmp.core.clock import Clock

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def read_boot_id(path: Path = BOOT_ID) -> str:
    """The kernel's identifier of this boot ("" if it cannot be read: every start is then
    taken as a new boot, from the wall clock)."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Anchor:
    boot_id: str
    wall: float
    mono: float


class Timeline:
    def __init__(self, clock: Clock, anchor: Anchor) -> None:
        self.clock = clock
        self.anchor = anchor

    @classmethod
    def resume(cls, clock: Clock, boot_id: str, stored: Anchor | None, floor: float) -> "Timeline":
        """The stored anchor if it belongs to this boot, else a new one from the wall clock,
        at or after `floor` (the latest ledger time recorded)."""
        mono = clock.monotonic()
        if stored is not None and boot_id and stored.boot_id == boot_id and stored.mono <= mono:
            return cls(clock, stored)
        return cls(clock, Anchor(boot_id, max(clock.time(), floor), mono))

    def now(self) -> float:
        return self.at(self.clock.monotonic())

    def at(self, mono: float) -> float:
        """The ledger time of a monotonic time of this boot."""
        return self.anchor.wall + (mono - self.anchor.mono)
