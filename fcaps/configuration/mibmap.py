"""Which writable HAOSCAR-MIB object is which configuration setting: the domain's map.

The SET path (`haoscar_snmp/snmp/setter.py`) and the read bindings take this map from the
daemon; they know SNMP, not what a heartbeat interval or a recovery policy is. A new
writable object (or column) is added here, beside the configuration it changes, and in
the MIB; a test fails if a writable MIB object is missing from the map.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import TypeAdapter

from haoscar_snmp.config.mibmap import ConfigMap, RowLayout, ScalarMap, adapter_problem
from haoscar_snmp.config.checkspec import CheckType
from haoscar_snmp.config.schema import AliasConfig, Config, ServiceConfig
from haoscar_snmp.config.values import Email
from haoscar_snmp.core.state import CheckKind, ControlAction, ServiceSelection

# haoscarServiceRecovery: MIB value <-> the policy's name in the configuration file.
RECOVERY_NAMES = {1: "restart-then-failover", 2: "restart-then-notify", 3: "notify-only"}
RECOVERY_VALUES = {name: value for value, name in RECOVERY_NAMES.items()}

# haoscarServiceCheckType: the configuration's word <-> the MIB value.
CHECK_TYPE_VALUES: dict[str, CheckKind] = {
    CheckType.COMMAND.value: CheckKind.COMMAND, CheckType.SYSTEMD.value: CheckKind.SYSTEMD_UNIT,
    CheckType.PROCESS.value: CheckKind.PROCESS, CheckType.TCP.value: CheckKind.TCP,
    CheckType.UDP.value: CheckKind.UDP, CheckType.HTTP.value: CheckKind.HTTP,
}
CHECK_TYPE_NAMES: dict[int, str] = {int(kind): name for name, kind in CHECK_TYPE_VALUES.items()}

# Service columns that map one to one onto a configuration key (the rest need converting).
SERVICE_PLAIN_COLUMNS: dict[str, str] = {
    "haoscarServiceName": "name", "haoscarServiceCheck": "check",
    "haoscarServiceRetryThreshold": "retry_threshold", "haoscarServiceRestartCommand": "restart",
    "haoscarServiceInterval": "interval_ms", "haoscarServiceTimeout": "timeout_ms",
    "haoscarServiceRise": "rise", "haoscarServiceCheckSend": "send", "haoscarServiceCheckExpect": "expect",
    "haoscarServiceMaxRestarts": "max_restarts", "haoscarServiceRestartWindow": "restart_window_s",
    "haoscarServiceResetAfter": "reset_after", "haoscarServiceFlapThreshold": "flap_threshold",
    "haoscarServiceFailureTimeout": "failure_timeout_s", "haoscarServiceRestartTimeout": "restart_timeout_ms",
}
# The configuration keys of a service that the overrides file stores for each row.
SERVICE_KEYS = ("name", "check", "check_type", "interval_ms", "timeout_ms", "rise", "send", "expect",
                "restart", "restart_timeout_ms", "retry_threshold", "recovery", "max_restarts",
                "restart_window_s", "reset_after", "flap_threshold", "failure_timeout_s", "enabled",
                "active_only")

# Writable scalars -> key in [timing].
TIMING_SCALARS: dict[str, str] = {
    "haoscarHeartbeatInterval": "heartbeat_interval_ms",
    "haoscarHeartbeatDeadTime": "heartbeat_dead_time_ms",
    "haoscarLanPollInterval": "lan_poll_interval_ms",
    "haoscarLanDownAfter": "lan_down_after_ms",
    "haoscarServiceCheckInterval": "service_check_interval_ms",
    "haoscarDefaultRetryThreshold": "service_retry_threshold",
    "haoscarAutoFailback": "auto_failback",
    "haoscarFailbackDelay": "failback_delay_s",
    "haoscarGarpCount": "garp_count",
}


def truth(value: bool) -> int:
    """A boolean as the MIB's TruthValue (true(1), false(2))."""
    return 1 if value else 2


def notify_email(config: Config) -> str:
    return ",".join(config.notify.email.to)


def _text(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def service_row(svc: Any) -> dict[str, Any]:
    """A configured service as the overrides file stores it."""
    row = {key: _text(getattr(svc, key)) for key in SERVICE_KEYS}
    row["restart"] = row["restart"] or ""
    row["row_status"] = svc.row_status.label
    return row


_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


def _email_problem(value: Any) -> str | None:
    """haoscarNotifyEmail is one address, or empty for nobody."""
    return adapter_problem(_EMAIL, value) if value else None


def alias_row(alias: Any) -> dict[str, Any]:
    """A configured alias as the overrides file stores it."""
    return {"address": str(alias.address), "prefix_length": alias.prefix_length,
            "interface": alias.interface, "row_status": alias.row_status.label}


def _timing(key: str) -> ScalarMap:
    boolean = key == "auto_failback"
    return ScalarMap(path=("timing", key),
                     read=lambda c: truth(getattr(c.timing, key)) if boolean else getattr(c.timing, key),
                     to_config=(lambda v: v == 1) if boolean else (lambda v: v))


def _service_defaults() -> dict[str, Any]:
    fields = ServiceConfig.model_fields
    return {key: _text(fields[key].default) for key in SERVICE_KEYS if key not in ("name", "check")}


SERVICES = RowLayout(
    key="services", row_status="haoscarServiceRowStatus",
    columns={
        **SERVICE_PLAIN_COLUMNS, "haoscarServiceRecovery": "recovery",
        "haoscarServiceAdminStatus": "enabled", "haoscarServiceActiveOnly": "active_only",
        "haoscarServiceCheckType": "check_type",
    },
    mandatory=("name", "check"),
    # Every column is listed, so a row re-created over a destroyed file row inherits nothing.
    defaults=_service_defaults(),
    row=service_row,
    to_config={"haoscarServiceRecovery": lambda v: RECOVERY_NAMES[v],
               "haoscarServiceAdminStatus": lambda v: v == 1,
               "haoscarServiceActiveOnly": lambda v: v == 1,
               "haoscarServiceCheckType": lambda v: CHECK_TYPE_NAMES[v]},
    to_mib={"haoscarServiceRecovery": lambda v: RECOVERY_VALUES.get(str(v), v),
            "haoscarServiceAdminStatus": truth,
            "haoscarServiceActiveOnly": truth,
            "haoscarServiceCheckType": lambda v: int(CHECK_TYPE_VALUES.get(str(v), v))},
    inherited={"haoscarServiceRetryThreshold": lambda c: c.timing.service_retry_threshold},
    model=ServiceConfig,
)

ALIASES = RowLayout(
    key="aliases", row_status="haoscarAliasRowStatus",
    columns={"haoscarAliasAddress": "address", "haoscarAliasPrefixLength": "prefix_length",
             "haoscarAliasInterface": "interface"},
    mandatory=("address", "interface"),
    defaults={"prefix_length": 24},
    row=alias_row,
    model=AliasConfig,
)

CONFIG_MAP = ConfigMap(
    scalars={**{name: _timing(key) for name, key in TIMING_SCALARS.items()},
             "haoscarNotifyEmail": ScalarMap(path=("notify_email",), read=notify_email,
                                             value_problem=_email_problem)},
    tables={"haoscarServiceEntry": SERVICES, "haoscarAliasEntry": ALIASES},
    actions={"haoscarControlAction": ControlAction, "haoscarControlServiceIndex": ServiceSelection},
)
