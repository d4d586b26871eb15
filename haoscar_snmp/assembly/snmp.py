"""The SNMP front ends: the standalone agent, its notifications, and the AgentX subagent
when configured. They open before any job starts, and close after the jobs and the
role's release at shutdown, so that the notifications of those still go out."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.fault.alarms import Alarms
from fcaps.security.audit import CredentialAudit
from fcaps.security.authfail import AuthFailures
from haoscar_snmp.snmp.agent import Agent
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.snmp.notify import NotificationBuilder, Notifier
from haoscar_snmp.snmp.resync import resync_settings
from haoscar_snmp.snmp.setter import SetHandler
from haoscar_snmp.snmp.view import MibView

from .parts import Core, Meters, StartFailed

if TYPE_CHECKING:
    from haoscar_snmp.snmp.agentx.session import Subagent

log = logging.getLogger("haoscar_snmp")

NOTIFICATION_DRAIN_S = 1.0   # at shutdown, queued notifications get this long to leave


def front_ends(core: Core, meters: Meters, alarms: Alarms, auth_failures: AuthFailures) -> MibModel:
    """The front ends; returns the MIB model they serve (the views read its descriptions)."""
    store, state, bus, stack = core.store, core.state, core.bus, core.stack
    config = store.effective
    mib = MibModel.load()
    view = MibView(mib)
    set_handler = SetHandler(mib, store, CONFIG_MAP)
    agent = Agent(config, view, set_handler, store, state.security, clock=core.clock,
                  on_auth_failure=auth_failures.snmp_refused, channel=meters.channel)
    bind_all(view, state, store.current, CONFIG_MAP, agent.uptime_ticks, agent.auth_failures)
    try:
        agent.start()
    except Exception as exc:  # e.g. the port is taken: say so plainly and stop
        raise StartFailed(f"cannot start the SNMP agent: {exc}") from None
    stack.push_async_callback(agent.stop)
    store.on_change.append(agent.reconfigure)
    store.on_change.append(CredentialAudit(config, bus, core.clock))
    builder = NotificationBuilder(mib, view, agent.auth_traps_enabled)
    notifier = Notifier(builder, lambda: agent.engine, lambda: agent.targets, core.clock, state,
                        lambda: resync_settings(store.current().notify), alarms)
    store.on_change.append(notifier.retarget)   # after the agent registered a reload's targets
    bus.subscribe("notifications", notifier)
    stack.push_async_callback(notifier.drain, NOTIFICATION_DRAIN_S)
    if config.snmp.agentx.enabled:
        # Torn down after the jobs and the role's release, so that their notifications
        # still go out through snmpd; then Close.
        subagent = _subagent(core, view, set_handler, builder, agent, meters)
        stack.push_async_callback(subagent.stop, NOTIFICATION_DRAIN_S)
        bus.subscribe("agentx", subagent.on_event)
    return mib


def _subagent(core: Core, view: MibView, set_handler: SetHandler, builder: NotificationBuilder, agent: Agent,
              meters: Meters) -> Subagent:
    """The AgentX subagent over the same view, SET checks and committer as the agent.
    Imported here: a daemon without AgentX does not pay for loading it at start."""
    from haoscar_snmp.snmp.agentx.requests import RequestHandler
    from haoscar_snmp.snmp.agentx.session import SessionSettings, Subagent

    settings = SessionSettings.of(core.store.effective.snmp.agentx, view.root,
                                  view.mib.identities["haoscarAgentProduct"])
    handler = RequestHandler(view, set_handler, core.store, core.state.security, f"agentx:{settings.master}",
                             agent.uptime)
    subagent = Subagent(settings, handler, core.state.agentx, builder=builder, channel=meters.channel)
    subagent.start()
    log.info("AgentX subagent: serving %s through the master at %s",
             ".".join(map(str, view.root)), settings.master)
    return subagent
