"""Service monitor job: runs each active service's check command, publishes up/down.

This is the detection half of the seed's service monitoring. Each check runs bounded by
a timeout through the injected runner; a service is down after `retry_threshold`
consecutive failed checks (so one slow check does not page anyone), and recovered on the
first good one. The recovery ladder (restart, failover, notify) builds on these events.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from fcaps.configuration.control import is_counter_reset
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import HeadStatus, RowStatus, ServiceRow, ServiceStatus, State

from .alarms import Alarms, AlarmType, ProbableCause

CHECK_TIMEOUT_FRACTION = 0.8  # a check may use at most this share of the interval


class ServiceMonitor:
    """Sole writer of the services' runtime fields (status, failures, last failure)."""

    name = "services"

    def __init__(self, state: State, config: Callable[[], Config], runner: Runner,
                 bus: EventBus, alarms: Alarms, clock: Clock) -> None:
        self.state = state
        self.config = config
        self.runner = runner
        self.bus = bus
        self.alarms = alarms
        self.clock = clock

    def on_event(self, event: Event) -> None:
        """Event-bus subscriber: resetCounters zeroes the restart counts (ours to write)."""
        if is_counter_reset(event):
            for row in self.state.services.values():
                row.restarts = 0

    def local_head_active(self) -> bool:
        """Read from the state, as the role machine last wrote it (not asked of the role)."""
        return any(head.is_local and head.status == HeadStatus.ACTIVE for head in self.state.heads.values())

    def interval(self) -> float:
        return self.config().timing.service_check_interval_ms / 1000.0

    async def run_cycle(self) -> str:
        for row in self.state.services.values():
            if row.row_status != RowStatus.ACTIVE or not row.enabled:
                if row.status == ServiceStatus.FAILED:
                    self.alarms.clear(ProbableCause.SERVICE_FAILURE, row.name)
                row.status, row.consec_failures = ServiceStatus.DISABLED, 0   # any -> DISABLED
            elif row.status == ServiceStatus.DISABLED:
                row.status = ServiceStatus.UNKNOWN                              # DISABLED -> UNKNOWN
        active = self.local_head_active()   # active_only services run on the active head only
        if not active:  # RUNNING/FAILED/UNKNOWN -> STOPPED: not ours to run on a standby
            for row in self.state.services.values():
                if row.active_only and row.row_status == RowStatus.ACTIVE and row.enabled:
                    if row.status == ServiceStatus.FAILED:
                        self.alarms.clear(ProbableCause.SERVICE_FAILURE, row.name)
                    row.status, row.consec_failures = ServiceStatus.STOPPED, 0
        rows = [(key[0], row) for key, row in self.state.services.items()
                if row.row_status == RowStatus.ACTIVE and row.enabled and (active or not row.active_only)]
        if not rows:
            return "no active services to check"
        timeout = max(self.interval() * CHECK_TIMEOUT_FRACTION, 0.1)
        results = await asyncio.gather(*(self.runner.run(row.check, timeout) for _, row in rows))
        down = []
        for (index, row), result in zip(rows, results):
            if result.ok:
                self._good(index, row)
            else:
                self._bad(index, row, "timed out" if result.timed_out
                          else f"exit code {result.returncode}")
            if row.status == ServiceStatus.FAILED:
                down.append(row.name)
        if down:
            return f"{len(rows) - len(down)}/{len(rows)} services up; down: {', '.join(down)}"
        return f"{len(rows)}/{len(rows)} services up"

    def _good(self, index: int, row: ServiceRow) -> None:
        was = row.status
        row.consec_failures = 0
        row.status = ServiceStatus.RUNNING
        if was == ServiceStatus.FAILED:  # FAILED -> RUNNING: recovered
            self.bus.publish(Event(EventType.SERVICE_RECOVERED, row.name, Severity.INFO,
                                   f"service {row.name} is running again", self.clock.time(),
                                   {"service_index": index}))
            self.alarms.clear(ProbableCause.SERVICE_FAILURE, row.name)

    def _bad(self, index: int, row: ServiceRow, why: str) -> None:
        row.consec_failures += 1
        if row.status == ServiceStatus.FAILED or row.consec_failures < row.retry_threshold:
            return
        # UNKNOWN/RUNNING -> FAILED: threshold reached
        row.status = ServiceStatus.FAILED
        row.last_failure = self.clock.time()
        reason = f"check '{row.check}' failed {row.consec_failures} times ({why})"
        self.bus.publish(Event(EventType.SERVICE_DOWN, row.name, Severity.MAJOR,
                               f"service {row.name} is down: {reason}", row.last_failure,
                               {"service_index": index, "reason": reason}))
        self.alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, row.name, Severity.MAJOR,
                                AlarmType.PROCESSING_ERROR, f"service {row.name} is down: {reason}")
