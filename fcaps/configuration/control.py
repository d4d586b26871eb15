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
    """Sole writer of `state.control`. A resetCounters action is published as an
    OPERATOR_ACTION event ("reset_counters"); each owner of counters resets its own
    (`is_counter_reset`)."""

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
            # Each owner resets its own counters when it sees this event (below).
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


def is_counter_reset(event: Event) -> bool:
    """The event of an accepted resetCounters action (every owner of counters listens)."""
    return (event.type == EventType.OPERATOR_ACTION and event.subject == "reset_counters"
            and event.severity == Severity.INFO)
