"""The jobs: one scheduler for every area's jobs, created before the fault area and
started after the last job was added; the first part stopped at shutdown."""

from __future__ import annotations

from haoscar_snmp.core.events import EventType, is_counter_reset
from haoscar_snmp.core.scheduler import Scheduler

from .parts import Core, Jobs, Meters


def scheduler(core: Core, meters: Meters) -> Jobs:
    made = Scheduler(core.state.jobs, core.clock, meters.channel)
    return Jobs(made, made.waker("role"))


def follow(core: Core, jobs: Jobs) -> None:
    """The jobs follow the operator's resets, the configuration and the role."""
    scheduler = jobs.scheduler
    core.bus.subscribe("jobs", lambda event: scheduler.reset_counters() if is_counter_reset(event) else None)
    core.store.on_change.append(lambda _config: scheduler.reschedule())
    core.store.on_change.append(lambda _config: scheduler.wake("services"))   # rows enabled or not
    core.store.on_change.append(lambda _config: scheduler.wake("role"))       # aliases, timings
    # Active-only services are checked from the moment this head is active, not a cycle later.
    core.bus.subscribe("services-role", lambda event: scheduler.wake("services")
                       if event.type == EventType.ROLE_CHANGED else None)


def start(core: Core, jobs: Jobs) -> None:
    jobs.scheduler.start()
    core.stack.push_async_callback(jobs.scheduler.stop)    # the first to go at shutdown
