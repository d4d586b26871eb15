"""Fault management: the event history, alarms and e-mail, the heartbeat, the role state
machine and its alias guard, the service monitor, the LAN poller and the public reach.

The heartbeat runs in its own process (only with a peer head); the role state machine,
the alias guard and the public reach are steady jobs on the monotonic clock (they may
move the aliases); quorum, service and LAN checks are periodic jobs whose lateness is
harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fcaps.configuration.sync import ClusterSync
from fcaps.fault.alarms import Alarms
from fcaps.fault.heartbeat.monitor import HeartbeatMonitor
from fcaps.fault.heartbeat.process import HeartbeatProcess
from fcaps.fault.heartbeat.process import build as build_heartbeat
from fcaps.fault.history import EventHistory
from fcaps.fault.lan.icmp import Prober
from fcaps.fault.lan.links import LinkWatch
from fcaps.fault.lan.ownifs import LinkChanged
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
from haoscar_snmp.core.state import LinkView, PeerView

from .parts import Core, Jobs, Meters, StartFailed


def event_history(core: Core) -> None:
    history = EventHistory(core.state, core.state_dir / "history.sqlite")
    core.stack.callback(history.close)
    core.bus.subscribe("history", history)


async def alarms_and_mail(core: Core) -> Alarms:
    """The alarm table, and the e-mail that tells of events."""
    alarms = Alarms(core.state, core.bus, core.clock)
    mailer = Mailer(core.state, core.store.current, core.clock)
    core.bus.subscribe("mailer", mailer.on_event)
    await mailer.start()
    core.stack.push_async_callback(mailer.stop)
    return alarms


async def heartbeat(core: Core, meters: Meters, alarms: Alarms, jobs: Jobs,
                    on_exit: Callable[[], None]) -> HeartbeatProcess | None:
    """The heartbeat process and its monitor, with a peer head only (None without). It
    carries the settings exchange: it advertises the store's version and reports into
    the settings channel."""
    store = core.store
    config = store.effective
    peer = config.peer_head_config
    if peer is None:
        return None
    monitor = HeartbeatMonitor(core.state, core.bus, alarms, core.clock, config.head_index(peer.name),
                               jobs.wake_role)
    monitor(PeerView(peer.name, str(peer.preferred_role) == "primary"), LinkView(), [])
    process = build_heartbeat(store.current, core.state, core.state_dir, monitor,
                              jobs.scheduler.external("heartbeat"), core.clock,
                              logging.getLevelName(logging.getLogger().level), on_exit, meters.channel,
                              config_advert=store.advert, settings_inbox=core.settings_channel)
    try:
        await process.start()
    except (OSError, asyncio.TimeoutError) as exc:
        raise StartFailed(f"cannot start the heartbeat: {exc or 'no answer from its process'}") from None
    core.stack.push_async_callback(process.stop)
    core.bus.subscribe("heartbeat", process.on_event)
    store.on_change.append(lambda _config: process.reconfigure())
    return process


async def role(core: Core, alarms: Alarms, jobs: Jobs, heartbeat: HeartbeatProcess | None,
               sync: ClusterSync) -> RoleMachine:
    """The role state machine (a starting head acts once its settings agree with the
    peer's), the alias guard, and the quorum check; at shutdown an active head releases
    its aliases first, while everything still runs."""
    aliases = NetlinkAliases()
    await aliases.open()
    core.stack.callback(aliases.close)
    advertiser: Advertiser = heartbeat if heartbeat is not None else NoPeer()
    machine = RoleMachine(core.state, core.store.current, aliases, core.bus, alarms, core.clock, core.runner,
                          advertiser, GenerationFile(core.state_dir / "role.generation"), jobs.wake_role,
                          config_ready=sync.ready)
    core.stack.push_async_callback(machine.stop)
    core.stack.push_async_callback(machine.shutdown)     # release first, while everything still runs
    guard = AliasGuard(core.state, core.store.current, aliases, alarms, core.clock, jobs.wake_role)
    core.stack.callback(guard.close)
    core.bus.subscribe("role", machine.on_event)
    jobs.scheduler.add_steady(machine)
    jobs.scheduler.add_steady(guard)
    jobs.scheduler.add_steady(sync)
    jobs.scheduler.add(QuorumCheck(core.state, core.store.current, core.runner, core.clock, jobs.wake_role))
    return machine


def services(core: Core, alarms: Alarms, jobs: Jobs) -> None:
    checker = Checker(core.runner, clock=core.clock)
    core.stack.push_async_callback(checker.aclose)
    monitor = ServiceMonitor(core.state, core.store.current, checker, core.runner, core.bus, alarms, core.clock,
                             OutageFile(core.state_dir / "services.json", core.clock), jobs.wake_role)
    core.stack.push_async_callback(monitor.stop)
    core.bus.subscribe("services", monitor.on_event)
    jobs.scheduler.add(monitor)


async def lan(core: Core, alarms: Alarms, jobs: Jobs) -> Prober:
    """The LAN poller, with its netlink watch of this head's interfaces. Returns the one
    ICMP prober (a socket per address family) that the public reach shares; it is
    opened by whichever has something to ping first."""
    prober = Prober(clock=core.clock)

    def link_watch(changed: LinkChanged) -> LinkWatch:
        return LinkWatch((), changed, clock=core.clock)

    poller = LanPoller(core.state, core.store.current, core.bus, alarms, core.clock, prober=prober,
                       links=link_watch, wake_role=jobs.wake_role)
    await poller.open_links()
    core.stack.callback(poller.close_links)
    core.stack.push_async_callback(poller.stop)
    jobs.scheduler.add(poller)
    return prober


def public_reach(core: Core, alarms: Alarms, jobs: Jobs, prober: Prober) -> None:
    """Whether clients can reach this head: it may move the aliases, so a steady job."""
    jobs.scheduler.add_steady(PublicReachJob(core.state, core.store.current, core.bus, alarms, core.clock,
                                             prober, jobs.wake_role))
