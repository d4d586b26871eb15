"""What the role machine tells of the cluster: split brain, the summary, failovers counted.

Split brain is both heads active as the heartbeats tell, or, with the peer not heard, an
alias of ours announced from another MAC on the public LAN: it publishes an event and
raises a splitBrain alarm, and once one head is active again, a resolving event and the
alarm cleared (the winner re-announces its aliases). The cluster state (normal, degraded,
failing over, failed, split brain) is judged after every cycle of the machine.

`RoleReport` is a part of `RoleMachine` (fault/role/machine.py), the sole writer of the
cluster summary: this part writes the failover count and timings and the cluster state;
the machine writes the active head at each transition.
"""

from __future__ import annotations

from typing import Callable

from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity, is_counter_reset
from haoscar_snmp.core.state import ClusterStatus, HeadStatus, PeerView, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from .decide import Peer

S = HeadStatus


class RoleReport:
    """Split brain, the cluster state and the failover count; part of `RoleMachine`."""

    # Of the machine (fault/role/machine.py), which sets these and defines the methods.
    state: State
    bus: EventBus
    alarms: Alarms
    clock: Clock
    me: str
    index: int
    status: HeadStatus
    split_brain: bool
    yielded: set[str]
    _announce_aliases: Callable[..., None]

    def _record_failover(self, duration_ms: int, reason: str) -> None:
        c = self.state.cluster
        c.failover_count += 1
        c.last_failover_time = self.clock.time()
        c.last_failover_duration_ms = duration_ms
        c.last_failover_reason = reason[:255]
        self.bus.publish(Event(EventType.FAILOVER_COMPLETED, self.me, Severity.WARNING,
                               f"failover to {self.me} completed in {duration_ms} ms: {reason}",
                               c.last_failover_time, {"head_index": self.index, "reason": reason,
                                                      "duration_ms": duration_ms}))

    def _split_brain(self, peer: Peer | None, claimed_by: str) -> None:
        """Both heads active, as the heartbeats tell; or, with the peer not heard, an alias
        of ours announced from another MAC (`claimed_by`) on the public LAN."""
        both = (peer is not None and peer.alive and self.status == S.ACTIVE
                and peer.status in (S.ACTIVE, S.TAKING_OVER))
        blind = bool(claimed_by) and self.status == S.ACTIVE and not both
        if (both or blind) and not self.split_brain:
            self.split_brain = True
            other = peer.name if peer is not None else "the peer"
            text = (f"split brain: {self.me} and {other} both active" if both else
                    f"split brain: an alias held by {self.me} is also announced by {claimed_by} "
                    f"on the public LAN ({other} not heard)")
            self.bus.publish(Event(EventType.SPLIT_BRAIN_DETECTED, self.me, Severity.CRITICAL, text,
                                   self.clock.time(), {"reason": text}))
            self.alarms.raise_alarm(ProbableCause.SPLIT_BRAIN, "cluster", Severity.CRITICAL,
                                    AlarmType.PROCESSING_ERROR, text)
        elif self.split_brain and not both and not blind and (
                self.status == S.ACTIVE or self.yielded
                or (peer is not None and peer.alive and peer.status == S.ACTIVE)):
            # Resolved: exactly one head is active again.
            self.split_brain = False
            winner = self.me if self.status == S.ACTIVE else (peer.name if peer else "the peer")
            self.bus.publish(Event(EventType.SPLIT_BRAIN_RESOLVED, self.me, Severity.INFO,
                                   f"split brain resolved: {winner} keeps the alias",
                                   self.clock.time()))
            self.alarms.clear(ProbableCause.SPLIT_BRAIN, "cluster")
            if self.status == S.ACTIVE:
                self._announce_aliases()  # the winner re-announces: clients may hold the loser's MAC

    def _cluster_status(self, view: PeerView | None) -> None:
        c = self.state.cluster
        peer_active = view is not None and view.heard and view.status == S.ACTIVE
        if self.split_brain:
            c.status = ClusterStatus.SPLIT_BRAIN
        elif self.status == S.TAKING_OVER:
            c.status = ClusterStatus.FAILING_OVER
        elif self.status != S.ACTIVE and not peer_active:
            c.status = ClusterStatus.FAILED if self.status != S.STARTING else ClusterStatus.UNKNOWN
        elif view is None:
            c.status = ClusterStatus.NORMAL
        elif not view.heard or len(view.paths_up) < len(self.state.hb_paths) or self.state.links.isolated:
            c.status = ClusterStatus.DEGRADED
        else:
            c.status = ClusterStatus.NORMAL
        if peer_active and view is not None:
            c.active_head = view.name

    def on_event(self, event: Event) -> None:
        """Event-bus subscriber: resetCounters zeroes the failover count (ours to write)."""
        if is_counter_reset(event):
            self.state.cluster.failover_count = 0
