"""Carrying out a service's recovery ladder, and the rows and lookups it works on.

The ladder (fault/services/ladder.py) decides; this part acts. Each step of it is an
event with its reason, an alarm raised or cleared, and a row of haoscarServiceTable
(the ladder mirrored into the row). A restart command runs through the runner with its
own timeout. A failover is asked of the role machine by marking this head unfit
(`state.service_unfit`, which it reads and advertises to the peer), and only when the
active role can move (`handover_blocked`): else the ladder is told the failover was
refused. The ladders are saved after every step (fault/services/outages.py), before a
restart runs, so that a crash resumes where it stopped.

`ServiceRecovery` is the base of the service monitor (fault/services/monitor.py), which
builds it: the monitor owns the timers and the checks, and hands each verdict's steps
here. The lookups of a row by name and of a service's configuration by index are here
too, as both parts use them.
"""

from __future__ import annotations

import logging
from typing import Callable

from haoscar_snmp.config.checkspec import CheckSpec
from haoscar_snmp.config.schema import Config, ServiceConfig
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import HeadStatus, RowStatus, ServiceRow, ServiceStatus, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from fcaps.fault.heartbeat.proto import Flag
from .ladder import Ladder, Policy, Step, StepKind
from .outages import OutageFile

log = logging.getLogger(__name__)


def policy_of(config: Config, svc: ServiceConfig) -> Policy:
    return Policy(fall=config.retry_threshold(svc), rise=svc.rise, max_restarts=svc.max_restarts,
                  window_s=float(svc.restart_window_s), reset_after=svc.reset_after,
                  flap_threshold=svc.flap_threshold, failure_timeout_s=float(svc.failure_timeout_s),
                  recovery=str(svc.recovery), has_restart=bool(svc.restart_command()))


class ServiceRecovery:
    """The ladder's steps carried out, and the services' rows kept by them.

    Its fields are set by the monitor that builds it (`ServiceMonitor.__init__`)."""

    state: State
    config: Callable[[], Config]
    runner: Runner
    bus: EventBus
    alarms: Alarms
    clock: Clock
    outages: OutageFile | None
    wake_role: Callable[[], None]
    ladders: dict[str, Ladder]
    _index_of: dict[str, int]
    _by_index: tuple[Config | None, dict[int, ServiceConfig]]
    _specs: dict[int, CheckSpec]

    # -- ladder steps ------------------------------------------------------------------

    async def _carry_out(self, index: int, row: ServiceRow, steps: list[Step],
                         svc: ServiceConfig | None = None) -> bool:
        """Publish each step, act on it, save the ladders; True if there was anything to do."""
        if not steps:
            return False
        config = self.config()
        svc = svc or self._service(config, index)
        ladder = self._ladder(row.name)
        restart = False
        for step in steps:
            if svc is not None:
                self._mirror(row, ladder, config, svc)
            if step.kind is StepKind.DOWN:
                row.last_failure = self.clock.time()
                self._publish(EventType.SERVICE_DOWN, Severity.MAJOR, index, row,
                              f"service {row.name} is down: {step.reason}", step.reason)
                self.alarms.raise_alarm(ProbableCause.SERVICE_FAILURE, row.name, Severity.MAJOR,
                                        AlarmType.PROCESSING_ERROR, f"service {row.name} is down: {step.reason}")
            elif step.kind is StepKind.RESTART:
                self._publish(EventType.SERVICE_RESTARTED, Severity.WARNING, index, row,
                              f"service {row.name}: {step.reason}", step.reason)
                restart = True
            elif step.kind is StepKind.RESTART_FAILED:
                self._publish(EventType.SERVICE_RESTART_FAILED, Severity.MAJOR, index, row,
                              f"service {row.name}: {step.reason}", step.reason)
            elif step.kind is StepKind.FAILOVER:
                blocked = self.handover_blocked()
                if blocked:
                    await self._carry_out(index, row, ladder.failover_refused(
                        f"{step.reason}; the active role cannot move: {blocked}"), svc)
                    continue
                peer = self.state.peer.name if self.state.peer is not None else "the peer"
                self._publish(EventType.SERVICE_ESCALATED, Severity.MAJOR, index, row,
                              f"service {row.name}: {step.reason}; handing the active role to {peer}",
                              step.reason)
            elif step.kind is StepKind.EXHAUSTED:
                self._publish(EventType.SERVICE_RECOVERY_EXHAUSTED, Severity.CRITICAL, index, row,
                              f"service {row.name}: recovery exhausted ({step.reason}); operator action needed",
                              step.reason)
                self.alarms.raise_alarm(ProbableCause.RECOVERY_EXHAUSTED, row.name, Severity.CRITICAL,
                                        AlarmType.PROCESSING_ERROR,
                                        f"service {row.name}: recovery exhausted ({step.reason})")
            elif step.kind is StepKind.RECOVERED:
                self._publish(EventType.SERVICE_RECOVERED, Severity.INFO, index, row,
                              f"service {row.name} is running again: {step.reason}", step.reason)
                self._clear_alarms(row.name)
            elif step.kind is StepKind.RESET:
                self._publish(EventType.SERVICE_LADDER_RESET, Severity.INFO, index, row,
                              f"service {row.name}: incident closed ({step.reason})", step.reason)
                if row.status != ServiceStatus.FAILED:
                    self._clear_alarms(row.name)
                else:
                    self.alarms.clear(ProbableCause.RECOVERY_EXHAUSTED, row.name)
        if svc is not None:
            self._mirror(row, ladder, config, svc)
        self._update_unfit()
        await self._save()                     # before the restart runs: a crash resumes here
        if restart and svc is not None and self._checked_here(row):
            await self._restart(index, row, svc)
        return True

    async def _restart(self, index: int, row: ServiceRow, svc: ServiceConfig) -> None:
        timeout = svc.restart_timeout_ms / 1000.0
        result = await self.runner.run(svc.restart_command(), timeout)
        if result.timed_out:
            detail = f"did not finish within {svc.restart_timeout_ms} ms"
        elif result.ok:
            detail = "finished"
        else:
            first = result.output.splitlines()[0][:80] if result.output else ""
            detail = f"exited with {result.returncode}" + (f": {first}" if first else "")
        log.info("service %s: restart command %s", row.name, detail)
        if svc.active_only and svc.stop and not self.local_head_active():
            # The role was released while the restart ran, and the release stopped the
            # service before the restart started it again: stop it once more.
            log.warning("service %s: restarted while this head released the role; stopping it", row.name)
            await self.runner.run(svc.stop, timeout)
        found = self._find(row.name)
        if found is None:
            return
        ladder = self._ladder(row.name)
        steps = ladder.restart_done(result.ok, detail)
        self._mirror(row, ladder, self.config(), svc)
        await self._carry_out(index, row, steps, svc)
        if not steps:
            await self._save()

    def _checked_here(self, row: ServiceRow) -> bool:
        """In service on this head now: an active-only service is never judged, let alone
        restarted, on a head that is not active (releasing included: it was just stopped)."""
        if row.status in (ServiceStatus.DISABLED, ServiceStatus.STOPPED):
            return False
        return not row.active_only or self.local_head_active()

    def handover_blocked(self) -> str:
        """Why the active role cannot move to the peer now ("" = it can)."""
        if not self.local_head_active():
            return "this head is not active"
        peer = self.state.peer
        if peer is None:
            return "there is no peer head"
        if not peer.heard:
            return f"peer {peer.name} is not heard"
        if peer.status != HeadStatus.STANDBY:
            return f"peer {peer.name} is {peer.status.name.lower()}"
        flags = Flag(peer.flags)
        if not flags & Flag.QUORUM_OK or flags & (Flag.ISOLATED | Flag.PUBLIC_DOWN | Flag.PUBLIC_LOST):
            return f"peer {peer.name} is not fit to be active"
        if flags & Flag.SERVICE_FAILED:
            return f"peer {peer.name} has a failed service too"
        return ""

    def local_head_active(self) -> bool:
        """Read from the state, as the role machine last wrote it (not asked of the role)."""
        return any(head.is_local and head.status == HeadStatus.ACTIVE for head in self.state.heads.values())

    # -- rows, ladders and configuration, looked up --------------------------------------

    def _rows(self) -> list[tuple[int, ServiceRow]]:
        return [(key[0], row) for key, row in self.state.services.items()]

    def _find(self, name: str) -> tuple[int, ServiceRow] | None:
        """The row of a service by name: the index remembered from the last lookup, checked
        against the table (rows come and go by SNMP), else a search."""
        index = self._index_of.get(name)
        row = self.state.services.get((index,)) if index is not None else None
        if row is not None and row.name == name:
            return index, row
        found = next(((i, row) for i, row in self._rows() if row.name == name), None)
        if found is None:
            self._index_of.pop(name, None)
        else:
            self._index_of[name] = found[0]
        return found

    def _service(self, config: Config, index: int) -> ServiceConfig | None:
        """The configuration of the service at `index`, by a map made once per configuration."""
        if self._by_index[0] is not config:
            self._by_index = (config, {svc.index: svc for svc in config.services})
            self._specs = {}
        return self._by_index[1].get(index)

    def _spec(self, svc: ServiceConfig) -> CheckSpec:
        """The service's check, parsed once per configuration."""
        spec = self._specs.get(svc.index)
        if spec is None or self._by_index[1].get(svc.index) is not svc:
            spec = self._specs[svc.index] = svc.spec()
        return spec

    def _ladder(self, name: str) -> Ladder:
        ladder = self.ladders.get(name)
        if ladder is None:
            ladder = self.ladders[name] = Ladder()
        return ladder

    def _clear_alarms(self, name: str) -> None:
        for cause in (ProbableCause.SERVICE_FAILURE, ProbableCause.RECOVERY_EXHAUSTED,
                      ProbableCause.SERVICE_CHECK_ERROR):
            self.alarms.clear(cause, name)

    def _mirror(self, row: ServiceRow, ladder: Ladder, config: Config, svc: ServiceConfig) -> None:
        """The ladder as haoscarServiceTable shows it."""
        if row.status not in (ServiceStatus.DISABLED, ServiceStatus.STOPPED):
            row.status = ladder.status
        row.consec_failures = ladder.consec_fail
        row.rung = ladder.rung
        row.restarts_in_window = ladder.restarts_in_window(self.clock.monotonic(), policy_of(config, svc))
        row.restarts = ladder.total_restarts
        if ladder.last_action != row.last_action:
            row.last_action_time = self.clock.time()
        row.last_action = ladder.last_action
        row.last_reason = ladder.last_reason[:255]

    def _update_unfit(self) -> None:
        names = {row.name for _, row in self._rows() if row.row_status == RowStatus.ACTIVE and row.enabled}
        unfit = sorted(name for name, ladder in self.ladders.items() if ladder.unfit and name in names)
        text = f"service {', '.join(unfit)} failed on this head" if unfit else ""
        if text != self.state.service_unfit:
            self.state.service_unfit = text
            log.warning("%s", text or "no failed service keeps this head from being active any more")
            self.wake_role()

    def _publish(self, kind: EventType, severity: Severity, index: int, row: ServiceRow, text: str,
                 reason: str) -> None:
        self.bus.publish(Event(kind, row.name, severity, text, self.clock.time(),
                               {"service_index": index, "reason": reason, "rung": row.rung.name.lower(),
                                "action": row.last_action.name.lower()}))

    async def _save(self) -> None:
        if self.outages is not None:
            try:
                await self.outages.save(self.ladders)
            except OSError as error:
                log.error("cannot save the service outage history to %s: %s", self.outages.path, error)
