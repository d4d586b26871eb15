"""The code and the MIB agree: every enumeration, and every range the configuration and
the MIB both state, is the same on both sides (the MIB is the source of truth)."""

from __future__ import annotations

import enum

import pytest

from fcaps.configuration.mibmap import CONFIG_MAP, RECOVERY_VALUES, TIMING_SCALARS
from fcaps.fault.alarms import AlarmType, ProbableCause
from haoscar_snmp.config.schema import (
    AliasConfig,
    Recovery,
    ServiceConfig,
    TimingConfig,
)
from haoscar_snmp.core.events import EventType, Severity
from haoscar_snmp.core.state import (
    AcctKind,
    AgentxStatus,
    AliasStatus,
    CheckKind,
    ClusterStatus,
    ConfigSyncStatus,
    ControlAction,
    ControlResult,
    DurationKind,
    FrontEnd,
    HeadRole,
    HeadStatus,
    Lan,
    LanSource,
    LanStatus,
    LinkStatus,
    PollerPolicy,
    RecoveryAction,
    ServiceRung,
    ServiceStatus,
)
from haoscar_snmp.snmp.mib import MibModel


def camel(name: str) -> str:
    """TAKING_OVER -> takingOver, LAN_A -> lanA (the MIB's spelling of an enum label)."""
    first, *rest = name.lower().split("_")
    return first + "".join(part.capitalize() for part in rest)


ENUMS: list[tuple[type[enum.IntEnum], str, str]] = [
    (ClusterStatus, "haoscarClusterState", ""),
    (HeadStatus, "haoscarHeadState", ""),
    (HeadRole, "haoscarHeadPreferredRole", ""),
    (LinkStatus, "haoscarHbPathStatus", ""),
    (LinkStatus, "haoscarLanIfStatus", ""),
    (LinkStatus, "haoscarLanIfCarrier", ""),
    (LanSource, "haoscarLanIfSource", ""),
    (LanStatus, "haoscarLanStatus", ""),
    (PollerPolicy, "haoscarLanPollerPolicy", ""),
    (Lan, "haoscarHbPathLan", ""),
    (Lan, "haoscarLanIfLan", ""),
    (Lan, "haoscarLanIndex", ""),
    (AliasStatus, "haoscarAliasStatus", ""),
    (ServiceStatus, "haoscarServiceState", ""),
    (RecoveryAction, "haoscarServiceLastAction", ""),
    (ServiceRung, "haoscarServiceRung", ""),
    (CheckKind, "haoscarServiceCheckType", ""),
    (ControlAction, "haoscarControlAction", ""),
    (ControlAction, "haoscarControlLastAction", ""),
    (ControlResult, "haoscarControlResult", ""),
    (EventType, "haoscarEventType", ""),
    (Severity, "haoscarEventSeverity", ""),
    (Severity, "haoscarAlarmSeverity", ""),
    (AlarmType, "haoscarAlarmType", "Alarm"),
    (ProbableCause, "haoscarAlarmProbableCause", ""),
    (AgentxStatus, "haoscarAgentxStatus", ""),
    (ConfigSyncStatus, "haoscarConfigSyncStatus", ""),
    (DurationKind, "haoscarPerfDurationKind", ""),
    (FrontEnd, "haoscarPerfRequestFrontEnd", ""),
    (AcctKind, "haoscarAcctSubjectType", ""),
]


@pytest.mark.parametrize("py_enum, mib_name, suffix", ENUMS, ids=[f"{e.__name__}-{m}" for e, m, _ in ENUMS])
def test_every_enumeration_is_the_mibs(mib: MibModel, py_enum: type[enum.IntEnum], mib_name: str,
                                       suffix: str) -> None:
    ours = {camel(member.name) + suffix: int(member) for member in py_enum}
    assert ours == mib[mib_name].enums


def test_lan_poller_policies_are_the_configurations() -> None:
    from haoscar_snmp.config.schema import Poller
    assert [p.name for p in Poller] == [p.name for p in PollerPolicy]


def test_the_lan_table_has_the_private_lans_from_the_start() -> None:
    from haoscar_snmp.core.state import State
    assert State().lans.keys() == [(int(Lan.LAN_A),), (int(Lan.LAN_B),)]


def test_recovery_policies_are_the_mibs(mib: MibModel) -> None:
    ours = {camel(policy.value.replace("-", "_")): RECOVERY_VALUES[policy.value] for policy in Recovery}
    assert ours == mib["haoscarServiceRecovery"].enums


def bounds(model: type, field: str) -> tuple[int | None, int | None]:
    """(minimum, maximum) of a number, or of a string's length, as the schema states it."""
    prop = model.model_json_schema()["properties"][field]
    for option in prop.get("anyOf", [prop]):           # Optional[...]: the non-null option
        if option.get("type") in ("integer", "string"):
            if option["type"] == "integer":
                return option.get("minimum"), option.get("maximum")
            return option.get("minLength", 0), option.get("maxLength")
    return None, None


@pytest.mark.parametrize("mib_name, key", sorted(TIMING_SCALARS.items()))
def test_timing_ranges_are_the_mibs(mib: MibModel, mib_name: str, key: str) -> None:
    obj = mib[mib_name]
    if obj.enums:                                          # TruthValue: a bool in the file
        assert TimingConfig.model_fields[key].annotation is bool
        return
    assert bounds(TimingConfig, key) == obj.ranges[0]


@pytest.mark.parametrize("model, field, mib_name, kind", [
    (ServiceConfig, "retry_threshold", "haoscarServiceRetryThreshold", "ranges"),
    (ServiceConfig, "name", "haoscarServiceName", "sizes"),
    (ServiceConfig, "check", "haoscarServiceCheck", "sizes"),
    (ServiceConfig, "restart", "haoscarServiceRestartCommand", "sizes"),
    (ServiceConfig, "rise", "haoscarServiceRise", "ranges"),
    (ServiceConfig, "send", "haoscarServiceCheckSend", "sizes"),
    (ServiceConfig, "expect", "haoscarServiceCheckExpect", "sizes"),
    (ServiceConfig, "max_restarts", "haoscarServiceMaxRestarts", "ranges"),
    (ServiceConfig, "restart_window_s", "haoscarServiceRestartWindow", "ranges"),
    (ServiceConfig, "reset_after", "haoscarServiceResetAfter", "ranges"),
    (ServiceConfig, "flap_threshold", "haoscarServiceFlapThreshold", "ranges"),
    (ServiceConfig, "failure_timeout_s", "haoscarServiceFailureTimeout", "ranges"),
    (ServiceConfig, "restart_timeout_ms", "haoscarServiceRestartTimeout", "ranges"),
    (AliasConfig, "prefix_length", "haoscarAliasPrefixLength", "ranges"),
])
def test_row_ranges_and_sizes_are_the_mibs(mib: MibModel, model: type, field: str, mib_name: str,
                                          kind: str) -> None:
    assert bounds(model, field) == getattr(mib[mib_name], kind)[0]


def test_check_types_are_the_mibs(mib: MibModel) -> None:
    from fcaps.configuration.mibmap import CHECK_TYPE_VALUES
    from haoscar_snmp.config.checkspec import CheckType
    assert {CheckType(name): CheckKind(value) for name, value in CHECK_TYPE_VALUES.items()} == {
        CheckType.COMMAND: CheckKind.COMMAND, CheckType.SYSTEMD: CheckKind.SYSTEMD_UNIT,
        CheckType.PROCESS: CheckKind.PROCESS, CheckType.TCP: CheckKind.TCP, CheckType.UDP: CheckKind.UDP,
        CheckType.HTTP: CheckKind.HTTP}


@pytest.mark.parametrize("field, mib_name, low, high", [
    ("interval_ms", "haoscarServiceInterval", 100, 3600000),
    ("timeout_ms", "haoscarServiceTimeout", 10, 600000),
])
def test_zero_or_a_range_columns_are_the_mibs(mib: MibModel, field: str, mib_name: str, low: int,
                                              high: int) -> None:
    assert mib[mib_name].ranges == ((0, 0), (low, high))
    for value, ok in ((0, True), (low, True), (high, True), (low - 1, False), (high + 1, False)):
        try:
            ServiceConfig(name="s", check="true", **{field: value})
        except ValueError:
            assert not ok, value
        else:
            assert ok, value


def test_every_writable_object_of_the_mib_is_in_the_configuration_map(mib: MibModel) -> None:
    writable = {o.name for o in mib.objects.values() if o.node in ("scalar", "column") and o.writable}
    assert CONFIG_MAP.writable_names() == writable


def test_row_status_is_rfc_2579s(mib: MibModel) -> None:
    from haoscar_snmp.core.state import RowStatus
    for column in ("haoscarServiceRowStatus", "haoscarAliasRowStatus"):
        assert {status.label: int(status) for status in RowStatus} == mib[column].enums
