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

from pysnmp.entity.rfc3413 import ntforg
from pysnmp.proto import rfc1902

from haoscar_snmp.core.events import Event, EventType

from .mib import OID, MibModel
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
}

# Event data key -> notify-only object carrying it.
NOTIFY_DATA: dict[str, str] = {
    "haoscarNotifyReason": "reason",
    "haoscarNotifyDuration": "duration_ms",
    "haoscarNotifyPrincipal": "principal",
    "haoscarNotifyObject": "oid",
    "haoscarNotifyOldValue": "old",
    "haoscarNotifyNewValue": "new",
}


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
        notif = self.mib.notification(name)
        varbinds: list[tuple[OID, Any]] = [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier(notif.oid))]
        for obj_name in notif.objects:
            varbinds.append(self._varbind(obj_name, event))
        return varbinds

    def _varbind(self, obj_name: str, event: Event) -> tuple[OID, Any]:
        obj = self.mib[obj_name]
        enc = self._encoders[obj_name]
        if obj.node == "column":
            row_name = self.mib.row_of(obj).name
            key = event.data.get(ROW_KEYS[row_name], ())
            key = key if isinstance(key, tuple) else (key,)
            instance = obj.oid + tuple(key)
        else:
            instance = obj.oid + (0,)
        if obj_name == "haoscarNotifyTime":
            return instance, enc(date_and_time(event.time))
        if obj_name == "haoscarNotifySubject":
            return instance, enc(event.subject)
        if obj_name in NOTIFY_DATA:
            return instance, enc(event.data.get(NOTIFY_DATA[obj_name], _empty(obj.base)))
        if obj_name in event.data:  # e.g. a cleared alarm's columns: the row is gone
            return instance, enc(event.data[obj_name])
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


class Notifier:
    """Event-bus consumer: sends each notification to every configured target."""

    def __init__(self, builder: NotificationBuilder, engine_fn: Callable[[], Any],
                 targets_fn: Callable[[], list[str]]) -> None:
        self.builder = builder
        self._engine_fn = engine_fn
        self._targets_fn = targets_fn
        self._originator = ntforg.NotificationOriginator()
        self._queue: asyncio.Queue[tuple[list[tuple[OID, Any]], str]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    def __call__(self, event: Event) -> None:
        # The var-binds are built now, so they carry the values of the moment; encoding
        # and sending (milliseconds each in pysnmp) wait for the next loop turn, so that
        # whatever woke up with this event (a takeover) goes first.
        varbinds = self.builder.build(event)
        if varbinds is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit tests): send at once
            for target in self._targets_fn():
                self._send(target, varbinds, event.type.name)
            return
        self._queue.put_nowait((varbinds, event.type.name))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name="notifications")

    async def _work(self) -> None:
        """Send queued notifications one target at a time, yielding to the loop after
        each: a burst of events (a failover publishes about ten) must not hold up the
        takeover's own steps, which resume from worker threads through the loop."""
        while not self._queue.empty():
            varbinds, what = self._queue.get_nowait()
            for target in self._targets_fn():
                self._send(target, varbinds, what)
                await asyncio.sleep(0)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until every queued notification has been handed to its target:
        at shutdown, so that agentStopping and the release's notifications leave."""
        worker = self._worker
        if worker is not None and not worker.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker), timeout)
            except asyncio.TimeoutError:
                log.warning("%d notification(s) not sent before stopping", self._queue.qsize())

    def _send(self, target: str, varbinds: list[tuple[OID, Any]], what: str) -> None:
        engine = self._engine_fn()
        if engine is None:
            return
        # The context name must be bytes: pysnmp's VACM compares it with bytes, and a
        # str "" silently fails that check (noSuchContext: notification dropped).
        self._originator.send_varbinds(engine, target, None, b"", varbinds, self._done, (target, what))
        self.sent += 1

    def _done(self, engine: Any, handle: Any, error_indication: Any, error_status: Any,
              error_index: Any, varbinds: Any, ctx: Any) -> None:
        if error_indication:
            self.failed += 1
            target, what = ctx
            log.warning("notification %s to target %s not delivered: %s", what, target,
                        error_indication)
