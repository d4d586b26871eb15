"""On the daemon's loop: what the heartbeat process reports becomes state, events, alarms.

Sole writer of `state.peer`, `state.links`, `state.hb_fenced` and `state.hb_process` (the
snapshots the role decision reads), and of the peer's head-row status. The role state machine is woken first, before any
event is published, so a takeover never waits behind history writes or notifications.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import HbProcessView, HeadStatus, Lan, LinkView, PeerView, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .peer import Notice

log = logging.getLogger(__name__)


class HeartbeatMonitor:
    """The heartbeat process's sink."""

    def __init__(self, state: State, bus: EventBus, alarms: Alarms, clock: Clock,
                 peer_index: int, wake_role: Callable[[], None]) -> None:
        self.state = state
        self.bus = bus
        self.alarms = alarms
        self.clock = clock
        self.peer_index = peer_index
        self.wake_role = wake_role

    def __call__(self, view: PeerView, links: LinkView, notices: list[Notice], fenced: bool = False) -> None:
        old_view, old_links, old_fenced = self.state.peer, self.state.links, self.state.hb_fenced
        self.state.peer = view
        self.state.links = links
        self.state.hb_fenced = fenced
        head = self.state.heads.get((self.peer_index,))
        if head is not None:
            head.status = view.status if view.heard else (
                HeadStatus.FAILED if view.ever_heard else HeadStatus.UNKNOWN)
        if view != old_view or links != old_links or fenced != old_fenced:
            self.wake_role()
        for notice in notices:
            self._publish(view, notice)
        self._public_only(view)
        if links != old_links:
            self._carrier(links)

    def silent(self, reason: str) -> None:
        """The heartbeat process stopped reporting, or exited: this head hears nothing of
        its peer any more, whatever the last report said. The peer is shown not heard (its
        head row unknown: it is this head that is deaf), the role machine is woken (it
        releases, and takes nothing over), and the operator is told."""
        if self.state.hb_process.silent:
            return
        self.state.hb_process = dataclasses.replace(self.state.hb_process, silent=reason)
        view = self.state.peer
        if view is not None:
            self.state.peer = dataclasses.replace(view, heard=False, paths_up=frozenset())
            head = self.state.heads.get((self.peer_index,))
            if head is not None:
                head.status = HeadStatus.UNKNOWN
        self.wake_role()
        me = self.state.cluster.local_head
        text = f"{reason}: {me} cannot hear its peer; releasing any alias and starting a new heartbeat process"
        log.error("%s", text)
        self.bus.publish(Event(EventType.HB_PROCESS_FAILED, me, Severity.MAJOR, text, self.clock.time(),
                               {"reason": reason}))
        self.alarms.raise_alarm(ProbableCause.HEARTBEAT_PROCESS_FAILURE, me, Severity.MAJOR,
                                AlarmType.PROCESSING_ERROR, text)

    def running(self) -> None:
        """A new heartbeat process is ready. The head stays unfit to take over from a
        silent peer for the start-up wait (the role machine's settling), so that the new
        process hears the peer first."""
        hb = self.state.hb_process
        self.state.hb_process = HbProcessView("", hb.restarts + 1, self.clock.monotonic())
        view = self.state.peer
        if view is not None:        # what the new process has heard: nothing yet
            self.state.peer = PeerView(view.name, view.preferred_primary)
        self.wake_role()
        me = self.state.cluster.local_head
        text = f"the heartbeat process is running again on {me} (new process {hb.restarts + 1} of this run)"
        log.warning("%s", text)
        self.bus.publish(Event(EventType.HB_PROCESS_RESTARTED, me, Severity.INFO, text, self.clock.time(),
                               {"reason": hb.silent}))
        self.alarms.clear(ProbableCause.HEARTBEAT_PROCESS_FAILURE, me, text)

    def _subject(self, lan: Lan | None) -> str:
        return f"{self.state.peer.name if self.state.peer else 'peer'}/{lan.label if lan else ''}"

    def _publish(self, view: PeerView, n: Notice) -> None:
        now = self.clock.time()
        peer = view.name
        if n.kind == "path-up" and n.lan is not None:
            self.bus.publish(Event(EventType.HB_PATH_UP, self._subject(n.lan), Severity.INFO, n.text, now,
                                   {"path_key": (self.peer_index, int(n.lan))}))
            self.alarms.clear(ProbableCause.HEARTBEAT_PATH_FAILURE, self._subject(n.lan))
        elif n.kind == "path-down" and n.lan is not None:
            text = f"heartbeat path to {peer} down: {n.text}"
            self.bus.publish(Event(EventType.HB_PATH_DOWN, self._subject(n.lan), Severity.MAJOR, text, now,
                                   {"path_key": (self.peer_index, int(n.lan)), "reason": n.text}))
            self.alarms.raise_alarm(ProbableCause.HEARTBEAT_PATH_FAILURE, self._subject(n.lan),
                                    Severity.MAJOR, AlarmType.COMMUNICATIONS, text)
        elif n.kind == "peer-up":
            self.bus.publish(Event(EventType.HEAD_UP, peer, Severity.INFO, n.text, now,
                                   {"head_index": self.peer_index}))
            self.alarms.clear(ProbableCause.HEAD_FAILURE, peer)
        elif n.kind == "peer-down":
            text = f"head {peer} is down: {n.text}"
            self.bus.publish(Event(EventType.HEAD_DOWN, peer, Severity.CRITICAL, text, now,
                                   {"head_index": self.peer_index, "reason": n.text}))
            self.alarms.raise_alarm(ProbableCause.HEAD_FAILURE, peer, Severity.CRITICAL,
                                    AlarmType.EQUIPMENT, text)
        elif n.kind == "clock-offset":
            if n.flag:
                self.alarms.raise_alarm(ProbableCause.CLOCK_DIFFERENCE, peer, Severity.WARNING,
                                        AlarmType.ENVIRONMENTAL,
                                        f"{n.text}; heartbeats do not depend on it, but event "
                                        f"times will disagree: check NTP on both heads")
            else:
                self.alarms.clear(ProbableCause.CLOCK_DIFFERENCE, peer, n.text)

    def _public_only(self, view: PeerView) -> None:
        """Heard on the public LAN only: alive (no takeover), but the private LANs are gone."""
        subject = f"{view.name}/private"
        if view.public_only:
            self.alarms.raise_alarm(ProbableCause.HEARTBEAT_PATH_FAILURE, subject, Severity.MAJOR,
                                    AlarmType.COMMUNICATIONS,
                                    f"head {view.name} heard on the public LAN only: both private "
                                    f"heartbeat paths are down; no takeover while it is heard there")
        else:
            self.alarms.clear(ProbableCause.HEARTBEAT_PATH_FAILURE, subject)

    def _carrier(self, links: LinkView) -> None:
        """Alarms for this head's own links: isolated (both private links without carrier),
        and each other watched interface (public, alias) without carrier."""
        me = self.state.cluster.local_head
        if links.isolated:
            self.alarms.raise_alarm(ProbableCause.HEAD_ISOLATED, me, Severity.MAJOR, AlarmType.COMMUNICATIONS,
                                    f"{me} is isolated: no carrier on {links.lan_a} (lanA) or "
                                    f"{links.lan_b} (lanB); it does not take over, and hands over "
                                    f"if it is active and the peer may be alive")
        else:
            self.alarms.clear(ProbableCause.HEAD_ISOLATED, me)
        for name, up in links.carrier:
            subject = f"{me}/{name}"
            covered = links.isolated and name in (links.lan_a, links.lan_b)  # by the alarm above
            if up or covered:
                self.alarms.clear(ProbableCause.LAN_INTERFACE_FAILURE, subject)
            else:
                self.alarms.raise_alarm(ProbableCause.LAN_INTERFACE_FAILURE, subject, Severity.MAJOR,
                                        AlarmType.COMMUNICATIONS, f"no carrier on {name} of {me}")
