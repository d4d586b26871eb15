"""The configuration as the daemon runs it: the operator's file, plus SNMP SET overrides.

This is the single writer of the effective configuration. It answers the SET path's
questions (current values, cross-field checks) and commits validated SETs: the new
overrides are written atomically to the state directory *before* anything is applied or
acknowledged, so an acknowledged SET survives `kill -9` at any moment. Every accepted
change is audited (who, which object, old -> new) in the log and the event history.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Callable

from fcaps.configuration.overrides import apply_overrides, check_candidate
from haoscar_snmp.config.diff import diff_configs
from haoscar_snmp.config.errors import ConfigError, Problem
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.persist import OverrideStore
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import OperatorRequest, ServiceSelection, State
from haoscar_snmp.core.text import printable

from .apply import apply_to_state

log = logging.getLogger(__name__)
audit = logging.getLogger("haoscar_snmp.audit")


class ConfigStore:
    """Holds file config, overrides, pending (notReady) rows and the effective config."""

    def __init__(self, path: Path | None, state_dir: Path | None, state: State, bus: EventBus,
                 clock: Clock) -> None:
        self.path = path
        self._state_dir_override = state_dir
        self.state = state
        self.bus = bus
        self.clock = clock
        self.file_config: Config = load_config(path, state_dir=state_dir)
        self.store = OverrideStore(Path(self.file_config.cluster.state_dir))
        self._overrides: dict[str, Any] = self.store.load()
        self._pending: dict[str, dict[int, dict[str, Any]]] = {}
        self.effective: Config = apply_overrides(self.file_config, self._overrides)
        self.on_change: list[Callable[[Config], None]] = []
        self.on_action: Callable[[OperatorRequest, str], None] = lambda action, who: None
        self._lock = asyncio.Lock()
        apply_to_state(self.effective, state, self._pending)

    # -- what the SET path reads (ConfigSource) ----------------------------------------

    def current(self) -> Config:
        return self.effective

    def overrides(self) -> dict[str, Any]:
        return self._overrides

    def pending(self) -> dict[str, dict[int, dict[str, Any]]]:
        return self._pending

    def check(self, overrides: dict[str, Any]) -> list[Problem]:
        return check_candidate(self.file_config, overrides)

    def file_indexes(self, kind: str) -> set[int]:
        rows = self.file_config.services if kind == "services" else self.file_config.aliases
        return {row.index for row in rows}

    # -- commit (Committer) ------------------------------------------------------------

    async def commit(self, plan: SetPlan, principal: str) -> None:
        async with self._lock:
            if plan.config_changed:
                new = apply_overrides(self.file_config, plan.overrides)  # raises: nothing changed
                await asyncio.to_thread(self.store.save, plan.overrides)
                self._overrides = plan.overrides
                self.effective = new
            self._pending = plan.pending
            apply_to_state(self.effective, self.state, self._pending)
            now = self.clock.time()
            config_changes = [c for c in plan.changes
                              if c.name not in ("haoscarControlAction", "haoscarControlServiceIndex")]
            if config_changes:
                self.state.config_meta.last_changed = now
                self.state.config_meta.changes += len(config_changes)
            for change in config_changes:
                old, new = printable(change.old), printable(change.new)
                audit.info("SET by %s: %s.%s changed from '%s' to '%s'", principal, change.name,
                           ".".join(map(str, change.oid[-1:])), old, new)
                self.bus.publish(Event(
                    EventType.CONFIG_CHANGED, change.name, Severity.INFO,
                    f"{change.name} changed from '{old}' to '{new}' by {principal}",
                    now, {"principal": principal, "oid": change.oid, "old": change.old,
                          "new": change.new}))
            if plan.config_changed:
                for callback in self.on_change:
                    callback(self.effective)
        # A service selection applies to the resetService of the same request, wherever it
        # stands in the request.
        for action in sorted(plan.actions, key=lambda a: not isinstance(a, ServiceSelection)):
            audit.info("SET by %s: operator action %s", principal, action.name.lower())
            self.on_action(action, principal)

    def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None:
        audit.warning("SET by %s refused with %s at var-bind %d (%s): %s", principal, status,
                      index + 1, printable(why), request)

    # -- reload (SIGHUP) ---------------------------------------------------------------

    async def reload(self) -> str:
        """Re-read the operator's file; apply it if it is valid and needs no restart."""
        async with self._lock:
            try:
                new_file = load_config(self.path, state_dir=self._state_dir_override)
                new = apply_overrides(new_file, self._overrides)
            except ConfigError as exc:
                log.error("reload refused, the running configuration is unchanged:\n%s", exc)
                return "reload refused: invalid configuration"
            diff = diff_configs(self.effective, new)
            if diff.restart_required:
                log.error("reload refused: restart required for %s; the running configuration "
                          "is unchanged", ", ".join(diff.restart_required))
                return "reload refused: restart required"
            self.file_config, self.effective = new_file, new
            apply_to_state(self.effective, self.state, self._pending)
            for callback in self.on_change:
                callback(self.effective)
            log.info("configuration reloaded: %s", diff.summary())
            return diff.summary()
