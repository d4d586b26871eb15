"""The active alarm table, in the spirit of RFC 3877 and ITU-T X.733.

An alarm is identified by (probable cause, subject), and to an NMS by its index: the
raise, any severity change and the clear of one alarm carry the same index, probable
cause and subject. One row per active alarm; clearing removes it.

Raising an alarm that is already active updates its row instead of adding one:

* a new severity (e.g. minor -> major) changes the row in place and publishes
  alarmChanged, which goes out as haoscarAlarmRaised with the same index and the new
  severity (the MIB's contract for a severity change);
* a new text only updates the row (text and last-updated time): the text is detail an
  NMS reads when it wants it, and a check whose error message varies must not send a
  notification at every check;
* the same severity and text change nothing, not even the last-updated time: the alarm
  is simply still on.

Every change of a row (added, removed, severity or text) moves haoscarAlarmLastChanged,
so an NMS that missed notifications can resynchronise by comparing that scalar and
re-reading the table.
"""

from __future__ import annotations

import enum
from dataclasses import replace

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import AlarmRow, State

TEXT_MAX = 255   # haoscarAlarmText's size


class AlarmType(enum.IntEnum):
    COMMUNICATIONS = 1
    QUALITY_OF_SERVICE = 2
    PROCESSING_ERROR = 3
    EQUIPMENT = 4
    ENVIRONMENTAL = 5


class ProbableCause(enum.IntEnum):
    HEAD_FAILURE = 1
    HEARTBEAT_PATH_FAILURE = 2
    LAN_INTERFACE_FAILURE = 3
    SERVICE_FAILURE = 4
    RECOVERY_EXHAUSTED = 5
    SPLIT_BRAIN = 6
    FAILOVER_FAILURE = 7
    CONFIGURATION_ERROR = 8
    AUTHENTICATION_FAILURE = 9
    CLOCK_DIFFERENCE = 10
    HEAD_ISOLATED = 11
    ALIAS_CONFLICT = 12
    SERVICE_CHECK_ERROR = 13
    LAN_FAILURE = 14
    CONFIGURATION_DRIFT = 15
    HEARTBEAT_PROCESS_FAILURE = 16
    PUBLIC_LAN_UNREACHABLE = 17
    NOTIFICATION_TARGET_UNREACHABLE = 18
    ACCOUNTING_FAILURE = 20         # the outage ledger cannot be written (fcaps/accounting)
    STALE_ADDRESS = 21              # an address resource's address left on this node (fcaps/fault/cluster)


class Alarms:
    """Sole writer of `state.alarms` and `state.alarm_last_changed`."""

    def __init__(self, state: State, bus: EventBus, clock: Clock) -> None:
        self.state = state
        self.bus = bus
        self.clock = clock
        self._by_key: dict[tuple[int, str], int] = {}
        self._next_index = 1

    def active(self, cause: ProbableCause, subject: str) -> bool:
        return (int(cause), subject) in self._by_key

    def raise_alarm(self, cause: ProbableCause, subject: str, severity: Severity,
                    alarm_type: AlarmType, text: str) -> None:
        """Raise the alarm, or update it if it is active (see the module's docstring)."""
        assert Severity.INDETERMINATE <= severity <= Severity.WARNING, severity
        text = text[:TEXT_MAX]
        key = (int(cause), subject)
        index = self._by_key.get(key)
        if index is not None:
            self._update(index, severity, text)
            return
        index = self._next_index
        self._next_index = index % 0xFFFFFFFF + 1
        now = self.clock.time()
        row = AlarmRow(int(severity), int(alarm_type), int(cause), subject, now, text, now)
        self.state.alarms.put((index,), row)
        self._by_key[key] = index
        self.state.alarm_last_changed = self.clock.monotonic()
        self.bus.publish(Event(EventType.ALARM_RAISED, subject, severity,
                               f"alarm raised: {text}", row.raised_time,
                               {"alarm_index": index}))

    def _update(self, index: int, severity: Severity, text: str) -> None:
        row = self.state.alarms[(index,)]
        if row.severity == severity and row.text == text:
            return                                   # still on, nothing new
        now = self.clock.time()
        self.state.alarms.put((index,), replace(row, severity=int(severity), text=text, last_updated=now))
        self.state.alarm_last_changed = self.clock.monotonic()
        if row.severity == severity:
            return                                   # a new text only: no notification
        old = Severity(row.severity)
        # X.733: the same alarm (same index, cause, subject) reported with its new severity.
        self.bus.publish(Event(
            EventType.ALARM_CHANGED, row.subject, severity,
            f"alarm severity {old.name.lower()} -> {severity.name.lower()}: {text}", now,
            {"alarm_index": index, "old": old.name.lower(), "new": severity.name.lower()}))

    def target_reach(self, target: str, reachable: bool, text: str) -> None:
        """The notifier's word on one of its inform targets (haoscar_snmp/snmp/notify.py):
        informs to it are lost, or it acknowledges again."""
        if reachable:
            self.clear(ProbableCause.NOTIFICATION_TARGET_UNREACHABLE, target, text)
        else:
            self.raise_alarm(ProbableCause.NOTIFICATION_TARGET_UNREACHABLE, target, Severity.MINOR,
                             AlarmType.COMMUNICATIONS, text)

    def clear(self, cause: ProbableCause, subject: str, text: str = "") -> None:
        index = self._by_key.pop((int(cause), subject), None)
        if index is None:
            return
        row = self.state.alarms.remove((index,))
        self.state.alarm_last_changed = self.clock.monotonic()
        assert row is not None
        self.bus.publish(Event(
            EventType.ALARM_CLEARED, subject, Severity.CLEARED,
            f"alarm cleared: {text or row.text}", self.clock.time(),
            {"alarm_index": index,
             "haoscarAlarmSeverity": int(Severity.CLEARED),
             "haoscarAlarmProbableCause": row.probable_cause,
             "haoscarAlarmSubject": row.subject}))
