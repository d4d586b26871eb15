"""Inform targets: whether one hears us, judged from its acknowledgements (pure), and
the settings and the listener of its resynchronisation.

pysnmp retries each inform itself (`retries` more times, `timeout_ms` apart: the
target's own settings, RFC 3413's snmpTargetAddrRetryCount and Timeout) and then
reports it lost. One lost inform makes the target *unreachable*; the notifier then
sends it haoscarAlarmResyncStart every resynchronisation interval until one is
acknowledged, and follows that with the active alarms (`Notifier`, notify.py).

Results can arrive out of order (an inform acknowledged late, after a later one was
reported lost): only a result of an inform sent after the one that last decided the
target's state can change it, so an old loss never undoes a newer acknowledgement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from haoscar_snmp.config.schema import NotifyConfig


@dataclass(frozen=True)
class NotifyTarget:
    """One configured notification target: its position, pysnmp's notification entry name, the
    operator's name for it (in logs and haoscarNotifySubject), and whether it is sent
    informs (acknowledged) or traps (never acknowledged: nothing to watch)."""

    index: int           # position in [[snmp.targets]], from 1 (haoscarAlarmTargetIndex)
    entry: str
    name: str
    inform: bool


class Verdict(enum.Enum):
    SAME = "same"        # nothing changed
    LOST = "lost"        # reachable -> unreachable: start probing
    BACK = "back"        # unreachable -> reachable: resynchronise


class TargetWatch:
    """One inform target's state: reachable until an inform to it is lost."""

    def __init__(self, target: NotifyTarget) -> None:
        self.target = target
        self.reachable = True
        self.lost = 0            # informs lost since it was last reachable
        self._sent = 0           # sequence number of the last inform handed to pysnmp
        self._decided = 0        # sequence number of the inform whose result set `reachable`

    def sent(self) -> int:
        """An inform leaves: its sequence number, to give back with its result."""
        self._sent += 1
        return self._sent

    def result(self, seq: int, acknowledged: bool) -> Verdict:
        if not acknowledged and not self.reachable:
            self.lost += 1
        if seq <= self._decided:
            return Verdict.SAME                  # older than what decided the state
        self._decided = seq
        if acknowledged == self.reachable:
            return Verdict.SAME
        if acknowledged:
            # unreachable -> reachable: an inform got through
            self.reachable = True
            return Verdict.BACK
        # reachable -> unreachable: an inform was lost after all its retries
        self.reachable = False
        self.lost = 1
        return Verdict.LOST

    def describe(self) -> str:
        return f"{self.lost} inform(s) to target {self.target.name} lost"


@dataclass(frozen=True)
class ResyncSettings:
    """[notify] inform_resync and resync_interval_ms, read at use time (a reload applies)."""

    enabled: bool = True
    interval_s: float = 30.0


class ReachListener(Protocol):
    """Told when an inform target becomes unreachable or answers again (the alarm table)."""

    def target_reach(self, target: str, reachable: bool, text: str) -> None: ...


class NoReachListener:
    def target_reach(self, target: str, reachable: bool, text: str) -> None:
        pass


def resync_settings(notify: NotifyConfig) -> ResyncSettings:
    return ResyncSettings(notify.inform_resync, notify.resync_interval_ms / 1000)
