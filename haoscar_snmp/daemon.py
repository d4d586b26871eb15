"""The composition root: the one place that wires core, config, snmp and fcaps together.

Start-up order matters: configuration first (refuse to start on any problem), then the
state model mirrors it, then the SNMP agent opens its listeners, then jobs start, and
only then is agentStarted announced. Signals only record and wake:
SIGTERM/SIGINT ask the loop to stop, SIGHUP asks it to reload. `Daemon._build` lists the
areas in that order; `haoscar_snmp/assembly/` builds each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path

from fcaps.configuration.store import ConfigStore
from haoscar_snmp import __version__
from haoscar_snmp.assembly import (
    accounting,
    cluster,
    configuration,
    fault,
    performance,
    schedule,
    security,
    snmp,
    views,
)
from haoscar_snmp.assembly.parts import StartFailed
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.heap import HeapSettler, settle_now
from haoscar_snmp.core.runner import Runner, ShellRunner, watch_children_with_pidfd

__all__ = ["Daemon", "StartFailed", "setup_logging"]

log = logging.getLogger("haoscar_snmp")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, syslog: bool) -> None:
    """stderr always (journald captures it under systemd); syslog optionally."""
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    if syslog and os.path.exists("/dev/log"):
        sys_handler = logging.handlers.SysLogHandler(address="/dev/log")
        sys_handler.setFormatter(logging.Formatter("haoscar-snmp[%(process)d]: %(levelname)s %(name)s: %(message)s"))
        root.addHandler(sys_handler)
    root.setLevel(level.upper())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    # "skipped: maximum number of running instances" is normal when a 100 ms job is woken
    # between ticks; JobRunner already refuses overlapping cycles.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


class Daemon:
    """Builds everything from the config, serves until asked to stop, tears down cleanly.

    `run` is build, serve, shut down. Building registers every part's teardown on one
    `AsyncExitStack` as the part comes up, so whatever was built is torn down in reverse
    order, whether the start fails half-way or the daemon stops normally: jobs stop
    first, then an active head releases its aliases (and says so to its peer), then the
    heartbeat process stops, queued notifications leave, the SNMP agent closes, and the
    state directory is unlocked last. With the corosync backend no heartbeat process or
    role machine runs: the cluster area (Pacemaker's alert socket, its reader, the
    Corosync source, the cluster watch) stops in their place.
    """

    def __init__(self, config_path: Path | None, *, state_dir: Path | None = None,
                 log_level: str | None = None, clock: Clock | None = None,
                 runner: Runner | None = None) -> None:
        self.config_path = config_path
        self.state_dir = state_dir
        self.log_level = log_level
        self.clock = clock or SystemClock()
        self.runner = runner or ShellRunner()
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()

    async def run(self) -> int:
        watch_children_with_pidfd()
        # Signals are only recorded, from the first moment: a SIGHUP or SIGTERM that comes
        # while the daemon is still starting (the SNMP agent already answers) is acted on
        # once it serves, instead of killing it half-built.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        async with contextlib.AsyncExitStack() as stack:
            try:
                store, bus = await self._build(stack)
            except StartFailed as exc:
                log.error("not starting: %s", exc)
                return 2
            await self._serve(store)
            log.info("stopping")
            bus.publish(Event(EventType.AGENT_STOPPING, store.effective.cluster.local_head, Severity.INFO,
                              "haoscar-snmp stopping", self.clock.time()))
        log.info("stopped")
        return 0

    # -- build ---------------------------------------------------------------------------

    async def _build(self, stack: contextlib.AsyncExitStack) -> tuple[ConfigStore, EventBus]:
        """Every part, area by area, in the order they start; each registers its teardown
        on `stack` as it comes up (the class docstring says the order they stop in)."""
        core = configuration.configuration(self.config_path, self.state_dir, self.clock, self.runner, stack)
        self._logging(core.store)
        configuration.begin_run(core)
        fault.event_history(core)
        meters = performance.performance(core)
        alarms = await fault.alarms_and_mail(core)
        starting = configuration.starting_actions(core)
        failures = security.auth_failures(core, alarms)
        mib = snmp.front_ends(core, meters, alarms, failures)
        performance.start_collector(core, meters)
        jobs = schedule.scheduler(core, meters)
        # With Corosync and Pacemaker (membership.backend), no heartbeat, role machine or
        # public reach of ours: nothing here moves an address; the cluster area reads them.
        own = not core.store.effective.corosync
        heartbeat = await fault.heartbeat(core, meters, alarms, jobs, self._stop.set) if own else None
        sync = configuration.cluster_sync(core, alarms, heartbeat)
        role = await fault.role(core, alarms, jobs, heartbeat, sync) if own else None
        service_resource = None if own else await cluster.corosync(core, alarms)
        configuration.operator_actions(core, jobs, role, sync, heartbeat, starting)
        fault.services(core, alarms, jobs)
        prober = await fault.lan(core, alarms, jobs)
        security.schedule(jobs, failures)
        if own:
            fault.public_reach(core, alarms, jobs, prober)
        schedule.follow(core, jobs)
        accounting.accounting(core, alarms, jobs, service_resource)
        await views.web(core, mib)      # before the jobs start: agentStarted stays the first event
        schedule.start(core, jobs)
        await views.status(core, mib)
        settler = HeapSettler(self.clock)
        stack.callback(settler.stop)
        core.store.on_change.append(settler.reloaded)
        self._started(core.store.effective, core.bus)
        settler.start()
        return core.store, core.bus

    def _started(self, config: Config, bus: EventBus) -> None:
        bus.publish(Event(EventType.AGENT_STARTED, config.cluster.local_head, Severity.INFO,
                          f"haoscar-snmp {__version__} started on head {config.cluster.local_head} "
                          f"(pid {os.getpid()})", self.clock.time()))
        # Everything built so far (MIB trees, models, modules) lives as long as the daemon:
        # move it out of the collector's way. A full collection otherwise walks it all,
        # pausing the loop (role decisions, takeovers) for 60 to 150 ms under SNMP load
        # (measured). The heartbeat process has a heap of its own and is not paused.
        # The settler does it again once the jobs' first cycles have built their rows,
        # and after every reload (haoscar_snmp/core/heap.py).
        settle_now("started")
        where = config.snmp.listen[0] if config.snmp.listen else "<snmpd's address>"
        log.info("ready: try  snmpwalk -v2c -c <community> %s 1.3.6.1.4.1.32473.1", where)

    def _logging(self, store: ConfigStore) -> None:
        """Logging as the configuration says (unless the command line set the level), set
        up again when a reload changes [log]; advisories at start and after every change."""
        config = store.effective
        if not self.log_level:
            setup_logging(str(config.log.level), config.log.syslog)
            current = (config.log.level, config.log.syslog)

            def relog(changed: Config) -> None:
                nonlocal current
                if (changed.log.level, changed.log.syslog) != current:
                    current = (changed.log.level, changed.log.syslog)
                    setup_logging(str(changed.log.level), changed.log.syslog)
                    log.info("logging set up again: level %s, syslog %s", changed.log.level,
                             "on" if changed.log.syslog else "off")
            store.on_change.append(relog)
        for advice in config.advisories():
            log.warning("configuration: %s", advice)
        store.on_change.append(lambda changed: [log.warning("configuration: %s", a) for a in changed.advisories()])

    # -- serve ---------------------------------------------------------------------------

    async def _serve(self, store: ConfigStore) -> None:
        """Until SIGTERM or SIGINT; SIGHUP reloads (the handlers, set at start, only record)."""
        while not self._stop.is_set():
            waiters = [asyncio.ensure_future(self._stop.wait()),
                       asyncio.ensure_future(self._reload.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                log.info("SIGHUP: reloading %s", self.config_path or "the embedded config")
                await store.reload()
