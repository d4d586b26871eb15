"""What this head knows of the peer head's settings, and its way to ask the peer to take a change.

The configuration store (`store.py`) needs the peer while it judges and commits a SET of
cluster-wide settings: the peer's settings as best known (to judge the change against
them), whether the peer can answer now, and the peer's answer to a proposal. The settings
exchange (`sync.py`) is what talks to the peer, and it needs the store (to read, adopt
and raise this head's settings). Were they given each other, they would need each other.
This object stands between them instead, and is built before both:

    ConfigStore --asks--> PeerAgreement <--fills, serves-- ClusterSync
                               |
                               v reads the nonces
                        SettingsChannel <--reports-- heartbeat process

The store asks it; the exchange fills in what it learnt of the peer's settings and
serves the proposals put here, one after the other, each within its own timeout.
Whether the peer can be asked is read live, at each question: from the heartbeat's view
of the peer (`state.peer`; None for a single head, which has nobody to agree with) and
the nonces the heartbeat process reports into the channel.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from haoscar_snmp.config.cluster import fingerprint
from haoscar_snmp.config.clustersync import Version
from haoscar_snmp.core.state import State

from .channel import SettingsChannel

# The exchange answers each proposal within its own timeout (sync.PROPOSE_TIMEOUT_S);
# this bound only keeps a SET from waiting on an exchange that does not run.
SERVED_WITHIN_S = 2.0


class Confirmation(enum.Enum):
    CONFIRMED = "confirmed"        # the peer validated, persisted and applied it
    UNCONFIRMED = "unconfirmed"    # the peer is not heard or did not answer: this head only
    REFUSED = "refused"            # the peer refused it: nothing changes


@dataclass(frozen=True)
class Proposal:
    """The peer's answer to a proposed cluster-wide change."""

    outcome: Confirmation
    why: str = ""


@dataclass
class Ask:
    """A proposal waiting for the exchange: new cluster-wide settings, their version, the
    step (0 for a change in one step, 1 or 2 for the steps of a staged timing change)."""

    settings: dict[str, Any]
    version: Version
    step: int
    answer: asyncio.Future[Proposal]


class SingleHead:
    """The peer as the store sees it in a cluster of one head: nobody to agree with, every
    change confirmed (the store's default)."""

    def settings(self, mine: Mapping[str, Any], mine_digest: str) -> Mapping[str, Any] | None:
        return None

    def takes_part(self) -> bool:
        return False

    async def propose(self, settings: dict[str, Any], version: Version, step: int = 0) -> Proposal:
        return Proposal(Confirmation.CONFIRMED, "no peer head")

    def alone(self, why: str) -> None:
        pass


class PeerAgreement:
    """The store's view of the peer (`store.Peer`), kept by the exchange."""

    def __init__(self, state: State, channel: SettingsChannel) -> None:
        self.state = state
        self.channel = channel
        self.known: dict[str, Any] | None = None             # the peer's settings, as last known
        self.known_of: tuple[Version, int] | None = None     # (version, fingerprint) they are of
        self.unconfirmed = ""      # why the last change is on this head only ("" = it is not)
        self.alone_count = 0       # changes held on this head only, since start
        self._asks: asyncio.Queue[Ask] = asyncio.Queue()

    # -- what the store asks -------------------------------------------------------------

    def settings(self, mine: Mapping[str, Any], mine_digest: str) -> Mapping[str, Any] | None:
        """The peer's settings as best known: this head's (`mine`) when its advert says
        they are equal, else the last fetched or proposed (None: never known since start)."""
        peer = self.advert()
        if peer is not None and peer[1] == fingerprint(mine_digest):
            return mine
        return self.known

    def takes_part(self) -> bool:
        """Whether a change is proposed to a peer that can answer (heard, taking part in
        the exchange): the end state is then judged, as both heads will run it."""
        return not self.absent()

    async def propose(self, settings: dict[str, Any], version: Version, step: int = 0) -> Proposal:
        """Ask the peer to take `settings` at `version` before this head does. UNCONFIRMED
        changes nothing here: the caller says `alone` if it holds the change all the same."""
        if self.state.peer is None:
            return Proposal(Confirmation.CONFIRMED, "no peer head")
        absent = self.absent()
        if absent:
            return Proposal(Confirmation.UNCONFIRMED, absent)
        ask = Ask(settings, version, step, asyncio.get_running_loop().create_future())
        self._asks.put_nowait(ask)
        try:
            return await asyncio.wait_for(asyncio.shield(ask.answer), SERVED_WITHIN_S)
        except asyncio.TimeoutError:
            return Proposal(Confirmation.UNCONFIRMED, "the settings exchange did not send the proposal")
        finally:
            ask.answer.cancel()     # no effect once answered; an exchange that comes late skips it

    def alone(self, why: str) -> None:
        """A change is held on this head only (the peer did not answer its proposal):
        counted, and the exchange raises the drift alarm at its next judgement."""
        self.state.config_sync.unconfirmed += 1
        self.unconfirmed = why
        self.alone_count += 1

    # -- what the exchange does ----------------------------------------------------------

    async def next_ask(self) -> Ask:
        """The next proposal to send (waits for one)."""
        return await self._asks.get()

    def learn(self, settings: dict[str, Any], of: tuple[Version, int]) -> None:
        """The peer holds `settings`, of (version, fingerprint) `of`."""
        self.known, self.known_of = settings, of

    def known_interval_s(self) -> float:
        """The peer's heartbeat interval in its settings as last known (0: not known)."""
        timing = (self.known or {}).get("timing")
        value = timing.get("heartbeat_interval_ms") if isinstance(timing, Mapping) else None
        return value / 1000.0 if isinstance(value, int) else 0.0

    def confirmed(self) -> None:
        """The peer holds this head's settings: no change is on this head only."""
        self.unconfirmed = ""

    def advert(self) -> tuple[Version, int] | None:
        """The version and fingerprint the peer advertises in its heartbeats (None: not
        heard, or a release that does not advertise them)."""
        view = self.state.peer
        if view is None or not view.heard or view.config is None:
            return None
        counter, head, fp = view.config
        return Version(counter, head), fp

    def absent(self) -> str:
        """Why a proposal cannot reach the peer now ("" = it can)."""
        view = self.state.peer
        if view is None:
            return "no peer head"
        if not view.heard or not self.channel.nonces[1]:
            return "the peer head is not heard"
        if view.config is None:
            return "the peer head does not take part in the settings exchange (an older release)"
        return ""
