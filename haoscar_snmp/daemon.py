"""The composition root: the one place that wires core, config, snmp and fcaps together.

Start-up order matters: configuration first (refuse to start on any problem), then the
state model mirrors it, then the SNMP agent opens its listeners, then jobs start, and
only then is agentStarted announced. Signals only record and wake (STYLE rule 3):
SIGTERM/SIGINT ask the loop to stop, SIGHUP asks it to reload.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path

from haoscar_snmp import __version__
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner, ShellRunner
from haoscar_snmp.core.scheduler import Scheduler
from haoscar_snmp.core.state import HeadStatus, State
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder, Notifier
from haoscar_snmp.snmp.setter import SetHandler
from haoscar_snmp.snmp.view import MibView

from fcaps.configuration.control import OperatorActions
from fcaps.configuration.store import ConfigStore
from fcaps.fault.alarms import Alarms
from fcaps.fault.heartbeat import Heartbeat, LocalView, next_epoch
from fcaps.fault.history import EventHistory
from fcaps.fault.role import RoleMachine
from fcaps.fault.services import ServiceMonitor
from fcaps.fault.takeover import NetlinkAliases

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
    """Builds everything from the config, runs until asked to stop, tears down cleanly."""

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
        clock = self.clock
        state = State()
        bus = EventBus()
        try:
            store = ConfigStore(self.config_path, self.state_dir, state, bus, clock)
        except ConfigError as exc:
            log.error("configuration rejected, not starting:\n%s", exc)
            return 2
        config = store.effective
        if not self.log_level:
            setup_logging(str(config.log.level), config.log.syslog)
        state_dir = Path(config.cluster.state_dir)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        state.cluster.agent_version = __version__
        state.cluster.agent_start_time = clock.time()

        history = EventHistory(state, state_dir / "history.sqlite")
        bus.subscribe("history", history)
        alarms = Alarms(state, bus, clock)
        actions = OperatorActions(state, bus, clock)
        store.on_action = actions.handle

        mib = MibModel.load()
        view = MibView(mib)
        agent = Agent(config, view, SetHandler(mib, store), store, state.security)
        bind_all(view, state, store.current, agent.uptime_ticks, agent.auth_failures)
        try:
            agent.start()
        except Exception as exc:  # e.g. the port is taken: say so plainly and stop
            log.error("cannot start the SNMP agent: %s", exc)
            history.close()
            return 2
        bus.subscribe("notifications", Notifier(NotificationBuilder(mib, view),
                                                lambda: agent.engine, lambda: agent.target_names))

        # Fault management: heartbeat (only with a peer head) and the role state machine.
        local = LocalView()
        heartbeat: Heartbeat | None = None
        role: RoleMachine | None = None
        if config.peer_head_config is not None:
            heartbeat = Heartbeat(state, store.current, bus, alarms, clock, next_epoch(state_dir),
                                  local, on_change=lambda: role.wake() if role else None)
            try:
                await heartbeat.start()
            except OSError as exc:
                log.error("cannot open the heartbeat sockets: %s", exc)
                await agent.stop()
                history.close()
                return 2
        aliases = NetlinkAliases()
        role = RoleMachine(
            state, store.current, heartbeat.peer if heartbeat else (lambda: None),
            (lambda: heartbeat.peer_dead_since) if heartbeat else (lambda: 0.0),
            aliases, bus, alarms, clock, self.runner, local,
            announce=heartbeat.send_now if heartbeat else (lambda: None))
        actions.role_request = role.request

        scheduler = Scheduler(state.jobs, clock)
        if heartbeat is not None:
            scheduler.add(heartbeat)
        scheduler.add(role)
        scheduler.add(ServiceMonitor(state, store.current, self.runner, bus, alarms, clock,
                                     is_active=lambda: role.status == HeadStatus.ACTIVE))
        store.on_change.append(lambda _config: scheduler.reschedule())
        scheduler.start()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)

        bus.publish(Event(EventType.AGENT_STARTED, config.cluster.local_head, Severity.INFO,
                          f"haoscar-snmp {__version__} started on head {config.cluster.local_head} "
                          f"(pid {os.getpid()})", clock.time()))
        listen = config.snmp.listen[0]
        log.info("ready: try  snmpwalk -v2c -c <community> %s 1.3.6.1.4.1.32473.1", listen)

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

        log.info("stopping")
        bus.publish(Event(EventType.AGENT_STOPPING, config.cluster.local_head, Severity.INFO,
                          "haoscar-snmp stopping", clock.time()))
        scheduler.shutdown()
        if heartbeat is not None:
            heartbeat.close()
        aliases.close()
        await asyncio.sleep(0.05)  # let queued notifications leave
        await agent.stop()
        history.close()
        log.info("stopped")
        return 0
