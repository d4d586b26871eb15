"""The composition root: the one place that wires core, config, snmp and fcaps together.

Start-up order matters: configuration first (refuse to start on any problem), then the
state model mirrors it, then the SNMP agent opens its listeners, then jobs start, and
only then is agentStarted announced. Signals only record and wake:
SIGTERM/SIGINT ask the loop to stop, SIGHUP asks it to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import logging.handlers
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fcaps.accounting.ledger import Ledger
from fcaps.accounting.ledgerdb import LedgerFile
from fcaps.accounting.timeline import read_boot_id
from fcaps.configuration.control import OperatorActions
from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.configuration.store import ConfigStore
from fcaps.configuration.sync import ClusterSync
from fcaps.fault.alarms import AlarmType, Alarms, ProbableCause
from fcaps.fault.heartbeat.monitor import HeartbeatMonitor
from fcaps.fault.heartbeat.process import build as build_heartbeat
from fcaps.fault.history import EventHistory
from fcaps.fault.lan.icmp import Prober
from fcaps.fault.lan.links import LinkWatch
from fcaps.fault.lan.poller import LanPoller
from fcaps.fault.mailer import Mailer
from fcaps.fault.role.advertise import Advertiser, GenerationFile, NoPeer
from fcaps.fault.role.aliasguard import AliasGuard
from fcaps.fault.role.machine import RoleMachine
from fcaps.fault.role.publicreach import PublicReachJob
from fcaps.fault.role.quorum import QuorumCheck
from fcaps.fault.services.checks import Checker
from fcaps.fault.services.monitor import ServiceMonitor
from fcaps.fault.services.outages import OutageFile
from fcaps.fault.takeover import NetlinkAliases
from fcaps.performance.collector import PerfCollector
from fcaps.performance.figures import DurationFigures
from fcaps.performance.looplag import LoopLag
from fcaps.security.audit import CredentialAudit
from fcaps.security.authfail import AuthFailures
from haoscar_snmp import __version__
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity, is_counter_reset
from haoscar_snmp.core.files import DirectoryInUse, DirectoryLock
from haoscar_snmp.core.measure import Measurements
from haoscar_snmp.core.runner import Runner, ShellRunner, watch_children_with_pidfd
from haoscar_snmp.core.scheduler import Scheduler
from haoscar_snmp.core.state import ControlAction, LinkView, PeerView, State
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder, Notifier
from haoscar_snmp.snmp.resync import resync_settings
from haoscar_snmp.snmp.setter import SetHandler
from haoscar_snmp.snmp.view import MibView
from haoscar_snmp.views.server import STATUS_SOCKET, StatusServer

if TYPE_CHECKING:
    from haoscar_snmp.snmp.agentx.session import Subagent

log = logging.getLogger("haoscar_snmp")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOTIFICATION_DRAIN_S = 1.0   # at shutdown, queued notifications get this long to leave


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


class StartFailed(Exception):
    """A part that the daemon needs could not start; it says which, and the daemon exits 2."""


class Daemon:
    """Builds everything from the config, serves until asked to stop, tears down cleanly.

    `run` is build, serve, shut down. Building registers every part's teardown on one
    `AsyncExitStack` as the part comes up, so whatever was built is torn down in reverse
    order, whether the start fails half-way or the daemon stops normally: jobs stop
    first, then an active head releases its aliases (and says so to its peer), then the
    heartbeat process stops, queued notifications leave, the SNMP agent closes, and the
    state directory is unlocked last.
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
        clock = self.clock
        state = State()
        bus = EventBus()
        try:
            store = ConfigStore(self.config_path, self.state_dir, state, bus, clock)
        except ConfigError as exc:
            raise StartFailed(f"the configuration is rejected:\n{exc}") from None
        config = store.effective
        self._logging(store)
        state_dir = Path(config.cluster.state_dir)
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = DirectoryLock(state_dir)
        try:
            lock.acquire()
        except DirectoryInUse as exc:
            raise StartFailed(str(exc)) from None
        stack.callback(lock.release)
        state.cluster.agent_version = __version__
        state.cluster.agent_start_time = clock.time()

        history = EventHistory(state, state_dir / "history.sqlite")
        stack.callback(history.close)
        bus.subscribe("history", history)
        # Performance: takeover durations from events; the rest from the measurement
        # channel that the agent, the AgentX subagent, the scheduler and the heartbeat feed.
        bus.subscribe("performance", DurationFigures(state))
        channel = Measurements()
        collector = PerfCollector(state, channel, clock)
        bus.subscribe("perf-counters", collector.on_event)
        loop_lag = LoopLag(state)
        bus.subscribe("loop-lag", loop_lag.on_event)
        loop_lag.start()
        stack.callback(loop_lag.stop)
        alarms = Alarms(state, bus, clock)
        mailer = Mailer(state, store.current, clock)
        bus.subscribe("mailer", mailer.on_event)
        await mailer.start()
        stack.push_async_callback(mailer.stop)
        actions = OperatorActions(state, bus, clock)
        store.on_action = actions.handle

        mib = MibModel.load()
        view = MibView(mib)
        set_handler = SetHandler(mib, store, CONFIG_MAP)
        # Security: refused requests, heartbeats and exchange datagrams become rate-limited
        # events; a reload's new credentials go into the running engine, audited.
        auth_failures = AuthFailures(state, bus, alarms, clock)
        bus.subscribe("security", auth_failures.on_event)
        agent = Agent(config, view, set_handler, store, state.security, clock=clock,
                      on_auth_failure=auth_failures.snmp_refused, channel=channel)
        bind_all(view, state, store.current, CONFIG_MAP, agent.uptime_ticks, agent.auth_failures)
        try:
            agent.start()
        except Exception as exc:  # e.g. the port is taken: say so plainly and stop
            raise StartFailed(f"cannot start the SNMP agent: {exc}") from None
        stack.push_async_callback(agent.stop)
        store.on_change.append(agent.reconfigure)
        store.on_change.append(CredentialAudit(config, bus, clock))
        builder = NotificationBuilder(mib, view, agent.auth_traps_enabled)
        notifier = Notifier(builder, lambda: agent.engine, lambda: agent.targets, clock, state,
                            lambda: resync_settings(store.current().notify), alarms)
        store.on_change.append(notifier.retarget)   # after the agent registered a reload's targets
        bus.subscribe("notifications", notifier)
        stack.push_async_callback(notifier.drain, NOTIFICATION_DRAIN_S)
        if config.snmp.agentx.enabled:
            # Torn down after the jobs and the role's release, so that their notifications
            # still go out through snmpd; then Close.
            subagent = self._subagent(config, view, set_handler, store, state, builder, agent, channel)
            stack.push_async_callback(subagent.stop, NOTIFICATION_DRAIN_S)
            bus.subscribe("agentx", subagent.on_event)
        # Started once the front ends have their meters: their rows show from the start.
        collector.start()
        stack.callback(collector.stop)

        # Fault management. The heartbeat runs in its own process (only with a peer head);
        # the role state machine and the alias guard are steady jobs on the monotonic clock;
        # quorum and service checks are periodic jobs whose lateness is harmless.
        scheduler = Scheduler(state.jobs, clock, channel)
        wake_role = scheduler.waker("role")
        advertiser: Advertiser = NoPeer()
        heartbeat = None
        peer = config.peer_head_config
        if peer is not None:
            monitor = HeartbeatMonitor(state, bus, alarms, clock, config.head_index(peer.name), wake_role)
            monitor(PeerView(peer.name, str(peer.preferred_role) == "primary"), LinkView(), [])
            heartbeat = build_heartbeat(store.current, state, state_dir, monitor, scheduler.external("heartbeat"),
                                        clock, logging.getLevelName(logging.getLogger().level), self._stop.set,
                                        channel)
            try:
                await heartbeat.start()
            except (OSError, asyncio.TimeoutError) as exc:
                raise StartFailed(f"cannot start the heartbeat: {exc or 'no answer from its process'}") from None
            stack.push_async_callback(heartbeat.stop)
            bus.subscribe("heartbeat", heartbeat.on_event)
            store.on_change.append(lambda _config: heartbeat.reconfigure())
            advertiser = heartbeat
        # One configuration for the cluster: the settings exchange, over the heartbeat's
        # port and key (a single head has nobody to agree with, and shows "standalone").
        sync = ClusterSync(store, state, bus, alarms, clock, store.current, heartbeat)
        stack.push_async_callback(sync.stop)
        actions.config_request = (lambda action, principal: sync.pull(principal)
                                  if action == ControlAction.PULL_PEER_CONFIG else sync.push(principal)) \
            if heartbeat is not None else None
        aliases = NetlinkAliases()
        await aliases.open()
        stack.callback(aliases.close)
        role = RoleMachine(state, store.current, aliases, bus, alarms, clock, self.runner, advertiser,
                           GenerationFile(state_dir / "role.generation"), wake_role)
        stack.push_async_callback(role.stop)
        stack.push_async_callback(role.shutdown)     # release first, while everything still runs
        guard = AliasGuard(state, store.current, aliases, alarms, clock, wake_role)
        stack.callback(guard.close)

        def role_request(action: ControlAction, principal: str) -> tuple[bool, str]:
            answer = role.request(action, principal)
            scheduler.wake("role")
            return answer

        actions.role_request = role_request
        role.config_ready = sync.ready
        bus.subscribe("role", role.on_event)
        scheduler.add_steady(role)
        scheduler.add_steady(guard)
        scheduler.add_steady(sync)
        scheduler.add(QuorumCheck(state, store.current, self.runner, clock, wake_role))
        checker = Checker(self.runner, clock=clock)
        stack.push_async_callback(checker.aclose)
        services = ServiceMonitor(state, store.current, checker, self.runner, bus, alarms, clock,
                                  OutageFile(state_dir / "services.json", clock), wake_role)
        stack.push_async_callback(services.stop)
        bus.subscribe("services", services.on_event)
        scheduler.add(services)
        # One ICMP prober (a socket per address family) for the LAN poller and the public
        # targets; opened by whichever has something to ping first.
        prober = Prober(clock=clock)
        lan_poller = LanPoller(state, store.current, bus, alarms, clock, prober=prober, wake_role=wake_role)
        links = LinkWatch((), lan_poller.link_changed, clock=clock)
        try:
            await links.open()
            lan_poller.links = links
            stack.callback(links.close)
        except OSError as exc:   # the poller goes on pinging; this head's own rows stay unknown
            log.error("LAN poller: cannot watch this head's interfaces over netlink: %s", exc)
        stack.push_async_callback(lan_poller.stop)
        scheduler.add(lan_poller)
        scheduler.add(auth_failures)
        # Whether clients can reach this head: it may move the aliases, so a steady job.
        scheduler.add_steady(PublicReachJob(state, store.current, bus, alarms, clock, prober, wake_role))
        bus.subscribe("jobs", lambda event: scheduler.reset_counters() if is_counter_reset(event) else None)
        store.on_change.append(lambda _config: scheduler.reschedule())
        store.on_change.append(lambda _config: scheduler.wake("services"))   # rows enabled or not
        store.on_change.append(lambda _config: scheduler.wake("role"))       # aliases, timings
        # Active-only services are checked from the moment this head is active, not a cycle later.
        bus.subscribe("services-role", lambda event: scheduler.wake("services")
                      if event.type == EventType.ROLE_CHANGED else None)
        # The outage ledger: started last, so that its first look sees every row; stopped
        # right after the jobs, before the role's release at shutdown.
        ledger = self._ledger(state, store, state_dir, alarms, stack)
        if ledger is not None:
            bus.subscribe("accounting", ledger.on_event)
            scheduler.add(ledger)
        if config.web.enabled:    # before the jobs start: agentStarted stays the first event
            await self._web(config, store, state, bus, mib, stack)
        scheduler.start()
        stack.push_async_callback(scheduler.stop)    # the first to go at shutdown
        # Operator views: the snapshot on a unix socket in the state directory, for
        # `haoscar-snmp status`. Without it the cluster is still served: log and go on.
        status = StatusServer(state_dir / STATUS_SOCKET, state, store.current, clock, mib)
        try:
            await status.start()
            stack.push_async_callback(status.stop)
        except OSError as exc:
            log.error("status: cannot serve %s (haoscar-snmp status will not answer): %s", status.path, exc)

        bus.publish(Event(EventType.AGENT_STARTED, config.cluster.local_head, Severity.INFO,
                          f"haoscar-snmp {__version__} started on head {config.cluster.local_head} "
                          f"(pid {os.getpid()})", clock.time()))
        # Everything built so far (MIB trees, models, modules) lives as long as the daemon:
        # move it out of the collector's way. A full collection otherwise walks it all,
        # pausing the loop (role decisions, takeovers) for 60 to 150 ms under SNMP load
        # (measured). The heartbeat process has a heap of its own and is not paused.
        gc.collect()
        gc.freeze()
        where = config.snmp.listen[0] if config.snmp.listen else "<snmpd's address>"
        log.info("ready: try  snmpwalk -v2c -c <community> %s 1.3.6.1.4.1.32473.1", where)
        return store, bus

    async def _web(self, config: Config, store: ConfigStore, state: State, bus: EventBus, mib: MibModel,
                   stack: contextlib.AsyncExitStack) -> None:
        """The web panel ([web]): its writes go through the store as a SET's do. Imported
        here: a daemon without the panel does not load it. A panel that cannot listen
        (its port taken, a bad certificate) is logged, and the daemon serves on."""
        from haoscar_snmp.views.metrics import MetricsPage
        from haoscar_snmp.views.source import SnapshotSource
        from haoscar_snmp.views.web.server import WebPanel
        from haoscar_snmp.views.web.writes import WebWrites

        writes = WebWrites(store, CONFIG_MAP, lambda name: mib[name].oid, state)
        panel = WebPanel(config, store.current, writes, SnapshotSource(state, store.current, self.clock),
                         self.clock, MetricsPage(state, store.current, self.clock, mib).handle)
        try:
            url = await panel.start()
        except OSError as exc:   # the port is taken, or the certificate cannot be loaded
            # The cluster is still served (as without the status socket): say so and go on.
            log.error("web panel: cannot serve on %s (the panel is off in this run): %s", config.web.listen, exc)
            return
        stack.push_async_callback(panel.stop)
        bus.subscribe("web", panel.live.on_event)
        log.info("web panel: %s", url)

    def _ledger(self, state: State, store: ConfigStore, state_dir: Path, alarms: Alarms,
                stack: contextlib.AsyncExitStack) -> Ledger | None:
        """The accounting ledger, or None when its file cannot be used: the agent keeps the
        cluster available without it, an alarm says so, and haoscarAcctTable stays empty."""
        path = state_dir / "accounting.sqlite"
        ledger_file: LedgerFile | None = None
        try:
            ledger_file = LedgerFile(path)
            stack.callback(ledger_file.close)
            ledger = Ledger(state, store.current, self.clock, ledger_file, read_boot_id(), alarms)
            log.info("accounting: %s", ledger.start())
        except sqlite3.Error as exc:
            text = f"the outage ledger {path} cannot be used ({exc}): no outage is accounted in this run"
            log.error("accounting: %s", text)
            alarms.raise_alarm(ProbableCause.ACCOUNTING_FAILURE, state.cluster.local_head, Severity.MAJOR,
                               AlarmType.PROCESSING_ERROR, text)
            return None

        def stop() -> None:
            try:
                ledger.stop()
            except sqlite3.Error as exc:    # the next start closes what is open, from the marks
                log.error("accounting: cannot record the stop in %s: %s", path, exc)

        stack.callback(stop)
        return ledger

    @staticmethod
    def _subagent(config: Config, view: MibView, set_handler: SetHandler, store: ConfigStore,
                  state: State, builder: NotificationBuilder, agent: Agent,
                  channel: Measurements) -> Subagent:
        """The AgentX subagent over the same view, SET checks and committer as the agent.
        Imported here: a daemon without AgentX does not pay for loading it at start."""
        from haoscar_snmp.snmp.agentx.requests import RequestHandler
        from haoscar_snmp.snmp.agentx.session import SessionSettings, Subagent

        settings = SessionSettings.of(config.snmp.agentx, view.root,
                                      view.mib.identities["haoscarAgentProduct"])
        handler = RequestHandler(view, set_handler, store, state.security, f"agentx:{settings.master}",
                                 agent.uptime)
        subagent = Subagent(settings, handler, state.agentx, builder=builder, channel=channel)
        subagent.start()
        log.info("AgentX subagent: serving %s through the master at %s",
                 ".".join(map(str, view.root)), settings.master)
        return subagent

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
