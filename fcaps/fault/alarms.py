"""The active alarm table, in the spirit of RFC 3877 and ITU-T X.733.

An alarm is identified by (probable cause, subject): raising it twice changes nothing,
clearing it removes the row. Every change moves haoscarAlarmLastChanged and publishes an
alarmRaised / alarmCleared event, so an NMS that missed a notification can resync by
comparing that scalar and re-reading the table.
"""

from __future__ import annotations

import enum

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import AlarmRow, State


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
    ACCOUNTING_FAILURE = 20         # the outage ledger cannot be written (fcaps/accounting)


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
        key = (int(cause), subject)
        if key in self._by_key:
            return
        index = self._next_index
        self._next_index = index % 0xFFFFFFFF + 1
        row = AlarmRow(int(severity), int(alarm_type), int(cause), subject, self.clock.time(), text[:255])
        self.state.alarms.put((index,), row)
        self._by_key[key] = index
        self.state.alarm_last_changed = self.clock.monotonic()
        self.bus.publish(Event(EventType.ALARM_RAISED, subject, severity,
                               f"alarm raised: {text}", row.raised_time,
                               {"alarm_index": index}))

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
