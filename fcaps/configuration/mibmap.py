"""Which writable HAOSCAR-MIB object is which configuration setting: the domain's map.

The SET path (`haoscar_snmp/snmp/setter.py`) and the read bindings take this map from the
daemon; they know SNMP, not what a heartbeat interval or a recovery policy is. A new
writable object (or column) is added here, beside the configuration it changes, and in
the MIB; a test fails if a writable MIB object is missing from the map.
"""

from __future__ import annotations

import enum
from typing import Any

from haoscar_snmp.config.mibmap import ConfigMap, RowLayout, ScalarMap
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import ControlAction

# haoscarServiceRecovery: MIB value <-> the policy's name in the configuration file.
RECOVERY_NAMES = {1: "restart-then-failover", 2: "restart-then-notify", 3: "notify-only"}
RECOVERY_VALUES = {name: value for value, name in RECOVERY_NAMES.items()}

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
    return {"name": svc.name, "check": svc.check, "restart": svc.restart or "",
            "retry_threshold": svc.retry_threshold, "recovery": _text(svc.recovery),
            "enabled": svc.enabled, "active_only": svc.active_only,
            "row_status": svc.row_status.label}


def alias_row(alias: Any) -> dict[str, Any]:
    """A configured alias as the overrides file stores it."""
    return {"address": str(alias.address), "prefix_length": alias.prefix_length,
            "interface": alias.interface, "row_status": alias.row_status.label}


def _timing(key: str) -> ScalarMap:
    boolean = key == "auto_failback"
    return ScalarMap(path=("timing", key),
                     read=lambda c: truth(getattr(c.timing, key)) if boolean else getattr(c.timing, key),
                     to_config=(lambda v: v == 1) if boolean else (lambda v: v))


SERVICES = RowLayout(
    key="services", row_status="haoscarServiceRowStatus",
    columns={
        "haoscarServiceName": "name", "haoscarServiceCheck": "check",
        "haoscarServiceRetryThreshold": "retry_threshold", "haoscarServiceRecovery": "recovery",
        "haoscarServiceAdminStatus": "enabled", "haoscarServiceRestartCommand": "restart",
        "haoscarServiceActiveOnly": "active_only",
    },
    mandatory=("name", "check"),
    # Every column is listed, so a row re-created over a destroyed file row inherits nothing.
    defaults={"restart": "", "recovery": "restart-then-failover", "enabled": True,
              "active_only": False, "retry_threshold": None},
    row=service_row,
    to_config={"haoscarServiceRecovery": lambda v: RECOVERY_NAMES[v],
               "haoscarServiceAdminStatus": lambda v: v == 1,
               "haoscarServiceActiveOnly": lambda v: v == 1},
    to_mib={"haoscarServiceRecovery": lambda v: RECOVERY_VALUES.get(str(v), v),
            "haoscarServiceAdminStatus": truth,
            "haoscarServiceActiveOnly": truth},
    inherited={"haoscarServiceRetryThreshold": lambda c: c.timing.service_retry_threshold},
)

ALIASES = RowLayout(
    key="aliases", row_status="haoscarAliasRowStatus",
    columns={"haoscarAliasAddress": "address", "haoscarAliasPrefixLength": "prefix_length",
             "haoscarAliasInterface": "interface"},
    mandatory=("address", "interface"),
    defaults={"prefix_length": 24},
    row=alias_row,
)

CONFIG_MAP = ConfigMap(
    scalars={**{name: _timing(key) for name, key in TIMING_SCALARS.items()},
             "haoscarNotifyEmail": ScalarMap(path=("notify_email",), read=notify_email)},
    tables={"haoscarServiceEntry": SERVICES, "haoscarAliasEntry": ALIASES},
    actions={"haoscarControlAction": ControlAction},
)
