"""The composition root: the one place that wires core, config, snmp and fcaps together.

Start-up order matters: configuration first (refuse to start on any problem), then the
state model mirrors it, then the SNMP agent opens its listeners, then jobs start, and
only then is agentStarted announced. Signals only record and wake:
SIGTERM/SIGINT ask the loop to stop, SIGHUP asks it to reload.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.handlers
import os
import signal
import sys
from pathlib import Path

from haoscar_snmp import __version__
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.files import DirectoryInUse, DirectoryLock
from haoscar_snmp.core.runner import Runner, ShellRunner
from haoscar_snmp.core.scheduler import Scheduler
from haoscar_snmp.core.state import ControlAction, HeadStatus, LinkView, PeerView, State
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder, Notifier
from haoscar_snmp.snmp.setter import SetHandler
from haoscar_snmp.snmp.view import MibView

from fcaps.configuration.control import OperatorActions
from fcaps.configuration.store import ConfigStore
from fcaps.fault.alarms import Alarms
from fcaps.fault.aliasguard import AliasGuard
from fcaps.fault.hbmonitor import HeartbeatMonitor
from fcaps.fault.hbproc import HeartbeatProcess
from fcaps.fault.hbproc import build as build_heartbeat
from fcaps.fault.history import EventHistory
from fcaps.fault.quorum import QuorumCheck
from fcaps.fault.role import Advertiser, GenerationFile, NoPeer, RoleMachine
from fcaps.fault.services import ServiceMonitor
from fcaps.fault.takeover import NetlinkAliases
from fcaps.performance.figures import FailoverFigures

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
            logging_set = (config.log.level, config.log.syslog)

            def relog(changed: Config) -> None:   # [log] is applied by a reload too
                nonlocal logging_set
                if (changed.log.level, changed.log.syslog) != logging_set:
                    logging_set = (changed.log.level, changed.log.syslog)
                    setup_logging(str(changed.log.level), changed.log.syslog)
                    log.info("logging set up again: level %s, syslog %s", changed.log.level,
                             "on" if changed.log.syslog else "off")
            store.on_change.append(relog)
        for advice in config.advisories():
            log.warning("configuration: %s", advice)
        store.on_change.append(lambda changed: [log.warning("configuration: %s", a) for a in changed.advisories()])
        state_dir = Path(config.cluster.state_dir)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = DirectoryLock(state_dir)
        try:
            lock.acquire()
        except DirectoryInUse as exc:
            log.error("not starting: %s", exc)
            return 2
        state.cluster.agent_version = __version__
        state.cluster.agent_start_time = clock.time()

        history = EventHistory(state, state_dir / "history.sqlite")
        bus.subscribe("history", history)
        bus.subscribe("performance", FailoverFigures(state))
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

        # Fault management. The heartbeat runs in its own process (only with a peer head);
        # the role state machine and the alias guard are steady jobs on the monotonic clock;
        # quorum and service checks are periodic jobs whose lateness is harmless.
        scheduler = Scheduler(state.jobs, clock)
        wake_role = scheduler.waker("role")
        heartbeat: HeartbeatProcess | None = None
        advertiser: Advertiser = NoPeer()
        peer = config.peer_head_config
        if peer is not None:
            monitor = HeartbeatMonitor(state, bus, alarms, clock, config.head_index(peer.name), wake_role)
            monitor(PeerView(peer.name, str(peer.preferred_role) == "primary"), LinkView(), [])
            heartbeat = build_heartbeat(store.current, state, state_dir, monitor, scheduler.external("heartbeat"),
                                        logging.getLevelName(logging.getLogger().level), self._stop.set)
            try:
                await heartbeat.start()
            except (OSError, asyncio.TimeoutError) as exc:
                log.error("cannot start the heartbeat: %s", exc or "no answer from its process")
                await agent.stop()
                history.close()
                return 2
            bus.subscribe("heartbeat", heartbeat.on_event)
            advertiser = heartbeat
        aliases = NetlinkAliases()
        await aliases.open()
        role = RoleMachine(state, store.current, aliases, bus, alarms, clock, self.runner, advertiser,
                           GenerationFile(state_dir / "role.generation"), wake_role)
        guard = AliasGuard(state, store.current, aliases, alarms, clock, wake_role)

        def role_request(action: ControlAction, principal: str) -> tuple[bool, str]:
            answer = role.request(action, principal)
            scheduler.wake("role")
            return answer

        actions.role_request = role_request
        scheduler.add_steady(role)
        scheduler.add_steady(guard)
        scheduler.add(QuorumCheck(state, store.current, self.runner, clock, wake_role))
        scheduler.add(ServiceMonitor(state, store.current, self.runner, bus, alarms, clock,
                                     is_active=lambda: role.status == HeadStatus.ACTIVE))
        store.on_change.append(lambda _config: scheduler.reschedule())
        if heartbeat is not None:
            store.on_change.append(lambda _config: heartbeat.reconfigure())  # type: ignore[union-attr]
        scheduler.start()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)

        bus.publish(Event(EventType.AGENT_STARTED, config.cluster.local_head, Severity.INFO,
                          f"haoscar-snmp {__version__} started on head {config.cluster.local_head} "
                          f"(pid {os.getpid()})", clock.time()))
        # Everything built so far (MIB trees, models, modules) lives as long as the daemon:
        # move it out of the collector's way. A full collection otherwise walks it all,
        # pausing the loop (role decisions, takeovers) for 60 to 150 ms under SNMP load
        # (measured). The heartbeat process has a heap of its own and is not paused.
        gc.collect()
        gc.freeze()
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
        await scheduler.stop()
        await role.shutdown()
        await role.stop()
        guard.close()
        if heartbeat is not None:
            await heartbeat.stop()
        aliases.close()
        await asyncio.sleep(0.05)  # let queued notifications leave
        await agent.stop()
        history.close()
        lock.release()
        log.info("stopped")
        return 0
