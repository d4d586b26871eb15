"""Accounting: the outage ledger. Built last of the jobs, so that its first look sees
every row; stopped right after the jobs, before the role's release at shutdown."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from fcaps.accounting.ledger import Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.accounting.timeline import read_boot_id
from fcaps.fault.alarms import AlarmType, Alarms, ProbableCause
from haoscar_snmp.core.events import Severity

from .parts import Core, Jobs

log = logging.getLogger("haoscar_snmp")


def accounting(core: Core, alarms: Alarms, jobs: Jobs, service_resource: Callable[[], str] | None = None) -> None:
    """`service_resource`, with the corosync backend: the Pacemaker resource carrying the
    cluster's address; the membership's nodes, quorum and resources are then subjects."""
    ledger = _ledger(core, alarms, service_resource)
    if ledger is not None:
        core.bus.subscribe("accounting", ledger.on_event)
        jobs.scheduler.add(ledger)


def _ledger(core: Core, alarms: Alarms, service_resource: Callable[[], str] | None) -> Ledger | None:
    """The accounting ledger, or None when its file cannot be used: the agent keeps the
    cluster available without it, an alarm says so, and haoscarAcctTable stays empty."""
    path = core.state_dir / "accounting.sqlite"
    try:
        ledger_file = LedgerFile(path)
        core.stack.callback(ledger_file.close)
        members = {} if service_resource is None else {"membership": True, "service_resource": service_resource}
        ledger = Ledger(core.state, core.store.current, core.clock, ledger_file, read_boot_id(), alarms, **members)
        log.info("accounting: %s", ledger.start())
    except sqlite3.Error as exc:
        text = f"the outage ledger {path} cannot be used ({exc}): no outage is accounted in this run"
        log.error("accounting: %s", text)
        alarms.raise_alarm(ProbableCause.ACCOUNTING_FAILURE, core.state.cluster.local_head, Severity.MAJOR,
                           AlarmType.PROCESSING_ERROR, text)
        return None

    def stop() -> None:
        try:
            ledger.stop()
        except sqlite3.Error as exc:    # the next start closes what is open, from the marks
            log.error("accounting: cannot record the stop in %s: %s", path, exc)

    core.stack.callback(stop)
    return ledger
