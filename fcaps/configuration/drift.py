"""The settings exchange's judgement, shown: the drift alarm and haoscarConfigSync's objects.

The exchange job (`sync.py`) compares the heads' settings at each heartbeat interval and
tells this part what it saw; this part keeps the drift tracker (`clustersync.DriftTracker`:
how long the heads have differed), raises haoscarConfigDrift when they differ for too long
or when a change is held on this head only, clears it when their digests agree again,
and writes what the MIB shows of the exchange, each time before the event that tells of
it (a notification reads the rows). Writer of `state.config_sync` but for the counters
of adoptions, pushes and refusals (the exchange's) and of unconfirmed changes (the
agreement's).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from haoscar_snmp.config.cluster import fingerprint
from haoscar_snmp.config.clustersync import DriftState, DriftTracker, DriftTransition
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import ConfigSyncStatus, State

from .agreement import PeerAgreement
from .channel import SettingsChannel
from .exchange import Exchange
from .store import ConfigStore

log = logging.getLogger(__name__)

SUBJECT = "cluster-config"


class DriftReport:
    """Judged by the exchange job; the alarm, its events and the MIB's objects follow."""

    def __init__(self, store: ConfigStore, agreement: PeerAgreement, channel: SettingsChannel,
                 exchange: Exchange | None, state: State, bus: EventBus, alarms: Alarms, clock: Clock) -> None:
        """`exchange`: None for a single head, which shows "standalone"."""
        self.store = store
        self.agreement = agreement
        self.channel = channel
        self.exchange = exchange
        self.state = state
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.tracker = DriftTracker()

    @property
    def drifting(self) -> bool:
        return self.tracker.state is DriftState.DRIFT

    @property
    def differing(self) -> tuple[str, ...]:
        return self.tracker.differing

    def observe(self, now: float, interval_s: float, peer_digest: str | None, differing: Sequence[str] = ()) -> None:
        """What the heads hold now (`clustersync.DriftTracker.observe`)."""
        self._transition(self.tracker.observe(now, interval_s, self.store.digest, peer_digest, differing))

    def afresh(self) -> None:
        """A change is held on this head only: the difference is counted from now."""
        self.tracker.since = None

    def alone(self, now: float, differing: Sequence[str]) -> None:
        """A change this head made alone: the heads differ from this moment on."""
        self.tracker.state, self.tracker.since = DriftState.DRIFT, now
        self.tracker.differing = tuple(differing)
        self._raise(f"cluster-wide settings changed on this head only ({self.agreement.unconfirmed}); "
                    f"the peer takes them when it answers" + (f": {', '.join(differing[:5])}" if differing else ""))

    def publish(self) -> None:
        s = self.state.config_sync
        version = self.store.version
        s.version, s.version_head, s.digest = version.counter, version.head, self.store.digest
        if self.exchange is None:
            s.bad_messages = 0
            s.status = ConfigSyncStatus.STANDALONE
            return
        s.bad_messages = self.exchange.bad + self.channel.dropped
        peer = self.agreement.advert()
        if peer is not None:
            s.peer_version, s.peer_version_head, s.peer_fingerprint = peer[0].counter, peer[0].head, f"{peer[1]:016x}"
        if self.tracker.state is DriftState.DRIFT:
            s.status = ConfigSyncStatus.DRIFT
        elif peer is None:
            s.status = ConfigSyncStatus.UNKNOWN
        elif peer[1] == fingerprint(self.store.digest):
            s.status = ConfigSyncStatus.IN_SYNC
        else:
            s.status = ConfigSyncStatus.MISMATCH
        s.differing = ", ".join(self.tracker.differing)[:255] if s.status in (
            ConfigSyncStatus.MISMATCH, ConfigSyncStatus.DRIFT) else ""

    def _transition(self, transition: DriftTransition | None) -> None:
        if transition is None:
            return
        log.info("configuration sync: %s", transition.text)
        if transition.new is DriftState.DRIFT:
            self._raise(transition.text)
        elif transition.old is DriftState.DRIFT:
            self.alarms.clear(ProbableCause.CONFIGURATION_DRIFT, SUBJECT, transition.text)
            self.publish()
            self.bus.publish(Event(EventType.CONFIG_DRIFT_CLEARED, SUBJECT, Severity.CLEARED, transition.text,
                                   self.clock.time()))

    def _raise(self, text: str) -> None:
        self.alarms.raise_alarm(ProbableCause.CONFIGURATION_DRIFT, SUBJECT, Severity.MINOR,
                                AlarmType.PROCESSING_ERROR, text)
        self.publish()
        self.bus.publish(Event(EventType.CONFIG_DRIFT, SUBJECT, Severity.MINOR, text, self.clock.time()))
