"""The audit of credentials changed by a reload: who and what, never a secret's value.

The agent replaces communities, USM users and notification targets in its running
engine when a reload changes them (`Agent.reconfigure`); this module says what changed,
in the audit log and as one CREDENTIALS_CHANGED event (history, and the
haoscarCredentialsChanged notification). A community has no name but its secret, so it
is named by its position in the file ("community 2"); a user and a target by their
names; a key only as "keys changed".
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from haoscar_snmp.config.schema import Config, SnmpConfig
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity

audit = logging.getLogger("haoscar_snmp.audit")

TEXT_LIMIT = 255


def _digest(value: str | None) -> str:
    """Compared, never shown: a secret's change is seen without keeping it twice."""
    return hashlib.sha256((value or "").encode()).hexdigest()


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def _communities(snmp: SnmpConfig) -> dict[int, tuple[str, str]]:
    return {n: (_digest(c.secret), str(_enum(c.access))) for n, c in enumerate(snmp.communities, start=1)}


def _users(snmp: SnmpConfig) -> dict[str, tuple[Any, ...]]:
    return {u.name: (_digest(u.auth_key), _digest(u.priv_key), str(_enum(u.auth_protocol)),
                     str(_enum(u.priv_protocol)), str(_enum(u.access))) for u in snmp.users}


def _targets(snmp: SnmpConfig) -> dict[str, tuple[Any, ...]]:
    return {t.name: (_digest(t.community), t.model_dump_json()) for t in snmp.targets}


def credential_changes(old: SnmpConfig, new: SnmpConfig) -> list[str]:
    """What changed among the credentials, in words that hold no secret."""
    changes: list[str] = []
    before, after = _communities(old), _communities(new)
    for n in sorted(before.keys() | after.keys()):
        if n not in before:
            changes.append(f"community {n} added ({after[n][1]})")
        elif n not in after:
            changes.append(f"community {n} removed")
        elif before[n][0] != after[n][0]:
            changes.append(f"community {n} replaced")
        elif before[n][1] != after[n][1]:
            changes.append(f"community {n} access {before[n][1]} -> {after[n][1]}")
    users_before, users_after = _users(old), _users(new)
    for name in sorted(users_before.keys() | users_after.keys()):
        if name not in users_before:
            changes.append(f"user {name} added ({users_after[name][4]})")
        elif name not in users_after:
            changes.append(f"user {name} removed")
        else:
            b, a = users_before[name], users_after[name]
            what = [word for word, i in (("auth key", 0), ("priv key", 1), ("auth protocol", 2),
                                         ("priv protocol", 3), ("access", 4)) if b[i] != a[i]]
            if what:
                changes.append(f"user {name}: {', '.join(what)} changed")
    targets_before, targets_after = _targets(old), _targets(new)
    for name in sorted(targets_before.keys() | targets_after.keys()):
        if name not in targets_before:
            changes.append(f"notification target {name} added")
        elif name not in targets_after:
            changes.append(f"notification target {name} removed")
        elif targets_before[name] != targets_after[name]:
            changes.append(f"notification target {name} changed")
    for key in ("allow_v2c_write", "auth_failure_traps"):
        if getattr(old, key) != getattr(new, key):
            changes.append(f"{key} {str(getattr(old, key)).lower()} -> {str(getattr(new, key)).lower()}")
    return changes


class CredentialAudit:
    """Told of every configuration change (`ConfigStore.on_change`); audits those that
    touch SNMP credentials. Only a reload of the operator's file can change them."""

    def __init__(self, config: Config, bus: EventBus, clock: Clock, principal: str = "reload") -> None:
        self._snmp = config.snmp
        self.bus = bus
        self.clock = clock
        self.principal = principal
        self.head = config.cluster.local_head

    def __call__(self, config: Config) -> list[str]:
        changes = credential_changes(self._snmp, config.snmp)
        self._snmp = config.snmp
        if not changes:
            return changes
        text = "SNMP credentials changed by " + self.principal + ": " + "; ".join(changes)
        audit.info("%s", text)
        if len(text) > TEXT_LIMIT:
            text = text[:TEXT_LIMIT - 3] + "..."
        self.bus.publish(Event(EventType.CREDENTIALS_CHANGED, "snmp", Severity.INFO, text, self.clock.time(),
                               {"principal": self.principal, "reason": text, "changes": changes}))
        return changes
