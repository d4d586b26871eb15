"""Service monitoring: each service checked on its own timer, its verdicts handed to its ladder.

The seed's service monitor: every configured service is checked by its check type
(fault/services/checks.py) at its own interval, on the monotonic clock it is given, with at most
`MAX_IN_FLIGHT` checks running at once; a check never blocks the loop and is bounded by
its timeout. Each verdict goes to the service's recovery ladder (fault/services/ladder.py),
and the ladder's steps are carried out by the base class, `ServiceRecovery`
(fault/services/recovery.py): events, alarms, restarts, the failover request, the rows.

A check that cannot be carried out (the command cannot run, no systemd, ...) is not a
verdict on the service: it is counted, raises a serviceCheckError alarm, and leaves the
service's state as it was. A check that runs out of time is a failed check.

Active-only services run on the active head only: the role machine starts them at
takeover and stops them at release; on a standby they show `stopped` and are neither
checked nor restarted. A disabled or notInService row is not checked, and its ladder
starts afresh when it comes back.

Checks are spread over their interval (many services starting together do not all fall
due at once) and fall due on a 50 ms grid, so that one wake-up of the loop runs several:
on a virtual machine a wake-up costs as much CPU as a check.

The job (`run_cycle`, every second and whenever the configuration changes) keeps the
timers in step with the rows, moves rows between disabled, stopped and checked, and
lets the failure timeout of handed-over services run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from typing import Callable

from haoscar_snmp.config.checkspec import CheckSpec
from haoscar_snmp.config.schema import Config, ServiceConfig
from haoscar_snmp.core.bug import BUG_MARKER
from haoscar_snmp.core.clock import Clock, Timer
from haoscar_snmp.core.events import Event, EventBus, Severity, is_counter_reset, is_service_reset
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import RowStatus, ServiceRow, ServiceRung, ServiceStatus, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .checks import Checker, Outcome, Verdict
from .ladder import Ladder
from .outages import OutageFile
from .recovery import ServiceRecovery, policy_of

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32          # checks running at once, all services together
SYNC_INTERVAL_S = 1.0       # the job: rows <-> timers, failure timeouts
TICK_S = 0.05               # checks fall due on this grid, so that one wake-up runs several


class ServiceMonitor(ServiceRecovery):
    """Sole writer, with its base `ServiceRecovery`, of the services' runtime fields and of
    `state.service_unfit`."""

    name = "services"

    def __init__(self, state: State, config: Callable[[], Config], checker: Checker, runner: Runner,
                 bus: EventBus, alarms: Alarms, clock: Clock, outages: OutageFile | None = None,
                 wake_role: Callable[[], None] = lambda: None, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.state = state
        self.config = config
        self.checker = checker
        self.runner = runner
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.outages = outages
        self.wake_role = wake_role
        self.ladders: dict[str, Ladder] = outages.load() if outages is not None else {}
        self._slots = asyncio.Semaphore(max_in_flight)
        self._busy: set[str] = set()            # a check or a restart of this service is running
        self._timers: dict[str, Timer] = {}
        self._due: dict[str, float] = {}
        # One callback per service, made once: a timer armed every interval would otherwise
        # bring a new bound method and argument tuple each time, objects that live as long
        # as the interval and so reach the collector's oldest generation.
        self._firers: dict[str, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._index_of: dict[str, int] = {}
        self._queued: dict[str, None] = {}       # due, waiting for their turn to start (in order)
        self._draining: asyncio.Handle | None = None
        self._by_index: tuple[Config | None, dict[int, ServiceConfig]] = (None, {})
        self._specs: dict[int, CheckSpec] = {}

    # -- the job -----------------------------------------------------------------------

    def interval(self) -> float:
        return SYNC_INTERVAL_S

    async def run_cycle(self) -> str:
        """Rows <-> timers and states; failure timeouts. Returns the services' summary."""
        config = self.config()
        now = self.clock.monotonic()
        active = self.local_head_active()
        wanted: set[str] = set()
        arming: list[tuple[str, float, float]] = []
        changed = False
        for index, row in self._rows():
            svc = self._service(config, index)
            if svc is None or row.row_status != RowStatus.ACTIVE or not row.enabled:
                changed |= self._set_aside(row, ServiceStatus.DISABLED)
                continue
            ladder = self._ladder(row.name)
            if row.active_only and not active:
                if row.status != ServiceStatus.STOPPED:
                    self._clear_alarms(row.name)
                    row.status, row.consec_failures = ServiceStatus.STOPPED, 0
                changed |= await self._carry_out(index, row, ladder.tick(now, policy_of(config, svc), False))
                continue
            first = now
            if row.status == ServiceStatus.STOPPED:
                # Just started at takeover: give it one interval to come up before judging it.
                first = now + config.check_interval_ms(svc) / 1000.0
            if row.status in (ServiceStatus.DISABLED, ServiceStatus.STOPPED):
                row.status = ladder.status                 # back in service: unknown, or as saved
            wanted.add(row.name)
            if row.name not in self._timers:
                self._mirror(row, ladder, config, svc)    # a ladder kept from before shows at once
                arming.append((row.name, first, config.check_interval_ms(svc) / 1000.0))
        # New rows are checked at once; many at a time (the daemon starting) are spread
        # over their interval, so that their checks do not all fall on the same instant.
        for k, (name, first, interval) in enumerate(arming):
            self._arm(name, first + interval * k / len(arming))
        for name in [n for n in self._timers if n not in wanted]:
            self._timers.pop(name).cancel()
            self._due.pop(name, None)
            self._firers.pop(name, None)
        names = {row.name for _, row in self._rows()}
        for name in [n for n in self.ladders if n not in names]:
            del self.ladders[name]                         # the row is gone: so is its history
            changed = True
        self._update_unfit()
        if changed:
            await self._save()
        return self._summary()

    async def stop(self) -> None:
        """Cancel the timers, checks and restarts quietly, and wait for them."""
        self._stopped = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._firers.clear()
        if self._draining is not None:
            self._draining.cancel()
            self._draining = None
        self._queued.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settle(self) -> None:
        """Wait until no check, restart or reset runs (tests, and an orderly stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- bus subscriber ----------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """resetCounters zeroes our counters; resetService resets ladders (ours to write)."""
        if is_counter_reset(event):
            for _, row in self._rows():
                row.restarts = row.check_errors = row.check_timeouts = 0
            for ladder in self.ladders.values():
                ladder.total_restarts = 0
        elif is_service_reset(event):
            wanted = int(event.data.get("service_index", 0))
            who = event.data.get("principal", "an operator")
            for index, row in self._rows():
                if wanted in (0, index) and row.name in self.ladders:
                    self._spawn(self._reset(index, row, f"reset by {who}"))

    async def _reset(self, index: int, row: ServiceRow, reason: str) -> None:
        ladder = self._ladder(row.name)
        steps = ladder.reset(reason)
        self._clear_alarms(row.name)
        if row.status not in (ServiceStatus.DISABLED, ServiceStatus.STOPPED):
            row.status = ServiceStatus.UNKNOWN
        await self._carry_out(index, row, steps)
        if row.name in self._timers and not self._stopped:
            self._timers.pop(row.name).cancel()
            self._arm(row.name, self.clock.monotonic())   # checked afresh, now

    # -- checks ------------------------------------------------------------------------

    def _arm(self, name: str, due: float) -> None:
        """The next check at `due`, run on the first tick of the grid at or after it: every
        wake-up of the loop costs, and one that runs ten checks costs little more than one."""
        self._due[name] = due
        # `due` is a time of our clock: its timer is armed on that clock, never on the loop's.
        firer = self._firers.get(name)
        if firer is None:
            firer = self._firers[name] = functools.partial(self._fire, name)
        self._timers[name] = self.clock.call_at(math.ceil(due / TICK_S) * TICK_S, firer)

    def _fire(self, name: str) -> None:
        config = self.config()
        found = self._find(name)
        if found is None or self._stopped:
            self._timers.pop(name, None)
            return
        index, _row = found
        svc = self._service(config, index)
        if svc is None:
            self._timers.pop(name, None)
            return
        interval = config.check_interval_ms(svc) / 1000.0
        now = self.clock.monotonic()
        following = self._due.get(name, now) + interval
        self._arm(name, following if following > now else now + interval)
        if name not in self._busy:      # still checking or restarting: this round is skipped
            self._queued[name] = None
            if self._draining is None:
                self._draining = asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Start one queued check and come back in the next pass of the loop for the next:
        the checks of a tick start one pass apart, so a timer falling due meanwhile is
        late by one check's start, not by all of them; and no pass waits for the network."""
        self._draining = None
        if not self._queued or self._stopped:
            return
        name = next(iter(self._queued))
        del self._queued[name]
        self._spawn(self.check_now(name))
        if self._queued:
            self._draining = asyncio.get_running_loop().call_soon(self._drain)

    async def check_now(self, name: str) -> None:
        """Check one service now and carry out what its ladder says."""
        found = self._find(name)
        if found is None or name in self._busy or not self._checked_here(found[1]):
            return
        index, row = found
        svc = self._service(self.config(), index)
        if svc is None:
            return
        self._busy.add(name)
        try:
            async with self._slots:
                outcome = await self.checker.check(self._spec(svc), self.config().check_timeout_ms(svc) / 1000.0)
            found = self._find(name)
            if found is None or not self._checked_here(found[1]):
                return                                      # changed while it was checked
            await self._verdict(index, found[1], svc, outcome)
        finally:
            self._busy.discard(name)

    async def _verdict(self, index: int, row: ServiceRow, svc: ServiceConfig, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.ERROR:
            row.check_errors += 1
            row.last_reason = f"check could not run: {outcome.detail}"[:255]
            self.alarms.raise_alarm(ProbableCause.SERVICE_CHECK_ERROR, row.name, Severity.MINOR,
                                    AlarmType.PROCESSING_ERROR,
                                    f"the check of service {row.name} cannot run: {outcome.detail}")
            return
        self.alarms.clear(ProbableCause.SERVICE_CHECK_ERROR, row.name)
        if outcome.timed_out:
            row.check_timeouts += 1
        ladder = self._ladder(row.name)
        config = self.config()
        steps = ladder.observe(outcome.verdict is Verdict.UP, self.clock.monotonic(), policy_of(config, svc),
                               outcome.detail)
        self._mirror(row, ladder, config, svc)
        if steps:
            await self._carry_out(index, row, steps, svc)

    # -- helpers -----------------------------------------------------------------------

    def _set_aside(self, row: ServiceRow, status: ServiceStatus) -> bool:
        """A row not in service: no timer, no alarms, a fresh ladder when it comes back."""
        if row.status == status and row.name not in self.ladders:
            return False
        self._clear_alarms(row.name)
        row.status, row.consec_failures = status, 0
        row.rung, row.restarts_in_window = ServiceRung.WATCHING, 0
        return self.ladders.pop(row.name, None) is not None

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("service task raised; %s", BUG_MARKER, exc_info=task.exception())

    def _summary(self) -> str:
        checked = [row for _, row in self._rows()
                   if row.status not in (ServiceStatus.DISABLED, ServiceStatus.STOPPED)]
        if not checked:
            return "no active services to check"
        down = [row.name for row in checked if row.status in (ServiceStatus.FAILED, ServiceStatus.RECOVERING)]
        up = sum(1 for row in checked if row.status == ServiceStatus.RUNNING)
        sentence = f"{up}/{len(checked)} services up"
        return f"{sentence}; down: {', '.join(down)}" if down else sentence
