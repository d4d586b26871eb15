"""The event bus: every state transition publishes exactly one event.

Notifications, the event history, the alarm table and the accounting ledger all consume
the same events, so they cannot disagree about what happened. Publishing is synchronous
and subscribers must be quick and must not block: they record, and schedule any slow
work (sending an inform, writing SQLite) on the loop.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .bug import BUG_MARKER

log = logging.getLogger(__name__)


class EventType(enum.IntEnum):
    """Mirrors HAOSCAR-MIB haoscarEventType (values are the MIB's)."""

    AGENT_STARTED = 1
    HEAD_DOWN = 2
    HEAD_UP = 3
    FAILOVER_STARTED = 4
    FAILOVER_COMPLETED = 5
    FAILOVER_FAILED = 6
    FAILBACK_COMPLETED = 7
    HB_PATH_DOWN = 8
    HB_PATH_UP = 9
    LAN_IF_DOWN = 10
    LAN_IF_UP = 11
    SERVICE_DOWN = 12
    SERVICE_RECOVERED = 13
    SERVICE_RECOVERY_EXHAUSTED = 14
    SPLIT_BRAIN_DETECTED = 15
    SPLIT_BRAIN_RESOLVED = 16
    ALARM_RAISED = 17
    ALARM_CLEARED = 18
    CONFIG_CHANGED = 19
    ROLE_CHANGED = 20
    SERVICE_RESTARTED = 21
    OPERATOR_ACTION = 22
    AGENT_STOPPING = 23
    SERVICE_RESTART_FAILED = 24
    SERVICE_ESCALATED = 25
    SERVICE_LADDER_RESET = 26
    LAN_FAILED = 27
    LAN_RECOVERED = 28
    CONFIG_DRIFT = 29
    CONFIG_DRIFT_CLEARED = 30
    CONFIG_SYNCED = 31          # this head adopted the peer's settings, or the peer took this head's
    HB_PROCESS_FAILED = 32      # this head's heartbeat process stopped reporting or exited
    HB_PROCESS_RESTARTED = 33   # a new heartbeat process runs
    PUBLIC_LAN_LOST = 34        # a head reaches none of its public targets (its own or the peer's word)
    PUBLIC_LAN_REGAINED = 35    # it reaches them again (after the hold-down)
    ALARM_CHANGED = 36          # an active alarm's severity changed (its row updated in place)
    SET_REFUSED = 37            # a SET refused: who, the SNMP error, why (rate-limited)
    # The cluster past two heads (fcaps/fault/cluster): what Corosync and Pacemaker say.
    CLUSTER_NODE_JOINED = 38    # a node entered Corosync's membership (data: node_id)
    CLUSTER_NODE_LEFT = 39      # a node left it (data: node_id)
    QUORUM_LOST = 40            # the local partition is no longer quorate
    QUORUM_REGAINED = 41        # it is quorate again
    MEMBERSHIP_UNKNOWN = 42     # Corosync or Pacemaker (the subject) cannot be read
    MEMBERSHIP_RECOVERED = 43   # it can be read again
    RESOURCE_MOVED = 44         # a resource's node or role changed (data: resource_index, old, new)
    RESOURCE_FAILED = 45        # Pacemaker marks it failed, or its fail count grew
    RESOURCE_RECOVERED = 46     # it is unmarked and runs again
    ADDRESS_STALE = 47          # an address resource's address left on this node (data: resource_index)
    ADDRESS_STALE_CLEARED = 48  # it is gone, or its resource is placed here again
    SNMP_AUTH_FAILURE = 50      # SNMP requests refused for their credentials (who, why; rate-limited)
    PEER_AUTH_FAILURE = 51      # heartbeats or settings-exchange datagrams refused (rate-limited)
    CREDENTIALS_CHANGED = 52    # a reload replaced SNMP credentials (what, never the values)


class Severity(enum.IntEnum):
    """Mirrors HAOSCAR-MIB HaoscarSeverity (ITU X.733 perceived severity, plus info)."""

    CLEARED = 1
    INDETERMINATE = 2
    CRITICAL = 3
    MAJOR = 4
    MINOR = 5
    WARNING = 6
    INFO = 7


@dataclass(frozen=True)
class Event:
    """One thing that happened. `data` carries what notifications need beyond the text:
    e.g. reason, duration_ms, principal, oid, old, new, and row keys such as service_index.

    LAN_FAILED and LAN_RECOVERED carry `"lan"`: the LAN's `Lan` value as an int, 1 (lanA)
    or 2 (lanB), which is the index of its haoscarLanTable row; their notifications read
    that row, so the poller updates the row before it publishes. The subject is the LAN's
    label ("lanA").
    """

    type: EventType
    subject: str
    severity: Severity
    text: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out of events to subscribers, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []

    def subscribe(self, name: str, callback: Subscriber) -> None:
        self._subscribers.append((name, callback))

    def publish(self, event: Event) -> None:
        for name, callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # one broken consumer must not hide the event from the others
                log.exception(
                    "event consumer %s failed on %s; %s", name, event.type.name, BUG_MARKER,
                )


def is_service_reset(event: Event) -> bool:
    """The event of an accepted resetService action (the service monitor listens)."""
    return (event.type == EventType.OPERATOR_ACTION and event.subject == "reset_service"
            and event.severity == Severity.INFO)


def is_counter_reset(event: Event) -> bool:
    """The event of an accepted resetCounters action (every owner of counters listens)."""
    return (event.type == EventType.OPERATOR_ACTION and event.subject == "reset_counters"
            and event.severity == Severity.INFO)
