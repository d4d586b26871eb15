"""Proposing a SET of cluster-wide settings to the peer head, then holding it on this head.

Part of the configuration store (`store.py`): `ConfigStore.commit` hands a SET whose
cluster-wide settings change to `Proposing._agree`, with the store's lock held. The
change is first proposed to the peer (`store.Peer`, given to the store at construction:
`agreement.PeerAgreement`, which the settings exchange in `sync.py` serves): a refusal
there refuses the SET, and nothing changes on either head. A peer that does not answer
leaves the change on this head alone, if that is safe while the peer keeps its settings
as known (`_alone`); else the SET is refused. A change of the heartbeat timing that would
let the heads misjudge each other while one runs the old timing and the other the new
goes in two steps, each proposed to the peer and applied on both heads: first an
intermediate timing (the longer dead time, the shorter interval), then the new one
(`clustersync.stage_timing`; `_agree` says what happens when a step fails).

`Proposing` is a mixin of `ConfigStore` and of nothing else: it holds no state of its
own and works on the store's fields, named below, through the store's `_hold` (persist,
then hold) and `_cross_head` (the cross-head problems a change brings).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Callable

from fcaps.configuration.overrides import apply_overrides
from haoscar_snmp.config.cluster import cluster_wide, section
from haoscar_snmp.config.clustersync import Stage, Version, bump, stage_timing
from haoscar_snmp.config.errors import CommitRefused, ConfigError
from haoscar_snmp.config.mibmap import SetPlan
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import State

from .agreement import Confirmation
from .apply import apply_to_state

if TYPE_CHECKING:
    from .store import Peer

audit = logging.getLogger("haoscar_snmp.audit")


class Proposing:
    """The store's proposals of cluster-wide changes to the peer (a mixin of ConfigStore)."""

    # The store's fields and methods this part works on (ConfigStore sets and defines them).
    peer: Peer
    me: str
    file_config: Config
    effective: Config
    settings: dict[str, Any]
    digest: str
    version: Version
    state: State
    clock: Clock
    on_change: list[Callable[[Config], None]]
    _pending: dict[str, dict[int, dict[str, Any]]]
    _hold: Callable[[dict[str, Any], Config, dict[str, Any], Version], Awaitable[None]]
    _cross_head: Callable[..., list[tuple[str, str]]]

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


def _timing_text(config: Config) -> str:
    t = config.timing
    return _stage_text({"heartbeat_interval_ms": t.heartbeat_interval_ms,
                        "heartbeat_dead_time_ms": t.heartbeat_dead_time_ms, "initdead_ms": t.initdead_ms})


def _stage_text(timing: Mapping[str, Any]) -> str:
    return (f"heartbeat interval {timing['heartbeat_interval_ms']} ms, dead time "
            f"{timing['heartbeat_dead_time_ms']} ms, initdead {timing['initdead_ms']} ms")
