"""Notifications: every event that the MIB defines a notification for goes to every target.

Each target has its own parameters, address and tag (see `Agent._targets`), and each
notification is sent to one target at a time by name, so a v2c target and a v3 target
never share an entry (sharing made pysnmp send every later notification twice, once in
cleartext). Var-binds are built explicitly, instance by instance, because pysnmp's
NotificationType cannot mix scalar and column instances.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from pysnmp.proto import rfc1902

from haoscar_snmp.core.clock import Clock, Timer
from haoscar_snmp.core.events import Event, EventType, is_counter_reset
from haoscar_snmp.core.state import AlarmRow, AlarmTargetRow, State, TargetStatus

from .mib import OID, MibModel
from .nocompiler import ntforg
from .resync import NoReachListener, NotifyTarget, ReachListener, ResyncSettings, TargetWatch, Verdict
from .values import date_and_time, encoder
from .view import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, MibView

log = logging.getLogger(__name__)

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

NOTIFICATIONS: dict[EventType, str] = {
    EventType.AGENT_STARTED: "haoscarAgentStarted",
    EventType.HEAD_DOWN: "haoscarHeadDown",
    EventType.HEAD_UP: "haoscarHeadUp",
    EventType.FAILOVER_STARTED: "haoscarFailoverStarted",
    EventType.FAILOVER_COMPLETED: "haoscarFailoverCompleted",
    EventType.FAILOVER_FAILED: "haoscarFailoverFailed",
    EventType.FAILBACK_COMPLETED: "haoscarFailbackCompleted",
    EventType.HB_PATH_DOWN: "haoscarHbPathDown",
    EventType.HB_PATH_UP: "haoscarHbPathUp",
    EventType.LAN_IF_DOWN: "haoscarLanIfDown",
    EventType.LAN_IF_UP: "haoscarLanIfUp",
    EventType.SERVICE_DOWN: "haoscarServiceDown",
    EventType.SERVICE_RECOVERED: "haoscarServiceRecovered",
    EventType.SERVICE_RECOVERY_EXHAUSTED: "haoscarServiceRecoveryExhausted",
    EventType.SPLIT_BRAIN_DETECTED: "haoscarSplitBrainDetected",
    EventType.SPLIT_BRAIN_RESOLVED: "haoscarSplitBrainResolved",
    EventType.ALARM_RAISED: "haoscarAlarmRaised",
    EventType.ALARM_CLEARED: "haoscarAlarmCleared",
    EventType.ALARM_CHANGED: "haoscarAlarmRaised",     # same index, new severity
    EventType.CONFIG_CHANGED: "haoscarConfigChanged",
    EventType.SERVICE_RESTARTED: "haoscarServiceLadderStep",
    EventType.SERVICE_RESTART_FAILED: "haoscarServiceLadderStep",
    EventType.SERVICE_ESCALATED: "haoscarServiceLadderStep",
    EventType.SERVICE_LADDER_RESET: "haoscarServiceLadderStep",
    EventType.LAN_FAILED: "haoscarLanFailed",
    EventType.LAN_RECOVERED: "haoscarLanRecovered",
    EventType.CONFIG_DRIFT: "haoscarConfigDrift",
    EventType.CONFIG_DRIFT_CLEARED: "haoscarConfigDriftCleared",
    EventType.PUBLIC_LAN_LOST: "haoscarPublicLanLost",
    EventType.PUBLIC_LAN_REGAINED: "haoscarPublicLanRegained",
    EventType.PEER_AUTH_FAILURE: "haoscarPeerAuthFailure",
    EventType.CREDENTIALS_CHANGED: "haoscarCredentialsChanged",
    EventType.CLUSTER_NODE_JOINED: "haoscarClusterNodeJoined",
    EventType.CLUSTER_NODE_LEFT: "haoscarClusterNodeLeft",
    EventType.QUORUM_LOST: "haoscarQuorumLost",
    EventType.QUORUM_REGAINED: "haoscarQuorumRegained",
    EventType.MEMBERSHIP_UNKNOWN: "haoscarMembershipUnknown",
    EventType.MEMBERSHIP_RECOVERED: "haoscarMembershipRecovered",
    EventType.RESOURCE_MOVED: "haoscarResourceMoved",
    EventType.RESOURCE_FAILED: "haoscarResourceFailed",
    EventType.RESOURCE_RECOVERED: "haoscarResourceRecovered",
    EventType.ADDRESS_STALE: "haoscarAddressStale",
    EventType.ADDRESS_STALE_CLEARED: "haoscarAddressStaleCleared",
}

# SNMPv2-MIB authenticationFailure (RFC 3418), sent for SNMP_AUTH_FAILURE events while
# snmpEnableAuthenTraps is enabled(1); it carries no objects of its own.
AUTHENTICATION_FAILURE = (1, 3, 6, 1, 6, 3, 1, 1, 5, 5)

# Which event-data key gives the row index of each table's column objects.
ROW_KEYS: dict[str, str] = {
    "haoscarHeadEntry": "head_index",
    "haoscarHbPathEntry": "path_key",
    "haoscarLanIfEntry": "lan_if_index",
    "haoscarLanEntry": "lan",           # 1 lanA, 2 lanB (see core.events.Event)
    "haoscarAliasEntry": "alias_index",
    "haoscarServiceEntry": "service_index",
    "haoscarAlarmEntry": "alarm_index",
    "haoscarClusterNodeEntry": "node_id",
    "haoscarResourceEntry": "resource_index",
}

# Event data key -> notify-only object carrying it.
NOTIFY_DATA: dict[str, str] = {
    "haoscarNotifyReason": "reason",
    "haoscarNotifyDuration": "duration_ms",
    "haoscarNotifyPrincipal": "principal",
    "haoscarNotifyObject": "oid",
    "haoscarNotifyOldValue": "old",
    "haoscarNotifyNewValue": "new",
    "haoscarNotifyResyncId": "resync_id",
    "haoscarNotifyResyncPosition": "position",
}

# Notifications sent to one target to resynchronise its alarm view, not for an event.
RESYNC_START = "haoscarAlarmResyncStart"
RESYNC_ALARM = "haoscarAlarmActive"
RESYNC_END = "haoscarAlarmResyncEnd"


class NotificationBuilder:
    """Turns an event into the var-bind list of its MIB notification."""

    def __init__(self, mib: MibModel, view: MibView, auth_traps: Callable[[], bool] = lambda: False) -> None:
        self.mib = mib
        self.view = view
        self.auth_traps = auth_traps
        self._encoders = {name: encoder(o) for name, o in mib.objects.items()
                          if o.node in ("scalar", "column")}

    def build(self, event: Event) -> list[tuple[OID, Any]] | None:
        if event.type == EventType.SNMP_AUTH_FAILURE:
            if not self.auth_traps():
                return None
            return [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier(AUTHENTICATION_FAILURE))]
        name = NOTIFICATIONS.get(event.type)
        if name is None:
            return None
        return self.build_named(name, event.subject, event.time, event.data)

    def build_named(self, name: str, subject: str, when: float,
                    data: dict[str, Any]) -> list[tuple[OID, Any]]:
        """The var-binds of notification `name`: what an event gives (`data` as an
        event's), the rest read from the view now."""
        notif = self.mib.notification(name)
        varbinds: list[tuple[OID, Any]] = [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier(notif.oid))]
        for obj_name in notif.objects:
            varbinds.append(self._varbind(obj_name, subject, when, data))
        return varbinds

    def _varbind(self, obj_name: str, subject: str, when: float, data: dict[str, Any]) -> tuple[OID, Any]:
        obj = self.mib[obj_name]
        enc = self._encoders[obj_name]
        if obj.node == "column":
            row_name = self.mib.row_of(obj).name
            key = data.get(ROW_KEYS[row_name], ())
            key = key if isinstance(key, tuple) else (key,)
            instance = obj.oid + tuple(key)
        else:
            instance = obj.oid + (0,)
        if obj_name == "haoscarNotifyTime":
            return instance, enc(date_and_time(when))
        if obj_name == "haoscarNotifySubject":
            return instance, enc(subject)
        if obj_name in NOTIFY_DATA:
            return instance, enc(data.get(NOTIFY_DATA[obj_name], _empty(obj.base)))
        if obj_name in data:  # e.g. a cleared alarm's columns: the row is gone
            return instance, enc(data[obj_name])
        value = self.view.get(instance)
        if value is NO_SUCH_OBJECT or value is NO_SUCH_INSTANCE:
            value = enc(_empty(obj.base))
        return instance, value


def _empty(base: str) -> Any:
    if base == "OctetString":
        return ""
    if base == "ObjectIdentifier":
        return (0, 0)
    return 0


# One queued send: var-binds, what it is (for the log), and the one target it is for
# (None: every target).
# The var-binds may be given as a function that builds them, called when the item's turn
# comes: a resynchronisation of thousands of alarms is built one alarm per loop pass.
_VarBinds = list[tuple[OID, Any]]
_Item = tuple["_VarBinds | Callable[[], _VarBinds]", str, "NotifyTarget | None"]


class Notifier:
    """Event-bus consumer: sends each notification to every configured target, and
    resynchronises an inform target's alarm view after informs to it were lost.

    An inform that pysnmp reports lost (after the target's own retries) makes its target
    unreachable (`TargetWatch`). Every resynchronisation interval, on the daemon's clock,
    the target is sent haoscarAlarmResyncStart; the first one it acknowledges is followed
    by one haoscarAlarmActive per active alarm, read at that moment, and
    haoscarAlarmResyncEnd, queued like any notification so that later raises and clears
    come after them. Trap targets are never acknowledged and never resynchronised."""

    def __init__(self, builder: NotificationBuilder, engine_fn: Callable[[], Any],
                 targets_fn: Callable[[], list[NotifyTarget]], clock: Clock, state: State,
                 settings_fn: Callable[[], ResyncSettings] = ResyncSettings,
                 reach: ReachListener = NoReachListener(), originator: Any = None) -> None:
        self.builder = builder
        self._engine_fn = engine_fn
        self._targets_fn = targets_fn
        self._clock = clock
        self.state = state                     # reads the alarm table; writes alarm_targets
        self._settings_fn = settings_fn
        self._reach = reach
        self._originator = originator or ntforg.NotificationOriginator()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._watches: dict[str, TargetWatch] = {}
        self._probes: dict[str, Timer] = {}     # the next haoscarAlarmResyncStart, per target
        self._probing: dict[str, int] = {}       # a haoscarAlarmResyncStart awaits its answer: its id
        self._resync_id = 0
        self._closed = False
        for target in targets_fn():
            self.state.alarm_targets.put((target.index,), AlarmTargetRow(
                target.name, target.inform,
                TargetStatus.REACHABLE if target.inform else TargetStatus.UNKNOWN))

    def __call__(self, event: Event) -> None:
        if is_counter_reset(event):
            for row in self.state.alarm_targets.values():
                row.sent = row.lost = row.resyncs = 0
        # The var-binds are built now, so they carry the values of the moment; encoding
        # and sending (milliseconds each in pysnmp) wait for the next loop turn, so that
        # whatever woke up with this event (a takeover) goes first.
        varbinds = self.builder.build(event)
        if varbinds is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests): send at once
            for target in self._targets_fn():
                self._send(target, varbinds, event.type.name)
            return
        self._enqueue([(varbinds, event.type.name, None)])

    def _enqueue(self, items: list[_Item]) -> None:
        for item in items:
            self._queue.put_nowait(item)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="notifications")

    async def _work(self) -> None:
        """Send queued notifications one target at a time, yielding to the loop after
        each: a burst of events (a failover publishes about ten) must not hold up the
        takeover's own steps, which resume from worker threads through the loop."""
        while not self._queue.empty():
            varbinds, what, only = self._queue.get_nowait()
            if callable(varbinds):
                varbinds = varbinds()
            for target in [only] if only is not None else self._targets_fn():
                self._send(target, varbinds, what)
                await asyncio.sleep(0)

    def retarget(self, _config: object = None) -> None:
        """After a reload replaced the notification targets (the agent registers them
        first): one haoscarAlarmTargetTable row per target as configured now, a target
        kept at the same position under the same name and kind keeping its row; the
        watch, probe and unreachable alarm of a target no longer configured go."""
        current = {target.entry: target for target in self._targets_fn()}
        for entry, watch in list(self._watches.items()):
            if current.get(entry) == watch.target:
                continue
            del self._watches[entry]
            self._probing.pop(entry, None)
            timer = self._probes.pop(entry, None)
            if timer is not None:
                timer.cancel()
            if not watch.reachable:
                self._reach.target_reach(watch.target.name, True, f"notification target "
                                         f"{watch.target.name} is no longer configured")
        rows = {}
        for target in current.values():
            row = self.state.alarm_targets.get((target.index,))
            if row is None or (row.name, row.inform) != (target.name, target.inform):
                row = AlarmTargetRow(target.name, target.inform,
                                     TargetStatus.REACHABLE if target.inform else TargetStatus.UNKNOWN)
            rows[(target.index,)] = row
        self.state.alarm_targets.clear()
        for key in sorted(rows):
            self.state.alarm_targets.put(key, rows[key])

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until every queued notification has been handed to its target:
        at shutdown, so that agentStopping and the release's notifications leave. No
        resynchronisation starts after it."""
        self._closed = True
        for timer in self._probes.values():
            timer.cancel()
        self._probes.clear()
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except asyncio.TimeoutError:
                log.warning("%d notification(s) not sent before stopping", self._queue.qsize())

    def unreachable(self) -> list[str]:
        """The inform targets whose last informs were lost, by name."""
        return sorted(w.target.name for w in self._watches.values() if not w.reachable)

    # -- sending -----------------------------------------------------------------------

    def _send(self, target: NotifyTarget, varbinds: list[tuple[OID, Any]], what: str) -> None:
        engine = self._engine_fn()
        if engine is None:                   # not started (or stopped): nothing leaves
            if what == RESYNC_START:
                self._probing.pop(target.entry, None)
            return
        seq = self._watch(target).sent() if target.inform else 0
        # The context name must be bytes: pysnmp's VACM compares it with bytes, and a
        # str "" silently fails that check (noSuchContext: notification dropped).
        self._originator.send_varbinds(engine, target.entry, None, b"", varbinds, self._done,
                                       (target, what, seq))
        row = self.state.alarm_targets.get((target.index,))
        if row is not None:
            row.sent += 1

    def _watch(self, target: NotifyTarget) -> TargetWatch:
        watch = self._watches.get(target.entry)
        if watch is None or watch.target != target:
            watch = self._watches[target.entry] = TargetWatch(target)
        return watch

    def _done(self, engine: Any, handle: Any, error_indication: Any, error_status: Any,
              error_index: Any, varbinds: Any, ctx: Any) -> None:
        """pysnmp's answer: an inform acknowledged or lost (after its retries), or a
        notification that could not be sent at all."""
        target, what, seq = ctx
        if error_indication:
            row = self.state.alarm_targets.get((target.index,))
            if row is not None:
                row.lost += 1
            log.warning("notification %s to target %s not delivered: %s", what, target.name,
                        error_indication)
        if not target.inform:
            return
        self.outcome(target, what, seq, not error_indication)

    def outcome(self, target: NotifyTarget, what: str, seq: int, acknowledged: bool) -> None:
        """The result of inform `seq` to `target`: move its state, probe or resynchronise."""
        watch = self._watch(target)
        verdict = watch.result(seq, acknowledged)
        row = self.state.alarm_targets.get((target.index,))
        if row is not None:
            row.status = TargetStatus.REACHABLE if watch.reachable else TargetStatus.UNREACHABLE
        if verdict is Verdict.LOST:
            log.warning("notification target %s is unreachable (an inform was lost after %s); "
                        "its alarm view is resynchronised when it answers again", target.name, what)
            self._reach.target_reach(target.name, False, f"notification target {target.name} does not "
                                                         f"acknowledge informs ({what} was lost)")
        elif verdict is Verdict.BACK:
            # Cleared first, so that the clear goes before the resynchronisation and the
            # burst does not carry this alarm.
            self._reach.target_reach(target.name, True, f"notification target {target.name} "
                                                        f"acknowledges informs again ({watch.describe()})")
        if what == RESYNC_START:
            resync_id = self._probing.pop(target.entry, 0)
            if acknowledged and resync_id:
                self._resynchronise(target, resync_id)
            elif not acknowledged:
                # Still owed, even if a later inform got through meanwhile (this one's
                # retries may all have fallen while the target was away).
                self._arm_probe(target)
            return
        if verdict is Verdict.BACK:
            self._cancel_probe(target)
            self._probe(target)              # it answers again: resynchronise it now
        elif not watch.reachable:
            self._arm_probe(target)

    def _arm_probe(self, target: NotifyTarget) -> None:
        settings = self._settings_fn()
        if (self._closed or not settings.enabled or target.entry in self._probes
                or target.entry in self._probing):
            return
        self._probes[target.entry] = self._clock.call_later(settings.interval_s, self._probe, target)

    def _cancel_probe(self, target: NotifyTarget) -> None:
        timer = self._probes.pop(target.entry, None)
        if timer is not None:
            timer.cancel()

    def _probe(self, target: NotifyTarget) -> None:
        """Send haoscarAlarmResyncStart to `target`: the probe of an unreachable target
        and the first notification of its resynchronisation."""
        self._probes.pop(target.entry, None)
        if self._closed or target.entry in self._probing or not self._settings_fn().enabled:
            return
        if target not in self._targets_fn():
            return                           # no longer configured
        self._resync_id = resync_id = self._resync_id % 0xFFFFFFFF + 1
        self._probing[target.entry] = resync_id
        watch = self._watch(target)
        varbinds = self.builder.build_named(RESYNC_START, target.name, self._clock.time(),
                                            {"resync_id": resync_id, "reason": watch.describe()})
        self._enqueue([(varbinds, RESYNC_START, target)])

    def _active(self, alarm: AlarmRow, index: int, now: float, resync_id: int,
                position: int) -> Callable[[], _VarBinds]:
        """haoscarAlarmActive of one alarm as it is now, to be built later."""
        data = {"alarm_index": index, "resync_id": resync_id, "position": position,
                "haoscarAlarmSeverity": alarm.severity, "haoscarAlarmType": alarm.alarm_type,
                "haoscarAlarmProbableCause": alarm.probable_cause, "haoscarAlarmSubject": alarm.subject,
                "haoscarAlarmRaisedTime": alarm.raised_time,
                "haoscarAlarmLastUpdated": alarm.last_updated or alarm.raised_time,
                "haoscarAlarmText": alarm.text}
        return lambda: self.builder.build_named(RESYNC_ALARM, alarm.subject, now, data)

    def _resynchronise(self, target: NotifyTarget, resync_id: int) -> None:
        """The target acknowledged haoscarAlarmResyncStart: queue the active alarms, as
        they are now, and haoscarAlarmResyncEnd, all for that target only."""
        now = self._clock.time()
        # The table of this moment: its rows are frozen (a change replaces a row), so
        # holding them keeps the snapshot while each alarm's var-binds are built in its
        # own loop pass (bench/bench_alarm_resync.py: building them all at once held the
        # loop 164 ms for 1,000 alarms). The end, with
        # the count and the last-changed stamp of this moment, is built now.
        alarms = self.state.alarms.items()
        items: list[_Item] = [(self._active(alarm, index, now, resync_id, position), RESYNC_ALARM, target)
                              for position, ((index,), alarm) in enumerate(alarms, start=1)]
        items.append((self.builder.build_named(RESYNC_END, target.name, now, {"resync_id": resync_id}),
                      RESYNC_END, target))
        row = self.state.alarm_targets.get((target.index,))
        if row is not None:
            row.resyncs += 1
            row.last_resync = self._clock.monotonic()
        log.info("notification target %s answers again: resynchronising its alarm view "
                 "(resync %d, %d active alarm(s))", target.name, resync_id, len(alarms))
        self._enqueue(items)
