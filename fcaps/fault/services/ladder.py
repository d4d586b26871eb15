"""A service's recovery ladder: what to do next, from its outage history and this check.

Pure: no I/O, no clock of its own. The service monitor feeds it each check's verdict and
each restart's outcome with the monotonic time, and carries out the steps it returns
(run a restart, hand the active role over, notify), publishing each as an event.

The ladder, per service (each number is a column of haoscarServiceTable):

* A service is declared **failed** after `fall` consecutive failed checks (the retry
  threshold), and **running** again after `rise` consecutive good ones.
* When it is declared failed, it is **restarted**, at most `max_restarts` times within
  the sliding `window` (seconds); a restart is judged by the checks that follow it: `fall`
  failures in a row mean it did not help, and the next failure goes one rung up.
* Past the restarts, the failure **escalates** by the policy: restart-then-failover asks
  for the active role to move to the peer (the monitor checks that the peer can take
  it; if not, the operator is notified instead), restart-then-notify and notify-only
  notify the operator and leave the service failed. No restart command, or
  `max_restarts = 0`, skips the restart rung.
* **Flapping**: a service declared failed `flap_threshold` times within the window
  escalates at once, even when each restart seemed to work.
* **Reset**: after `reset_after` consecutive good checks the incident is closed: the rung
  goes back to watching and the restarts are forgotten (failures stay in the flapping
  count until they leave the window). An operator reset does the same at once. A
  failover-policy service that handed the role over and is not checked here any more
  (active-only, this head now standby) is reset `failure_timeout` seconds after the
  handover, if that is not 0.

The state is persisted by the monitor after every step (fault/services/outages.py), so a daemon
restart in the middle of a ladder resumes on the same rung with the same counts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from haoscar_snmp.core.state import RecoveryAction, ServiceRung, ServiceStatus

S = ServiceStatus
RESTART_THEN_FAILOVER = "restart-then-failover"
NOTIFY_ONLY = "notify-only"


class StepKind(enum.Enum):
    DOWN = "down"                        # declared failed
    RESTART = "restart"                  # run the restart command now
    RESTART_FAILED = "restart failed"    # the command failed, or the service still fails after it
    FAILOVER = "failover"                # hand the active role over (the monitor checks it can)
    EXHAUSTED = "exhausted"              # the operator must act; the service stays failed
    RECOVERED = "recovered"              # running again
    RESET = "reset"                      # the incident is closed


@dataclass(frozen=True)
class Step:
    kind: StepKind
    reason: str


@dataclass(frozen=True)
class Policy:
    """A service's ladder settings, read from its configuration at each check."""

    fall: int = 3
    rise: int = 1
    max_restarts: int = 3
    window_s: float = 300.0
    reset_after: int = 10
    flap_threshold: int = 5
    failure_timeout_s: float = 0.0
    recovery: str = RESTART_THEN_FAILOVER
    has_restart: bool = True

    @property
    def restarts(self) -> bool:
        return self.has_restart and self.recovery != NOTIFY_ONLY and self.max_restarts > 0


@dataclass
class Ladder:
    """One service's ladder state: everything here is persisted (times are monotonic)."""

    status: ServiceStatus = S.UNKNOWN
    rung: ServiceRung = ServiceRung.WATCHING
    consec_fail: int = 0
    consec_ok: int = 0
    restarts: list[float] = field(default_factory=list)     # when each restart of the window ran
    failures: list[float] = field(default_factory=list)     # when it was declared failed (flapping)
    handed_over_at: float = 0.0          # when its failure handed the role over (0: it did not)
    unfit: bool = False                  # this head cannot serve it: do not make it active
    total_restarts: int = 0
    last_action: RecoveryAction = RecoveryAction.NONE
    last_reason: str = ""

    # -- inputs ------------------------------------------------------------------------

    def observe(self, up: bool, now: float, policy: Policy, reason: str) -> list[Step]:
        """One check's verdict (a check that could not run is not a verdict: not fed)."""
        self._prune(now, policy)
        steps: list[Step] = []
        if up:
            self.consec_ok += 1
            self.consec_fail = 0
            if self.status == S.UNKNOWN:
                self.status = S.RUNNING
            elif self.status in (S.FAILED, S.RECOVERING) and self.consec_ok >= policy.rise:
                worked = self.status == S.RECOVERING and self.rung == ServiceRung.RESTARTING
                self.status = S.RUNNING
                self.unfit = False                    # healthy again here
                steps.append(self._say(StepKind.RECOVERED, "the restart worked" if worked
                                       else f"passes its checks again ({reason})"))
            if self.rung != ServiceRung.WATCHING and self.status == S.RUNNING \
                    and self.consec_ok >= policy.reset_after:
                steps.append(self._reset(f"healthy for {self.consec_ok} checks"))
            return steps
        self.consec_fail += 1
        self.consec_ok = 0
        self.last_reason = reason
        if self.consec_fail < policy.fall:
            return steps
        if self.status in (S.UNKNOWN, S.RUNNING):
            self.status = S.FAILED
            self.failures.append(now)
            steps.append(Step(StepKind.DOWN, f"{self.consec_fail} failed checks ({reason})"))
            steps += self._next_rung(now, policy, reason)
        elif self.status == S.RECOVERING:
            self.status = S.FAILED
            steps.append(self._say(StepKind.RESTART_FAILED, f"still failing after restart "
                                                            f"{len(self.restarts)} ({reason})"))
            steps += self._next_rung(now, policy, reason)
        elif self.status == S.FAILED and self.rung == ServiceRung.RESTARTING:
            steps += self._next_rung(now, policy, reason)     # after a restart command that failed
        return steps

    def restart_done(self, ok: bool, detail: str) -> list[Step]:
        """The restart command finished: its verdict comes from the checks that follow."""
        self.consec_fail = 0
        if ok:
            self.status = S.RECOVERING
            return []
        self.status = S.FAILED
        return [self._say(StepKind.RESTART_FAILED, f"restart command {detail}")]

    def failover_refused(self, why: str) -> list[Step]:
        """The monitor could not hand the role over: the operator must act."""
        self.rung = ServiceRung.OPERATOR
        self.handed_over_at = 0.0
        self.last_action = RecoveryAction.NOTIFY
        return [self._say(StepKind.EXHAUSTED, why)]

    def tick(self, now: float, policy: Policy, checked: bool) -> list[Step]:
        """Between checks: the failure timeout of a service this head no longer checks."""
        if (not checked and self.handed_over_at and policy.failure_timeout_s
                and now - self.handed_over_at >= policy.failure_timeout_s):
            return [self._reset(f"failure timeout of {policy.failure_timeout_s:g} s passed since the handover")]
        return []

    def reset(self, reason: str) -> list[Step]:
        """Operator reset: the ladder starts again from the first rung, checked afresh."""
        steps = [self._reset(reason)]
        self.status = S.UNKNOWN
        self.consec_fail = self.consec_ok = 0
        self.failures.clear()
        return steps

    # -- rungs -------------------------------------------------------------------------

    def _next_rung(self, now: float, policy: Policy, reason: str) -> list[Step]:
        flapping = policy.flap_threshold and len(self.failures) >= policy.flap_threshold
        if not flapping and policy.restarts and len(self.restarts) < policy.max_restarts:
            self.restarts.append(now)
            self.total_restarts += 1
            self.rung = ServiceRung.RESTARTING
            self.status = S.RECOVERING
            self.consec_fail = 0
            self.last_action = RecoveryAction.RESTART
            return [self._say(StepKind.RESTART, f"restart {len(self.restarts)} of {policy.max_restarts} "
                                                f"within {policy.window_s:g} s ({reason})")]
        if flapping:
            why = f"flapping: failed {len(self.failures)} times within {policy.window_s:g} s"
        elif not policy.has_restart:
            why = "no restart command"
        elif policy.recovery == NOTIFY_ONLY:
            why = "policy notify-only"
        elif policy.max_restarts == 0:
            why = "restarts are off (max_restarts = 0)"
        else:
            why = f"{len(self.restarts)} restarts within {policy.window_s:g} s did not help"
        self.status = S.FAILED
        self.consec_fail = 0
        if policy.recovery == RESTART_THEN_FAILOVER:
            self.rung = ServiceRung.FAILOVER
            self.handed_over_at = now
            self.unfit = True
            self.last_action = RecoveryAction.FAILOVER
            return [self._say(StepKind.FAILOVER, why)]
        self.rung = ServiceRung.OPERATOR
        self.last_action = RecoveryAction.NOTIFY
        return [self._say(StepKind.EXHAUSTED, why)]

    def _reset(self, reason: str) -> Step:
        self.rung = ServiceRung.WATCHING
        self.restarts.clear()
        self.handed_over_at = 0.0
        self.unfit = False
        return self._say(StepKind.RESET, reason)

    def _say(self, kind: StepKind, reason: str) -> Step:
        self.last_reason = reason
        return Step(kind, reason)

    def _prune(self, now: float, policy: Policy) -> None:
        horizon = now - policy.window_s
        self.restarts[:] = [t for t in self.restarts if t > horizon]
        self.failures[:] = [t for t in self.failures if t > horizon]

    def restarts_in_window(self, now: float, policy: Policy) -> int:
        self._prune(now, policy)
        return len(self.restarts)
