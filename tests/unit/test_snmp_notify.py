"""snmp.notify.NotificationBuilder: an event becomes exactly the var-binds its MIB notification lists."""

from __future__ import annotations

from typing import Any

import pytest
from pysnmp.proto import rfc1902

from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.events import Event, EventType, Severity
from haoscar_snmp.core.state import (
    AlarmRow,
    ConfigSyncStatus,
    Lan,
    LanStatus,
    ServiceRow,
    ServiceStatus,
    State,
)
from haoscar_snmp.snmp.bindings import bind_all
from haoscar_snmp.snmp.mib import OID, MibModel
from haoscar_snmp.snmp.notify import (
    NOTIFICATIONS,
    RESYNC_ALARM,
    RESYNC_END,
    RESYNC_START,
    ROW_KEYS,
    SNMP_TRAP_OID,
    NotificationBuilder,
)
from haoscar_snmp.snmp.values import date_and_time
from haoscar_snmp.snmp.view import MibView

NOW = 1_700_000_000.0

# Event types past 19 with a notification of their own, and its number.
LAN_NOTIFICATIONS = {EventType.LAN_FAILED: 21, EventType.LAN_RECOVERED: 22}
DRIFT_NOTIFICATIONS = {EventType.CONFIG_DRIFT: 23, EventType.CONFIG_DRIFT_CLEARED: 24}
PUBLIC_NOTIFICATIONS = {EventType.PUBLIC_LAN_LOST: 25, EventType.PUBLIC_LAN_REGAINED: 26}
SECURITY_NOTIFICATIONS = {EventType.PEER_AUTH_FAILURE: 35, EventType.CREDENTIALS_CHANGED: 36}
# The cluster past two heads: event types 38 to 48 are notifications 37 to 47, in order.
MEMBERSHIP_NOTIFICATIONS = {kind: int(kind) - 1 for kind in EventType if 38 <= kind <= 48}


@pytest.fixture
def state() -> State:
    state = State()
    state.cluster.local_head = "head1"
    state.cluster.agent_version = "0.1.0"
    return state


@pytest.fixture
def builder(mib: MibModel, cfg: Config, state: State) -> NotificationBuilder:
    view = MibView(mib)
    bind_all(view, state, lambda: cfg, CONFIG_MAP, lambda m: 0, lambda: 0)
    return NotificationBuilder(mib, view)


def event(kind: EventType, subject: str = "", data: dict[str, Any] | None = None) -> Event:
    return Event(kind, subject, Severity.INFO, f"{kind.name} {subject}", NOW, data or {})


def values(varbinds: list[tuple[OID, Any]], mib: MibModel) -> dict[str, Any]:
    """var-binds by object name (instance part dropped), for readable assertions."""
    by_oid = {o.oid: o.name for o in mib.objects.values()}
    out = {}
    for oid, value in varbinds[1:]:
        for cut in range(len(oid), 0, -1):
            if oid[:cut] in by_oid:
                out[by_oid[oid[:cut]]] = value
                break
    return out


def test_agent_started_carries_exactly_its_notification_objects(builder: NotificationBuilder,
                                                                mib: MibModel) -> None:
    varbinds = builder.build(event(EventType.AGENT_STARTED, "head1"))
    notif = mib.notification("haoscarAgentStarted")
    assert varbinds[0] == (SNMP_TRAP_OID, rfc1902.ObjectIdentifier(notif.oid))
    assert varbinds[0][1] == rfc1902.ObjectIdentifier(mib.root + (0, 1))
    assert [oid for oid, _ in varbinds[1:]] == [mib[name].oid + (0,) for name in notif.objects]
    got = values(varbinds, mib)
    assert got["haoscarNotifyTime"].asOctets() == date_and_time(NOW)
    assert got["haoscarNotifySubject"].asOctets() == b"head1"
    assert got["haoscarLocalHead"].asOctets() == b"head1"
    assert got["haoscarAgentVersion"].asOctets() == b"0.1.0"


def test_service_down_reads_the_row_named_in_the_event(builder: NotificationBuilder, mib: MibModel,
                                                       state: State) -> None:
    state.services.put((3,), ServiceRow(name="web", check="true", status=ServiceStatus.FAILED,
                                        consec_failures=4))
    varbinds = builder.build(event(EventType.SERVICE_DOWN, "web",
                                   {"service_index": 3, "reason": "check failed 4 times"}))
    notif = mib.notification("haoscarServiceDown")
    expected = []
    for name in notif.objects:
        obj = mib[name]
        expected.append(obj.oid + ((3,) if obj.node == "column" else (0,)))
    assert [oid for oid, _ in varbinds[1:]] == expected
    got = values(varbinds, mib)
    assert got["haoscarServiceName"].asOctets() == b"web"
    assert int(got["haoscarServiceState"]) == int(ServiceStatus.FAILED)
    assert int(got["haoscarServiceConsecFailures"]) == 4
    assert got["haoscarNotifyReason"].asOctets() == b"check failed 4 times"


def test_a_row_that_is_already_gone_gives_empty_values_of_the_right_type(builder: NotificationBuilder,
                                                                        mib: MibModel) -> None:
    varbinds = builder.build(event(EventType.SERVICE_DOWN, "web", {"service_index": 3}))
    got = values(varbinds, mib)
    assert got["haoscarServiceName"] == rfc1902.OctetString(b"")
    assert isinstance(got["haoscarServiceConsecFailures"], rfc1902.Gauge32)
    assert got["haoscarNotifyReason"] == rfc1902.OctetString(b"")


@pytest.mark.parametrize("kind, name", [(EventType.LAN_FAILED, "haoscarLanFailed"),
                                        (EventType.LAN_RECOVERED, "haoscarLanRecovered")])
def test_a_lan_notification_reads_the_row_of_the_lan_in_the_event(builder: NotificationBuilder,
                                                                 mib: MibModel, state: State,
                                                                 kind: EventType, name: str) -> None:
    row = state.lans[(int(Lan.LAN_B),)]
    row.status, row.interfaces, row.down = LanStatus.FAILED, 102, 97
    varbinds = builder.build(event(kind, "lanB", {"lan": int(Lan.LAN_B)}))
    assert varbinds[0][1] == rfc1902.ObjectIdentifier(mib.notification(name).oid)
    assert [oid[-1] for oid, _ in varbinds[1:]] == [0, 0, 2, 2, 2]
    got = values(varbinds, mib)
    assert got["haoscarNotifySubject"].asOctets() == b"lanB"
    assert int(got["haoscarLanStatus"]) == int(LanStatus.FAILED)
    assert (int(got["haoscarLanInterfaces"]), int(got["haoscarLanDown"])) == (102, 97)


def test_a_cleared_alarm_takes_its_columns_from_the_event(builder: NotificationBuilder, mib: MibModel,
                                                          state: State) -> None:
    varbinds = builder.build(event(EventType.ALARM_CLEARED, "web", {
        "alarm_index": 7, "haoscarAlarmSeverity": 1, "haoscarAlarmProbableCause": 4,
        "haoscarAlarmSubject": "web"}))
    assert [oid[-1] for oid, _ in varbinds[1:]][2:] == [7, 7, 7]
    got = values(varbinds, mib)
    assert int(got["haoscarAlarmSeverity"]) == 1
    assert int(got["haoscarAlarmProbableCause"]) == 4
    assert got["haoscarAlarmSubject"].asOctets() == b"web"


def test_a_raised_alarm_reads_its_row(builder: NotificationBuilder, mib: MibModel, state: State) -> None:
    state.alarms.put((2,), AlarmRow(4, 3, 4, "web", NOW, "service web is down"))
    got = values(builder.build(event(EventType.ALARM_RAISED, "web", {"alarm_index": 2})), mib)
    assert got["haoscarAlarmText"].asOctets() == b"service web is down"
    assert int(got["haoscarAlarmSeverity"]) == 4


def test_config_changed_carries_who_what_old_and_new(builder: NotificationBuilder, mib: MibModel) -> None:
    oid = mib["haoscarHeartbeatInterval"].oid + (0,)
    got = values(builder.build(event(EventType.CONFIG_CHANGED, "haoscarHeartbeatInterval", {
        "principal": "v3:admin", "oid": oid, "old": "5000", "new": "1000"})), mib)
    assert got["haoscarNotifyPrincipal"].asOctets() == b"v3:admin"
    assert got["haoscarNotifyObject"] == rfc1902.ObjectIdentifier(oid)
    assert (got["haoscarNotifyOldValue"].asOctets(), got["haoscarNotifyNewValue"].asOctets()) == (b"5000", b"1000")


@pytest.mark.parametrize("kind, name, status", [
    (EventType.CONFIG_DRIFT, "haoscarConfigDrift", ConfigSyncStatus.DRIFT),
    (EventType.CONFIG_DRIFT_CLEARED, "haoscarConfigDriftCleared", ConfigSyncStatus.IN_SYNC)])
def test_a_drift_notification_reads_the_config_sync_scalars(builder: NotificationBuilder, mib: MibModel,
                                                            state: State, kind: EventType, name: str,
                                                            status: ConfigSyncStatus) -> None:
    sync = state.config_sync
    sync.status, sync.version, sync.peer_version = status, 7, 9
    sync.differing = "" if status is ConfigSyncStatus.IN_SYNC else "timing.heartbeat_interval_ms, services[pbs].check"
    varbinds = builder.build(event(kind))
    notif = mib.notification(name)
    assert varbinds[0] == (SNMP_TRAP_OID, rfc1902.ObjectIdentifier(notif.oid))
    assert [oid for oid, _ in varbinds[1:]] == [mib[obj].oid + (0,) for obj in notif.objects]
    got = values(varbinds, mib)
    assert set(got) >= {"haoscarConfigSyncStatus", "haoscarConfigSyncVersion", "haoscarConfigSyncPeerVersion",
                        "haoscarConfigSyncDiffering"}
    assert int(got["haoscarConfigSyncStatus"]) == int(status)
    assert isinstance(got["haoscarConfigSyncVersion"], rfc1902.Unsigned32)
    assert (int(got["haoscarConfigSyncVersion"]), int(got["haoscarConfigSyncPeerVersion"])) == (7, 9)
    assert got["haoscarConfigSyncDiffering"].asOctets() == sync.differing.encode()
    assert got["haoscarNotifySubject"].asOctets() == b""


def test_events_without_a_notification_build_nothing(builder: NotificationBuilder) -> None:
    for kind in set(EventType) - set(NOTIFICATIONS):
        assert builder.build(event(kind)) is None


def test_snmp_auth_failure_is_the_standard_notification_only_while_enabled(mib: MibModel, state: State) -> None:
    enabled = [False]
    builder = NotificationBuilder(mib, MibView(mib), lambda: enabled[0])
    failure = event(EventType.SNMP_AUTH_FAILURE)
    assert builder.build(failure) is None            # snmpEnableAuthenTraps disabled(2)
    enabled[0] = True
    assert builder.build(failure) == [(SNMP_TRAP_OID, rfc1902.ObjectIdentifier((1, 3, 6, 1, 6, 3, 1, 1, 5, 5)))]


def test_every_mapped_event_type_names_an_existing_notification(mib: MibModel) -> None:
    for kind, name in NOTIFICATIONS.items():
        notif = mib.notification(name)  # KeyError if the MIB has no such notification
        if kind <= 19:   # one notification per event type, numbered like haoscarEventType
            assert notif.oid == mib.root + (0, int(kind)), name
        elif kind in LAN_NOTIFICATIONS:
            assert notif.oid == mib.root + (0, LAN_NOTIFICATIONS[kind]), name
        elif kind in DRIFT_NOTIFICATIONS:
            assert notif.oid == mib.root + (0, DRIFT_NOTIFICATIONS[kind]), name
        elif kind in PUBLIC_NOTIFICATIONS:
            assert notif.oid == mib.root + (0, PUBLIC_NOTIFICATIONS[kind]), name
        elif kind in SECURITY_NOTIFICATIONS:
            assert notif.oid == mib.root + (0, SECURITY_NOTIFICATIONS[kind]), name
        elif kind in MEMBERSHIP_NOTIFICATIONS:
            assert notif.oid == mib.root + (0, MEMBERSHIP_NOTIFICATIONS[kind]), name
        elif kind == EventType.ALARM_CHANGED:  # X.733: the same alarm, its new severity
            assert name == "haoscarAlarmRaised"
        else:            # the service ladder's steps share haoscarServiceLadderStep
            assert name == "haoscarServiceLadderStep", kind


def test_every_mib_notification_is_sent_for_some_event(mib: MibModel) -> None:
    in_mib = {o.name for o in mib.objects.values() if o.node == "notification"}
    assert set(NOTIFICATIONS.values()) | {RESYNC_START, RESYNC_ALARM, RESYNC_END} == in_mib


def test_every_column_in_a_notification_has_a_row_key(mib: MibModel) -> None:
    for name in NOTIFICATIONS.values():
        for obj_name in mib.notification(name).objects:
            obj = mib[obj_name]
            if obj.node == "column":
                assert mib.row_of(obj).name in ROW_KEYS, (name, obj_name)


def test_every_notification_builds_with_its_row_keys(builder: NotificationBuilder, mib: MibModel) -> None:
    data = {"head_index": 1, "path_key": (2, 1), "lan_if_index": 1, "lan": 1, "alias_index": 1,
            "service_index": 1, "alarm_index": 1, "node_id": 1, "resource_index": 1, "reason": "r",
            "duration_ms": 5,
            "principal": "p", "oid": (1, 3), "old": "o", "new": "n"}
    for kind, name in NOTIFICATIONS.items():
        varbinds = builder.build(event(kind, "x", data))
        assert len(varbinds) == 1 + len(mib.notification(name).objects)
        for oid, _ in varbinds[1:]:
            obj = next(o for o in mib.objects.values() if oid[: len(o.oid)] == o.oid and o.node != "row"
                       and o.node != "table")
            suffix = oid[len(obj.oid):]
            if obj.node == "scalar":
                assert suffix == (0,), (name, obj.name)
            else:
                assert suffix == ((2, 1) if obj.name.startswith("haoscarHbPath") else (1,)), (name, obj.name)


def test_security_notifications_carry_the_reason_and_the_counters(builder: NotificationBuilder, mib: MibModel,
                                                                    state: State) -> None:
    state.security.hb_auth_failures, state.security.hb_replays = 7, 2
    peer = values(builder.build(event(EventType.PEER_AUTH_FAILURE, "heartbeat",
                                      {"reason": "7 heartbeat authentication failures"})), mib)
    assert peer["haoscarNotifyReason"].asOctets() == b"7 heartbeat authentication failures"
    assert (int(peer["haoscarHbAuthFailures"]), int(peer["haoscarHbReplays"])) == (7, 2)
    audit = values(builder.build(event(EventType.CREDENTIALS_CHANGED, "snmp",
                                       {"principal": "reload", "reason": "community 1 replaced"})), mib)
    assert audit["haoscarNotifyPrincipal"].asOctets() == b"reload"
    assert audit["haoscarNotifyReason"].asOctets() == b"community 1 replaced"
    assert audit["haoscarNotifySubject"].asOctets() == b"snmp"
