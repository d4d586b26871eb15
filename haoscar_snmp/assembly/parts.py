"""What the areas built earlier hand to those built after them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fcaps.configuration.agreement import PeerAgreement
from fcaps.configuration.channel import SettingsChannel
from fcaps.configuration.store import ConfigStore
from fcaps.performance.collector import PerfCollector
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.measure import Measurements
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.scheduler import Scheduler
from haoscar_snmp.core.state import State


class StartFailed(Exception):
    """A part that the daemon needs could not start; it says which, and the daemon exits 2."""


@dataclass(frozen=True)
class Core:
    """What every area is built on: the configuration, the state, the event bus."""

    clock: Clock
    runner: Runner
    stack: contextlib.AsyncExitStack     # every part's teardown, in the reverse order of building
    state: State
    bus: EventBus
    store: ConfigStore
    agreement: PeerAgreement             # the peer head as the store sees it
    settings_channel: SettingsChannel    # the settings exchange's way through the heartbeat process
    state_dir: Path


@dataclass(frozen=True)
class Meters:
    """Performance: the measurement channel that the agent, the AgentX subagent, the
    scheduler and the heartbeat feed, and its collector."""

    channel: Measurements
    collector: PerfCollector


@dataclass(frozen=True)
class Jobs:
    """The scheduler, and the wake-up of the role state machine that fault parts share."""

    scheduler: Scheduler
    wake_role: Callable[[], None]
