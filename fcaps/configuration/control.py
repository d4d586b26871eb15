"""Operator actions requested through haoscarControlAction (planned downtime, resets).

A SET only records the request; the action runs on the loop afterwards and its outcome
is published in haoscarControlResult / haoscarControlResultText and the event history.
Switchover and failback are carried out by the role state machine when there is a peer
head; without one they are refused, with the reason in the result text. Pulling the
peer's cluster-wide settings and pushing this head's go to the settings exchange
(`sync.py`): the result reads inProgress until the peer has answered.

Both are given when this is built (None: there is no peer head); it is built after the
role state machine and the settings exchange, and listens to the configuration store's
requests (`ConfigStore.on_request`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Callable

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import ControlAction, ControlResult, OperatorRequest, ServiceSelection, State

log = logging.getLogger(__name__)

# A role-change request handler: returns (accepted, text). The role state machine's.
RoleRequest = Callable[[ControlAction, str], tuple[bool, str]]
# A settings-exchange request (pull or push): (accepted, text), once the peer answered.
ConfigRequest = Callable[[ControlAction, str], Awaitable[tuple[bool, str]]]
CONFIG_ACTIONS = (ControlAction.PULL_PEER_CONFIG, ControlAction.PUSH_LOCAL_CONFIG)


class OperatorActions:
    """Sole writer of `state.control`. A resetCounters action is published as an
    OPERATOR_ACTION event ("reset_counters"); each owner of counters resets its own
    (`is_counter_reset`)."""

    def __init__(self, state: State, bus: EventBus, clock: Clock, role_request: RoleRequest | None = None,
                 config_request: ConfigRequest | None = None) -> None:
        self.state = state
        self.bus = bus
        self.clock = clock
        self.role_request = role_request
        self.config_request = config_request
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, action: OperatorRequest, principal: str) -> None:
        control = self.state.control
        if isinstance(action, ServiceSelection):
            control.service_index = action.index     # for the resetService that follows
            return
        control.last_action = action
        control.last_time = self.clock.time()
        data: dict[str, object] = {"principal": principal}
        if action == ControlAction.NONE:
            ok, text = True, "nothing to do"
        elif action == ControlAction.RESET_COUNTERS:
            # Each owner resets its own counters when it sees this event (below).
            ok, text = True, "counters reset"
        elif action == ControlAction.RESET_SERVICE:
            # The service monitor resets the ladders when it sees this event (below).
            index = control.service_index
            row = self.state.services.get((index,))
            data["service_index"] = index
            if index == 0:
                ok, text = True, f"every service reset ({len(self.state.services)})"
            elif row is None:
                ok, text = False, f"no service with index {index} (set haoscarControlServiceIndex)"
            else:
                ok, text = True, f"service {row.name} reset"
        elif action in CONFIG_ACTIONS:
            if self.config_request is None:
                ok, text = False, f"{action.name.lower()} needs a peer head"
            else:
                control.result, control.result_text = ControlResult.IN_PROGRESS, "waiting for the peer head"
                task = asyncio.get_running_loop().create_task(self._config(action, principal, data))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
        elif self.role_request is None:
            ok, text = False, f"{action.name.lower()} needs a peer head and the role state machine"
        else:
            ok, text = self.role_request(action, principal)
        self._finish(action, principal, ok, text, data)

    async def _config(self, action: ControlAction, principal: str, data: dict[str, object]) -> None:
        assert self.config_request is not None
        try:
            ok, text = await self.config_request(action, principal)
        except Exception as exc:  # noqa: BLE001 - the action fails, the daemon goes on
            log.exception("operator action %s failed", action.name.lower())
            ok, text = False, f"failed: {exc}"
        self._finish(action, principal, ok, text, data)

    def _finish(self, action: ControlAction, principal: str, ok: bool, text: str,
                data: dict[str, object]) -> None:
        control = self.state.control
        if ok:
            control.result = ControlResult.SUCCEEDED
        else:
            control.result = ControlResult.REFUSED
        control.result_text = text[:255]
        self.bus.publish(Event(EventType.OPERATOR_ACTION, action.name.lower(),
                               Severity.INFO if ok else Severity.WARNING,
                               f"operator action {action.name.lower()} by {principal}: {text}",
                               control.last_time, data))
