"""Configuration: the store first, then (once the peer can be reached) the settings
exchange and the operator actions.

Which way the arrows go: the store depends on no other component (it is given the peer
agreement, built before it from the state and the settings channel alone); the settings
exchange, built after the heartbeat process, uses the store, the agreement and the
channel; the operator actions, built after the role state machine and the exchange,
take both and listen to the store's requests.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from fcaps.configuration.agreement import PeerAgreement
from fcaps.configuration.channel import SettingsChannel
from fcaps.configuration.control import ConfigRequest, OperatorActions
from fcaps.configuration.store import ConfigStore
from fcaps.configuration.sync import ClusterSync
from fcaps.fault.alarms import Alarms
from fcaps.fault.heartbeat.process import HeartbeatProcess
from fcaps.fault.role.machine import RoleMachine
from haoscar_snmp import __version__
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.files import DirectoryInUse, DirectoryLock
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import ControlAction, State

from .parts import Core, Jobs, StartFailed


def configuration(config_path: Path | None, state_dir: Path | None, clock: Clock, runner: Runner,
                  stack: contextlib.AsyncExitStack) -> Core:
    """The configuration store (refusing to start on any problem), with the state it
    mirrors into and the bus it tells."""
    state = State()
    bus = EventBus()
    settings_channel = SettingsChannel()
    agreement = PeerAgreement(state, settings_channel)
    try:
        store = ConfigStore(config_path, state_dir, state, bus, clock, agreement)
    except ConfigError as exc:
        raise StartFailed(f"the configuration is rejected:\n{exc}") from None
    return Core(clock, runner, stack, state, bus, store, agreement, settings_channel,
                Path(store.effective.cluster.state_dir))


def begin_run(core: Core) -> None:
    """This run owns the state directory (locked until the very end), and says which
    release it is and since when."""
    core.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = DirectoryLock(core.state_dir)
    try:
        lock.acquire()
    except DirectoryInUse as exc:
        raise StartFailed(str(exc)) from None
    core.stack.callback(lock.release)
    core.state.cluster.agent_version = __version__
    core.state.cluster.agent_start_time = core.clock.time()


def cluster_sync(core: Core, alarms: Alarms, heartbeat: HeartbeatProcess | None) -> ClusterSync:
    """One configuration for the cluster: the settings exchange, over the heartbeat's
    port and key (a single head has nobody to agree with, and shows "standalone")."""
    sync = ClusterSync(core.store, core.agreement, core.settings_channel, core.state, core.bus, alarms,
                       core.clock, core.store.current, heartbeat)
    core.stack.push_async_callback(sync.stop)
    sync.start()
    return sync


def starting_actions(core: Core) -> OperatorActions:
    """haoscarControlAction while the daemon starts: the SNMP agent answers before the
    role state machine and the settings exchange are built, so until `operator_actions`
    replaces these, resets are carried out and role changes, pulls and pushes refused."""
    actions = OperatorActions(core.state, core.bus, core.clock)
    core.store.on_request.append(actions.handle)
    return actions


def operator_actions(core: Core, jobs: Jobs, role: RoleMachine | None, sync: ClusterSync,
                     heartbeat: HeartbeatProcess | None, starting: OperatorActions) -> OperatorActions:
    """haoscarControlAction: role changes go to the role state machine (woken at once),
    pulls and pushes of the settings to the exchange (only with a peer head). They take
    over from the `starting` actions. Without a role machine (the corosync backend) a
    role change is refused: Pacemaker places the addresses."""

    def role_request(action: ControlAction, principal: str) -> tuple[bool, str]:
        if role is None:
            return False, (f"{action.name.lower()}: Pacemaker places the addresses with the corosync backend "
                           f"(use crm_resource --move)")
        answer = role.request(action, principal)
        jobs.scheduler.wake("role")
        return answer

    async def config_request(action: ControlAction, principal: str) -> tuple[bool, str]:
        if action == ControlAction.PULL_PEER_CONFIG:
            return await sync.pull(principal)
        return await sync.push(principal)

    exchange: ConfigRequest | None = config_request if heartbeat is not None else None
    actions = OperatorActions(core.state, core.bus, core.clock, role_request, exchange)
    core.store.on_request.remove(starting.handle)
    core.store.on_request.append(actions.handle)
    return actions
