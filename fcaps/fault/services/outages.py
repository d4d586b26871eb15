"""The services' outage history on disk: every ladder, so a restart resumes on its rung.

`STATE_DIR/services.json` holds one entry per service name: status (failed or
recovering; the rest restart as unknown), rung, the restarts and failures still in their
windows, the handover time, the unfit mark, counters and the last action. It is written
atomically after every ladder step and before a restart command runs, so that a
`kill -9` at any moment loses at most a check's worth of counting, never a rung.

Times in a ladder are on the monotonic clock, which keeps counting across daemon
restarts but starts again at a reboot. The file records the boot it was written in
(`/proc/sys/kernel/random/boot_id`) with both clocks; after a reboot the saved times
are moved by how much wall-clock time passed (never less than zero), the one estimate
left.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.files import atomic_write
from haoscar_snmp.core.state import RecoveryAction, ServiceRung, ServiceStatus

from .ladder import Ladder

log = logging.getLogger(__name__)

FORMAT = 1
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_KEPT_STATUS = (ServiceStatus.FAILED, ServiceStatus.RECOVERING)


def boot_id(path: Path = BOOT_ID) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _dump(ladder: Ladder) -> dict[str, Any]:
    return {"status": ladder.status.name.lower() if ladder.status in _KEPT_STATUS else "unknown",
            "rung": ladder.rung.name.lower(), "consec_fail": ladder.consec_fail,
            "restarts": ladder.restarts, "failures": ladder.failures,
            "handed_over_at": ladder.handed_over_at, "unfit": ladder.unfit,
            "total_restarts": ladder.total_restarts, "last_action": ladder.last_action.name.lower(),
            "last_reason": ladder.last_reason}


def _load(entry: dict[str, Any], shift: float) -> Ladder:
    status = ServiceStatus[str(entry.get("status", "unknown")).upper()]
    return Ladder(
        status=status if status in _KEPT_STATUS else ServiceStatus.UNKNOWN,
        rung=ServiceRung[str(entry["rung"]).upper()],
        consec_fail=int(entry.get("consec_fail", 0)),
        restarts=[float(t) + shift for t in entry.get("restarts", [])],
        failures=[float(t) + shift for t in entry.get("failures", [])],
        handed_over_at=float(entry["handed_over_at"]) + shift if entry.get("handed_over_at") else 0.0,
        unfit=bool(entry.get("unfit", False)),
        total_restarts=int(entry.get("total_restarts", 0)),
        last_action=RecoveryAction[str(entry.get("last_action", "none")).upper()],
        last_reason=str(entry.get("last_reason", ""))[:255])


class OutageFile:
    """Loads the ladders at start; saves them, one write at a time, newest state wins."""

    def __init__(self, path: Path, clock: Clock, boot: str | None = None) -> None:
        self.path = path
        self.clock = clock
        self.boot = boot_id() if boot is None else boot
        self._lock = asyncio.Lock()

    def load(self) -> dict[str, Ladder]:
        """The saved ladders by service name; {} if there is no usable file (said in the log)."""
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("%s cannot be read (%s): service ladders start afresh", self.path, error)
            return {}
        try:
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
            if raw.get("boot") == self.boot and self.boot:
                shift = 0.0
            else:   # a reboot: the monotonic clock started again
                passed = max(0.0, self.clock.time() - float(raw["wall"]))
                shift = self.clock.monotonic() - passed - float(raw["monotonic"])
            return {name: _load(entry, shift) for name, entry in raw["services"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("%s is not a valid outage history (%s): service ladders start afresh",
                        self.path, error)
            return {}

    def snapshot(self, ladders: dict[str, Ladder]) -> bytes:
        return (json.dumps({"format": FORMAT, "boot": self.boot, "wall": self.clock.time(),
                            "monotonic": self.clock.monotonic(),
                            "services": {name: _dump(ladder) for name, ladder in sorted(ladders.items())}},
                           indent=1) + "\n").encode()

    async def save(self, ladders: dict[str, Ladder]) -> None:
        """Write the ladders as they are now; returns once they are on disk."""
        data = self.snapshot(ladders)          # taken now, on the loop: a consistent view
        async with self._lock:
            await asyncio.to_thread(atomic_write, self.path, data)
