"""The configuration as the daemon runs it: the operator's file, plus SNMP SET overrides.

This is the single writer of the effective configuration. It answers the SET path's
questions (current values, cross-field checks) and commits validated SETs: the new
overrides are written atomically to the state directory *before* anything is applied or
acknowledged, so an acknowledged SET survives `kill -9` at any moment. Every accepted
change is audited (who, which object, old -> new) in the log and the event history.

It also keeps the version of the cluster-wide settings (`haoscar_snmp/config/
clustersync.py`) in `<state_dir>/cluster-config.json`: raised by every change this head
makes (a SET, a reload, a file edited while the daemon was stopped), taken from the peer
when this head adopts the peer's settings. A SET that changes cluster-wide settings is
first proposed to the peer (`Peer`, given at construction: `agreement.PeerAgreement`,
which the settings exchange in `sync.py` serves): a refusal there refuses the SET, and
nothing changes on either head. `proposal.py` does that part of `commit`: the proposal
in one step or, for a heartbeat timing change, in two, and what is held when the peer
refuses or does not answer.

The store is built first and depends on no other component: those that act on it listen
(`on_change`, `on_version`, and `on_request` for the operator actions a SET carries).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Protocol

from fcaps.configuration.overrides import apply_overrides, check_candidate
from haoscar_snmp.config.cluster import (
    after_adoption,
    apply_cluster_wide,
    cluster_wide,
    differences,
    digest,
    fingerprint,
)
from haoscar_snmp.config.clustersync import Version, bump, cross_head_problems
from haoscar_snmp.config.diff import diff_configs
from haoscar_snmp.config.errors import ConfigError, Problem
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.persist import OverrideStore, ensure_state_dir
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.files import atomic_write
from haoscar_snmp.core.ratelimit import RateLimiter
from haoscar_snmp.core.state import OperatorRequest, ServiceSelection, State
from haoscar_snmp.core.text import printable

from .agreement import Proposal, SingleHead
from .apply import apply_to_state
from .proposal import Proposing

log = logging.getLogger(__name__)
audit = logging.getLogger("haoscar_snmp.audit")

VERSION_FILE = "cluster-config.json"
REFUSALS_BURST = 5               # refused SETs in the event history at once...
REFUSALS_PERIOD_S = 60.0         # ...then one a minute


class Peer(Protocol):
    """The peer head as the store sees it (`agreement.PeerAgreement`)."""

    def settings(self, mine: Mapping[str, Any], mine_digest: str) -> Mapping[str, Any] | None:
        """The peer's cluster-wide settings as best known (None: not known)."""

    def takes_part(self) -> bool:
        """Whether a change is proposed to a peer that can answer now."""

    async def propose(self, settings: dict[str, Any], version: Version, step: int = 0) -> Proposal:
        """The peer's answer to new settings at `version`; `step` is 0 for a change in one
        step, 1 or 2 for the steps of a staged timing change."""

    def alone(self, why: str) -> None:
        """A change is held on this head only (the peer did not answer)."""


class VersionFile:
    """The version of this head's cluster-wide settings and their digest, in the state
    directory (written after the overrides, so a crash between the two is seen at the
    next start as settings that differ from the digest, and counted as this head's change)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / VERSION_FILE

    def load(self) -> tuple[Version, str] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return Version(int(data["counter"]), str(data["head"])), str(data["digest"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.error("%s is unreadable (%s): the settings' version starts again from 0", self.path, error)
            return None

    def save(self, version: Version, hex_digest: str) -> None:
        text = json.dumps({"counter": version.counter, "head": version.head, "digest": hex_digest},
                          sort_keys=True) + "\n"
        ensure_state_dir(self.path.parent)
        atomic_write(self.path, text.encode("utf-8"))


class ConfigStore(Proposing):
    """Holds file config, overrides, pending (notReady) rows and the effective config
    (the proposal of a cluster-wide change to the peer: `Proposing`, proposal.py)."""

    def __init__(self, path: Path | None, state_dir: Path | None, state: State, bus: EventBus,
                 clock: Clock, peer: Peer | None = None) -> None:
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
        # Told every operator action a committed SET carries, with who set it.
        self.on_request: list[Callable[[OperatorRequest, str], None]] = []
        # Refused SETs reach the event history at most REFUSALS_BURST at once, then one per
        # REFUSALS_PERIOD_S: whoever sends them sets their pace (the log has every one).
        self._refusals = RateLimiter(clock, REFUSALS_BURST, REFUSALS_PERIOD_S)
        self.peer: Peer = peer or SingleHead()
        self.on_version: list[Callable[[], None]] = []
        self.proposing = False       # a change is being agreed with the peer (through all its steps)
        self._lock = asyncio.Lock()
        apply_to_state(self.effective, state, self._pending)
        self.me = self.file_config.cluster.local_head
        self.settings: dict[str, Any] = cluster_wide(self.effective)
        self.digest = digest(self.settings)
        self._version_file = VersionFile(self.store.state_dir)
        self.version = self._start_version()

    # -- the cluster-wide settings' version --------------------------------------------

    def _start_version(self) -> Version:
        """The version this start runs: the one saved, raised when the settings differ
        from those saved with it (the operator edited the file while the daemon was
        stopped, or a crash came between the overrides and the version)."""
        # Nothing is written here (the state directory is not locked yet): the next start
        # reaches the same version from the same files, and the first change saves it.
        saved = self._version_file.load()
        if saved is None:
            return Version()
        if saved[1] != self.digest:
            version = bump(saved[0], self.me)
            log.info("cluster-wide settings differ from those this head last ran (version %s): "
                     "this head's change, version %s", saved[0], version)
            return version
        return saved[0]

    def _set_version(self, version: Version) -> None:
        self._version_file.save(version, self.digest)
        self._version_set(version)

    async def _save_version(self, version: Version) -> None:
        """As _set_version, the write off the loop, the callbacks on it."""
        await asyncio.to_thread(self._version_file.save, version, self.digest)
        self._version_set(version)

    def _version_set(self, version: Version) -> None:
        self.version = version
        for callback in self.on_version:
            callback()

    async def keep_version(self, version: Version) -> None:
        """The peer holds the same settings at a higher version: hold it too, so that the
        next change counts on from it."""
        async with self._lock:
            if version > self.version:
                await self._save_version(version)

    async def raise_version(self, above: Version, principal: str) -> Version:
        """A version above `above` and this head's: the peer then takes this head's
        settings (the operator's push)."""
        async with self._lock:
            version = bump(max(above, self.version), self.me)
            await self._save_version(version)
            audit.info("%s: this head's cluster-wide settings raised to version %s, for the peer to take",
                       principal, version)
            return version

    def advert(self) -> tuple[int, str, int]:
        """What this head advertises of its settings in its heartbeats: the version's
        counter and head, and the fingerprint of the digest."""
        return self.version.counter, self.version.head, fingerprint(self.digest)

    # -- what the SET path reads (ConfigSource) ----------------------------------------

    def current(self) -> Config:
        return self.effective

    def overrides(self) -> dict[str, Any]:
        return self._overrides

    def pending(self) -> dict[str, dict[int, dict[str, Any]]]:
        return self._pending

    def check(self, overrides: dict[str, Any]) -> list[Problem]:
        """Every problem of the candidate overrides: its own (as the file's are checked),
        then what would go wrong between the heads. When the peer takes part in the
        change (it is heard and answers proposals), that is the end state, both heads
        running the change: `commit` applies it in an order that is safe at every moment
        between. Otherwise the change stays on this head while the peer keeps its
        settings as known, and it is judged against those. A difference between the
        heads that is already there is the drift alarm's, not this SET's."""
        problems = check_candidate(self.file_config, overrides)
        peer = self.peer.settings(self.settings, self.digest)
        if problems or peer is None:
            return problems
        proposed = apply_overrides(self.file_config, overrides)
        return [Problem("cluster", key, f"{why} (the peer head's settings)")
                for key, why in self._cross_head(proposed, peer, jointly=self.peer.takes_part())]

    def _cross_head(self, proposed: Config, peer: Mapping[str, Any], *, jointly: bool) -> list[tuple[str, str]]:
        """The cross-head problems `proposed` brings that the heads do not have already;
        `jointly`: the peer takes `proposed` too, else it keeps `peer`."""
        theirs = after_adoption(peer, cluster_wide(proposed)) if jointly else peer
        before = {key for key, _ in cross_head_problems(self.effective, peer)}
        return [(key, why) for key, why in cross_head_problems(proposed, theirs) if key not in before]

    def file_indexes(self, kind: str) -> set[int]:
        rows = self.file_config.services if kind == "services" else self.file_config.aliases
        return {row.index for row in rows}

    # -- commit (Committer) ------------------------------------------------------------

    async def commit(self, plan: SetPlan, principal: str) -> None:
        """Persist and apply a validated SET. A cluster-wide change is first proposed to
        the peer (`_agree`); raises CommitRefused if the peer refuses it (nothing
        changed), or, with undoFailed, if the second step of a staged timing change is
        refused after the first applied on both heads."""
        async with self._lock:
            if plan.config_changed:
                new = apply_overrides(self.file_config, plan.overrides)  # raises: nothing changed
                settings = cluster_wide(new)
                if digest(settings) != self.digest:
                    self.proposing = True
                    try:
                        await self._agree(plan, new, settings, principal)
                    finally:
                        self.proposing = False
                else:
                    await self._hold(plan.overrides, new, settings, self.version)
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
            for listener in self.on_request:
                listener(action, principal)

    async def _hold(self, overrides: dict[str, Any], config: Config, settings: dict[str, Any],
                    version: Version) -> None:
        """Persist the overrides (and the version), then hold them as the running
        configuration; the caller applies them to the state and tells `on_change`."""
        await asyncio.to_thread(self.store.save, overrides)
        self._overrides, self.effective = overrides, config
        self.settings, self.digest = settings, digest(settings)
        if version != self.version:
            await self._save_version(version)

    # -- the peer's settings -------------------------------------------------------------

    async def adopt(self, peer: Mapping[str, Any], version: Version, principal: str, *,
                    force: bool = False, expect: Version | None = None) -> tuple[bool, str]:
        """Take the peer's cluster-wide settings at `version` (a proposal, a newer
        version seen in its heartbeats, or the operator's pull with `force`).

        Validated as a SET is, persisted before it is applied, audited. Returns
        (taken, text); not taken: nothing changed, `text` says why (a version that is
        not newer, or the problems the settings have on this head). `force` takes them
        whatever the versions, `expect` only if this head's version is still that one
        (the decision to adopt was taken on it, and a SET may have come since)."""
        async with self._lock:
            if expect is not None and self.version != expect:
                return False, f"this head's settings changed meanwhile (version {self.version})"
            if peer.get("format") is not None and digest(peer) == self.digest:
                if version > self.version:
                    await self._save_version(version)
                return True, "the same settings"
            if not force and version <= self.version:
                return False, (f"this head has settings at version {self.version}, at least as new as "
                               f"{version}: refused, so that neither head's change is lost (read them "
                               f"back, then set again)")
            try:
                adoption = apply_cluster_wide(self.file_config, self._overrides, peer, self._pending)
                new = apply_overrides(self.file_config, adoption.overrides)
            except ValueError as error:         # ConfigError too
                return False, str(error).replace("\n", "; ")
            settings = cluster_wide(new)
            changed = differences(self.settings, settings)
            await asyncio.to_thread(self.store.save, adoption.overrides)
            self._overrides, self._pending, self.effective = adoption.overrides, adoption.pending, new
            self.settings, self.digest = settings, digest(settings)
            await self._save_version(version)
            apply_to_state(self.effective, self.state, self._pending)
            now = self.clock.time()
            self.state.config_meta.last_changed = now
            self.state.config_meta.changes += 1
            names = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
            text = f"cluster-wide settings of {principal} adopted (version {version}): {names or 'no key'}"
            if adoption.not_expressible:
                text += f"; not adoptable, left as this head's file says: {', '.join(adoption.not_expressible)}"
            audit.info("%s", printable(text))
            self.bus.publish(Event(EventType.CONFIG_SYNCED, "cluster-config", Severity.INFO, text, now,
                                   {"principal": principal, "version": str(version), "keys": changed}))
            for callback in self.on_change:
                callback(self.effective)
            return True, text

    def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None:
        """A refused SET: an audit line always, and a setRefused event in the history (so
        `haoscar-snmp report --audit` lists it) unless a flood of them is being held back;
        the next event let through says how many were."""
        audit.warning("SET by %s refused with %s at var-bind %d (%s): %s", principal, status,
                      index + 1, printable(why), request)
        if not self._refusals.allow():
            return
        held = self._refusals.take_suppressed()
        text = (f"SET by {principal} refused with {status} at var-bind {index + 1} ({printable(why)}): "
                f"{request}" + (f"; {held} more refused SET(s) before it only in the log" if held else ""))
        self.bus.publish(Event(EventType.SET_REFUSED, principal, Severity.WARNING, text, self.clock.time(),
                               {"principal": principal, "status": status}))

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
            settings = cluster_wide(new)
            new_digest = digest(settings)
            if new_digest != self.digest:
                self.settings, self.digest = settings, new_digest
                self._set_version(bump(self.version, self.me))
                log.info("cluster-wide settings changed by the reload: version %s, for the peer to take",
                         self.version)
            apply_to_state(self.effective, self.state, self._pending)
            for callback in self.on_change:
                callback(self.effective)
            log.info("configuration reloaded: %s", diff.summary())
            return diff.summary()
