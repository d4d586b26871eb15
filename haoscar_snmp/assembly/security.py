"""Security: refused requests, heartbeats and exchange datagrams become rate-limited
events and alarms (a reload's new credentials are audited by the SNMP front ends, which
put them into the running engine)."""

from __future__ import annotations

from fcaps.fault.alarms import Alarms
from fcaps.security.authfail import AuthFailures

from .parts import Core, Jobs


def auth_failures(core: Core, alarms: Alarms) -> AuthFailures:
    failures = AuthFailures(core.state, core.bus, alarms, core.clock)
    core.bus.subscribe("security", failures.on_event)
    return failures


def schedule(jobs: Jobs, failures: AuthFailures) -> None:
    """The refusals counted since the last cycle become events, once a cycle."""
    jobs.scheduler.add(failures)
