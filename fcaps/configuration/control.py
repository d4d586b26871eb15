"""Operator actions requested through haoscarControlAction (planned downtime, resets).

A SET only records the request; the action runs on the loop afterwards and its outcome
is published in haoscarControlResult / haoscarControlResultText and the event history.
Switchover and failback are carried out by the role state machine when there is a peer
head; without one they are refused, with the reason in the result text.
"""

from __future__ import annotations

import logging
from typing import Callable

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import ControlAction, ControlResult, State

log = logging.getLogger(__name__)

# A role-change request handler: returns (accepted, text). Set by the role state machine.
RoleRequest = Callable[[ControlAction, str], tuple[bool, str]]


class OperatorActions:
    """Sole writer of `state.control`; resets counters on request."""

    def __init__(self, state: State, bus: EventBus, clock: Clock) -> None:
        self.state = state
        self.bus = bus
        self.clock = clock
        self.role_request: RoleRequest | None = None

    def handle(self, action: ControlAction, principal: str) -> None:
        control = self.state.control
        control.last_action = action
        control.last_time = self.clock.time()
        if action == ControlAction.NONE:
            ok, text = True, "nothing to do"
        elif action == ControlAction.RESET_COUNTERS:
            self._reset_counters()
            ok, text = True, "counters reset"
        elif self.role_request is None:
            ok, text = False, f"{action.name.lower()} needs a peer head and the role state machine"
        else:
            ok, text = self.role_request(action, principal)
        if ok:
            control.result = ControlResult.SUCCEEDED
        else:
            control.result = ControlResult.REFUSED
        control.result_text = text[:255]
        self.bus.publish(Event(EventType.OPERATOR_ACTION, action.name.lower(),
                               Severity.INFO if ok else Severity.WARNING,
                               f"operator action {action.name.lower()} by {principal}: {text}",
                               control.last_time, {"principal": principal}))

    def _reset_counters(self) -> None:
        """Zero the resettable statistics. Counter32 objects may be reset only because the
        MIB documents this action as a discontinuity."""
        s = self.state
        s.cluster.failover_count = 0
        for row in s.services.values():
            row.restarts = 0
        for path in s.hb_paths.values():
            path.sent = path.received = path.lost = path.rejected = path.max_gap_us = 0
        for job in s.jobs.values():
            job.runs = job.failures = 0
            job.max_duration_us = 0
