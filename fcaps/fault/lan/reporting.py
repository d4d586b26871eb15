"""Who tells the LAN faults, and how: the reporting head's alarms, events and notifications.

Every head polls the LANs, but only the reporting head tells (notifications, alarms,
e-mail): by default (`lan.poller = "standby"`, as in the seed) the standby, or the active
head while there is no standby; "active"; or "both" (`polls_here`, fault/lan/watch.py).
A head that does not report raises nothing and publishes nothing; it only clears an alarm
it raised while it reported, so none is left standing. A head that starts reporting
raises the alarms of what is down at that moment: the notices already went out from the
other head, and this head's alarm table must tell the truth.

`Reporting` is the part of the LAN poller (fault/lan/poller.py) that does this: a mixin
of `LanPoller`, which builds the fields it reads (the state, the configuration, the
alarm table, the event bus, the clock, the watch, the row index) and the row lookup `_row`.

Writer of the cluster's reporting head (haoscarLanPoller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from haoscar_snmp.config.lanrows import IfKey
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import HeadRow, HeadStatus, Lan, LanIfRow, LinkStatus, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .ownifs import Own
from .watch import LanWatch, polls_here


@dataclass(frozen=True)
class Notice:
    """What telling of one kind of fault takes: its alarm, its events, its words."""

    cause: ProbableCause
    severity: Severity
    bad_event: EventType
    good_event: EventType
    bad: str                        # "LAN interface node3/lanA is down"
    good: str


class Reporting:
    """The LAN poller's part that tells (a mixin of `LanPoller`)."""

    state: State
    config: Callable[[], Config]
    alarms: Alarms
    bus: EventBus
    clock: Clock
    watch: LanWatch
    _own: dict[IfKey, Own]
    _index: dict[IfKey, int]
    _reporting: bool
    _row: Callable[[IfKey], LanIfRow | None]

    def _reports(self, config: Config) -> bool:
        """Whether this head tells (notifications, alarms): by the poller policy and the roles."""
        me = self._head(local=True)
        peer = self._head(local=False)
        active = me is not None and me.status == HeadStatus.ACTIVE
        peer_present = peer is not None and peer.status in (HeadStatus.ACTIVE, HeadStatus.STANDBY,
                                                            HeadStatus.TAKING_OVER, HeadStatus.RELEASING)
        reporting = polls_here(config.lan.poller, active, peer_present)
        if reporting:
            self.state.cluster.lan_poller = config.cluster.local_head
        elif peer is not None:
            self.state.cluster.lan_poller = peer.name
        return reporting

    def _head(self, local: bool) -> HeadRow | None:
        return next((h for h in self.state.heads.values() if h.is_local == local), None)

    def _tell_interface(self, node: str, lan: Lan, down: bool, reason: str) -> None:
        subject = f"{node}/{lan.label}"
        self._tell(Notice(ProbableCause.LAN_INTERFACE_FAILURE, Severity.MAJOR, EventType.LAN_IF_DOWN,
                          EventType.LAN_IF_UP, f"LAN interface {subject} is down", f"LAN interface {subject} is up"),
                   subject, down, reason,
                   {"lan_if_index": self._index.get((node, lan)) or 0, "node": node, "lan": int(lan)})

    def _tell_lan(self, lan: Lan, failed: bool, reason: str) -> None:
        self._tell(Notice(ProbableCause.LAN_FAILURE, Severity.CRITICAL, EventType.LAN_FAILED,
                          EventType.LAN_RECOVERED, f"{lan.label} failed", f"{lan.label} recovered"),
                   lan.label, failed, reason, {"lan": int(lan)})

    def _tell(self, notice: Notice, subject: str, bad: bool, reason: str, data: dict[str, object]) -> None:
        """A notice: alarm, event and notification on the reporting head. Elsewhere only an
        alarm this head raised while it reported is cleared, so none is left standing."""
        text = f"{notice.bad if bad else notice.good}: {reason}"
        if bad and not self._reporting:
            return
        if bad:
            self.alarms.raise_alarm(notice.cause, subject, notice.severity, AlarmType.COMMUNICATIONS, text)
        else:
            self.alarms.clear(notice.cause, subject, text)
        if self._reporting:
            self.bus.publish(Event(notice.bad_event if bad else notice.good_event, subject,
                                   notice.severity if bad else Severity.CLEARED, text, self.clock.time(), data))

    def _take_over_reporting(self) -> None:
        """This head reports from now on (the other one died, or the roles moved). The
        notices already went out from the other head; the alarms of what is down now are
        raised here, so this head's alarm table tells the truth."""
        me = self.config().cluster.local_head
        failed = {lan for lan, s in self.watch.summary().items() if s.failed}
        for lan in failed:
            self.alarms.raise_alarm(ProbableCause.LAN_FAILURE, lan.label, Severity.CRITICAL,
                                    AlarmType.COMMUNICATIONS, f"{lan.label} failed (seen when {me} "
                                                              f"took over reporting the LANs)")
        downs = [(v.node, v.lan) for v in self.watch.view() if v.status == LinkStatus.DOWN and v.lan not in failed]
        downs += [key for key in self._own if (row := self._row(key)) is not None and row.status == LinkStatus.DOWN]
        for node, lan in downs:
            subject = f"{node}/{lan.label}"
            self.alarms.raise_alarm(ProbableCause.LAN_INTERFACE_FAILURE, subject, Severity.MAJOR,
                                    AlarmType.COMMUNICATIONS, f"LAN interface {subject} is down (seen when "
                                                              f"{me} took over reporting the LANs)")
