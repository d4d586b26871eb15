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
nothing changes on either head. A change of the
heartbeat timing that would let the heads misjudge each other while one runs the old
timing and the other the new goes in two steps, each proposed to the peer and applied on
both heads: first an intermediate timing (the longer dead time, the shorter interval),
then the new one (`clustersync.stage_timing`; `commit` says what happens when a step
fails).

The store is built first and depends on no other component: those that act on it listen
(`on_change`, `on_version`, and `on_request` for the operator actions a SET carries).
"""

from __future__ import annotations

import asyncio
import copy
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
    section,
)
from haoscar_snmp.config.clustersync import Stage, Version, bump, cross_head_problems, stage_timing
from haoscar_snmp.config.diff import diff_configs
from haoscar_snmp.config.errors import CommitRefused, ConfigError, Problem
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

from .agreement import Confirmation, Proposal, SingleHead
from .apply import apply_to_state

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


class ConfigStore:
    """Holds file config, overrides, pending (notReady) rows and the effective config."""

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

    async def _agree(self, plan: SetPlan, new: Config, settings: dict[str, Any], principal: str) -> None:
        """Propose a cluster-wide change to the peer and hold it here once the peer took
        it: in one step, or in two when the heartbeat timing needs it.

        Two steps (`stage_timing`): step 1 is the whole SET with the heartbeat interval,
        dead time and initdead at the intermediate timing, proposed, then persisted and
        applied here (the heartbeat process gets it); after `Stage.settle_s`, step 2 is
        the new timing, proposed, then persisted and applied here. Every mix of old,
        intermediate and new timing between the heads is safe, so a failure anywhere
        leaves the pair safe:

        * step 1 refused: CommitRefused, nothing changed on either head;
        * step 1 not answered: the change is held on this head alone, at once in its final
          form, if that is safe while the peer keeps its settings as known; else
          CommitRefused (nothing changed here);
        * step 2 refused: both heads hold the intermediate timing (and the rest of the
          SET); CommitRefused with undoFailed, and the audit log says what each holds;
        * step 2 not answered: this head holds the new timing, the peer the intermediate
          (or the new, if only its answer was lost); the SET succeeds with the drift
          alarm, and the peer takes the new timing when it answers.
        """
        peer = self.peer.settings(self.settings, self.digest)
        stage = stage_timing(section(self.settings, "timing"), section(settings, "timing"),
                             section(peer, "timing") if peer is not None else None) \
            if self.peer.takes_part() else None
        version = bump(self.version, self.me)
        if stage is None:
            answer = await self.peer.propose(settings, version, 0)
            if answer.outcome is Confirmation.REFUSED:
                raise CommitRefused(f"the peer head refused it: {answer.why}")
            if answer.outcome is Confirmation.UNCONFIRMED:
                await self._alone(plan, new, settings, version, principal, answer.why)
            else:
                await self._hold(plan.overrides, new, settings, version)
            return

        first = copy.deepcopy(plan.overrides)
        first.setdefault("timing", {}).update(stage.intermediate)
        try:
            between = apply_overrides(self.file_config, first)
        except ConfigError as error:        # not expected: the intermediate of two valid timings
            raise CommitRefused(f"the intermediate heartbeat timing is invalid: {error}", "commitFailed") from None
        between_settings = cluster_wide(between)
        answer = await self.peer.propose(between_settings, version, 1)
        if answer.outcome is Confirmation.REFUSED:
            raise CommitRefused(f"the peer head refused it: {answer.why}")
        if answer.outcome is Confirmation.UNCONFIRMED:
            # Above step 1's version: if the peer took step 1 and only its answer was lost,
            # it takes this head's final settings all the same.
            await self._alone(plan, new, settings, bump(version, self.me), principal, answer.why, stage)
            return
        await self._hold(first, between, between_settings, version)
        self._pending = plan.pending
        apply_to_state(self.effective, self.state, self._pending)
        self.state.config_meta.last_changed = self.clock.time()
        audit.info("SET by %s: heartbeat timing changed in two steps; step 1 applied on both heads "
                   "(version %s): %s", principal, version, _timing_text(between))
        for callback in self.on_change:
            callback(self.effective)
        if stage.settle_s:
            # The faster beat is on the wire on both heads before any dead time falls.
            await asyncio.sleep(stage.settle_s)

        final = bump(version, self.me)
        answer = await self.peer.propose(settings, final, 2)
        if answer.outcome is Confirmation.REFUSED:
            text = (f"the peer head refused step 2 of the heartbeat timing change ({answer.why}); both heads "
                    f"hold step 1's intermediate timing (version {version}): {_timing_text(between)}, with "
                    f"the rest of the SET applied; set the heartbeat timing again")
            audit.warning("SET by %s: %s", principal, text)
            raise CommitRefused(text, "undoFailed")
        if answer.outcome is Confirmation.UNCONFIRMED:
            await self._alone(plan, new, settings, final, principal, answer.why, stage, between=version)
            return
        await self._hold(plan.overrides, new, settings, final)
        audit.info("SET by %s: step 2 applied on both heads (version %s): %s", principal, final,
                   _timing_text(new))

    async def _alone(self, plan: SetPlan, new: Config, settings: dict[str, Any], version: Version,
                     principal: str, why: str, stage: Stage | None = None, between: Version | None = None
                     ) -> None:
        """The peer did not answer: hold the change on this head only, if that is safe
        while the peer keeps its settings as known (CommitRefused if not: nothing
        changes here). `between`: step 1 applied on both heads at that version."""
        peer = self.peer.settings(self.settings, self.digest)
        problems = self._cross_head(new, peer, jointly=False) if peer is not None else []
        if problems:
            text = (f"the peer head did not answer ({why}), and this head alone may not run the change "
                    f"while the peer runs its settings: "
                    + "; ".join(f"{key}: {reason}" for key, reason in problems)
                    + ". Nothing changed on this head")
            if stage is not None:
                text += (f"; if the peer took step 1 all the same (its answer lost), both heads take its "
                         f"intermediate timing ({_stage_text(stage.intermediate)}), safe with either")
            raise CommitRefused(text)
        self.peer.alone(why)
        if between is None:
            audit.warning("SET by %s: applied on this head only (version %s): %s; the peer takes it when it "
                          "answers", principal, version, why)
        else:
            audit.warning("SET by %s: step 2 of the heartbeat timing change not confirmed by the peer head "
                          "(%s): this head holds %s (version %s); the peer head holds step 1's intermediate "
                          "timing (version %s), or this head's if only its answer was lost; it takes this "
                          "head's when it answers", principal, why, _timing_text(new), version, between)
        await self._hold(plan.overrides, new, settings, version)

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


def _timing_text(config: Config) -> str:
    t = config.timing
    return _stage_text({"heartbeat_interval_ms": t.heartbeat_interval_ms,
                        "heartbeat_dead_time_ms": t.heartbeat_dead_time_ms, "initdead_ms": t.initdead_ms})


def _stage_text(timing: Mapping[str, Any]) -> str:
    return (f"heartbeat interval {timing['heartbeat_interval_ms']} ms, dead time "
            f"{timing['heartbeat_dead_time_ms']} ms, initdead {timing['initdead_ms']} ms")
