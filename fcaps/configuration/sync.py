"""One configuration for the cluster: the daemon's side of the settings exchange.

Each head advertises the version and fingerprint of its cluster-wide settings in its
heartbeats (`fcaps/fault/heartbeat/proto.py`, from `ConfigStore.advert()`). This job compares the peer's
advert with this head's at every heartbeat interval:

* equal: in sync (the higher version is kept by both);
* different: it fetches the peer's settings (to name what differs), and the head whose
  version loses (`clustersync.merge`: newer wins, the head whose name sorts first breaks
  a tie) adopts the other's, validated as a SET is, before it is applied;
* different for longer than DRIFT_BEATS heartbeats (the settings cannot be adopted,
  or the peer cannot be reached to fetch them): the drift alarm (haoscarConfigDrift)
  naming the keys, cleared when the digests agree again (`drift.py` shows the judgement).

A SET of a cluster-wide object is proposed to the peer before it is answered
(`propose()`, asked by `store.ConfigStore.commit` through the agreement): the peer validates it against its
own state, persists and applies it, and answers ACK or NAK. A NAK refuses the SET
(inconsistentValue), nothing changed on either head. A peer that is not heard, or does
not answer within PROPOSE_TIMEOUT_S, leaves the change on this head only: the SET
succeeds, the drift alarm is raised at once, and the peer takes the change when it is
heard again (this head's version is newer), unless the change is unsafe while the peer
keeps its settings (then it is refused, `proposal.Proposing._alone`). A heartbeat-timing
change that needs it is proposed in two steps (`proposal.Proposing._agree`), each one a
proposal as above; a peer proposal that arrives between them is refused, as one that
arrives while this head's own proposal waits for its answer. docs/operations.md says it
for operators.

The exchange's datagrams (`syncproto.py`) go through the heartbeat process, on the
heartbeat port, under the heartbeat key and bound to both heads' heartbeat nonces;
`exchange.py` carries them.

The arrows go one way: this job uses the store, the agreement (`agreement.py`, which the
store asks, and this job fills and serves), the channel (`channel.py`, which the heartbeat
process fills) and the heartbeat process; all are built before it, and none uses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fcaps.fault.alarms import Alarms
from haoscar_snmp.config.cluster import differences, digest, fingerprint
from haoscar_snmp.config.clustersync import Advert, Version, merge
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import EventBus
from haoscar_snmp.core.state import State
from haoscar_snmp.core.text import printable

from . import syncproto
from .agreement import Ask, Confirmation, PeerAgreement, Proposal
from .channel import SettingsChannel
from .drift import DriftReport
from .exchange import Exchange, Link, read_version, wire_version
from .store import ConfigStore
from .syncproto import Kind, Message

log = logging.getLogger(__name__)

PROPOSE_TIMEOUT_S = 0.8    # under net-snmp's default 1 s timeout: the manager hears one answer
FETCH_TIMEOUT_S = 0.8
FETCH_RETRY_S = 1.0        # after a fetch that got no answer, or an adoption that failed
SETTLE_MAX_S = 2.0         # the longest a starting head waits for the peer's settings before acting
OBSERVE_S = 0.25           # the job's shortest period
NOT_KNOWN = "the peer head is not heard, or does not advertise its settings (haoscarConfigSyncStatus unknown)"


class ClusterSync:
    """The `config-sync` job. It counts the adoptions, pushes and refusals of
    `state.config_sync`; its `drift` shows the rest."""

    name = "config-sync"

    def __init__(self, store: ConfigStore, agreement: PeerAgreement, channel: SettingsChannel, state: State,
                 bus: EventBus, alarms: Alarms, clock: Clock, config: Callable[[], Config],
                 link: Link | None) -> None:
        """`link`: the heartbeat process, None for a single head."""
        self.store = store
        self.agreement = agreement
        self.channel = channel
        self.state = state
        self.clock = clock
        self.config = config
        cfg = config()
        peer = cfg.peer_head_config
        self.me = cfg.cluster.local_head
        self.peer = peer.name if peer is not None else ""
        self.exchange = Exchange(self.me, self.peer, link, channel, config) if link is not None else None
        self.drift = DriftReport(store, agreement, channel, self.exchange, state, bus, alarms, clock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._fetching = False
        self._next_fetch = 0.0
        self._tried: tuple[Version, int] | None = None     # the peer advert an adoption was tried for
        self._proposing = False
        self._first_heard = 0.0
        self._known_count = 0
        self._alone_seen = 0
        # A new version (a change here, or the peer's taken) is judged at once: a change
        # made without the peer raises the drift alarm before the SET is answered.
        store.on_version.append(self.observe)
        self.drift.publish()

    def start(self) -> None:
        """With a peer head: serve the store's proposals and the peer's datagrams, each
        in the order they came, until `stop`."""
        if self.exchange is not None:
            self._spawn(self._serve_asks())
            self._spawn(self._serve_datagrams())

    # -- the job -------------------------------------------------------------------------

    def interval(self) -> float:
        # Each heartbeat, but no more often than OBSERVE_S: with 20 ms heartbeats, judging
        # at every one cost a few percent of a CPU for nothing (the grace counts time).
        return max(self.config().timing.heartbeat_interval_ms / 1000.0, OBSERVE_S)

    async def run_cycle(self) -> str:
        self.observe()
        return self.summary()

    def _known(self, settings: dict[str, Any], version: Version) -> None:
        """The peer holds `settings` now (it took them, or this head took them from it):
        no fetch until its heartbeats have had time to advertise them."""
        self.agreement.learn(settings, (version, fingerprint(digest(settings))))
        self._known_count += 1            # a fetch under way brings older news: dropped
        self._next_fetch = self.clock.monotonic() + FETCH_RETRY_S

    def observe(self) -> None:
        """Compare the adverts; fetch, adopt and raise or clear the alarm as needed."""
        now = self.clock.monotonic()
        if self.exchange is None:
            self.drift.publish()
            return
        self.exchange.remember_keys()   # a key replaced by a reload is kept for the rotation
        if self.agreement.alone_count != self._alone_seen:
            self._alone_seen = self.agreement.alone_count
            self.drift.afresh()         # a change held alone: judged afresh from now
        view = self.state.peer
        heard = view is not None and view.heard
        if heard and not self._first_heard:
            self._first_heard = now
        elif not heard:
            self._first_heard = 0.0
        peer = self.agreement.advert()
        mine = fingerprint(self.store.digest)
        interval = max(self.config().timing.heartbeat_interval_ms / 1000.0, self.agreement.known_interval_s())
        unconfirmed = self.agreement.unconfirmed
        if peer is None:
            if unconfirmed and not self.drift.drifting:
                self.drift.alone(now, ())
            else:
                self.drift.observe(now, interval, None)
            self.drift.publish()
            return
        version, fp = peer
        if fp == mine:
            self.agreement.learn(dict(self.store.settings), peer)
            self.agreement.confirmed()
            if version > self.store.version:
                self._spawn(self.store.keep_version(version))
            self.drift.observe(now, interval, self.store.digest)
        else:
            known, known_of = self.agreement.known, self.agreement.known_of
            if known_of != peer and not self._fetching and now >= self._next_fetch:
                self._spawn(self._fetch_and_settle(peer))
            differing = differences(self.store.settings, known) if known is not None and known_of == peer else ()
            if unconfirmed and not self.drift.drifting:
                self.drift.alone(now, differing)
            else:
                self.drift.observe(now, interval, f"{fp:016x}", differing)
        self.drift.publish()

    def ready(self) -> bool:
        """Whether a starting head may act on its settings: they agree with the peer's,
        or this head does not adopt the peer's, or it tried, or the peer cannot tell
        (not heard, an older release), or it waited SETTLE_MAX_S for them."""
        peer = self.agreement.advert()
        if self.exchange is None or peer is None:
            return True
        if peer[1] == fingerprint(self.store.digest) or self._tried == peer:
            return True
        if not self._adopts(peer):
            return True
        if not self._first_heard:
            self._first_heard = self.clock.monotonic()
        return self.clock.monotonic() - self._first_heard > SETTLE_MAX_S

    def summary(self) -> str:
        s = self.state.config_sync
        text = f"{s.status.name.lower().replace('_', ' ')}, version {self.store.version}"
        return text + (f"; differing: {s.differing}" if s.differing else "")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- adopting --------------------------------------------------------------------------

    def _adopts(self, peer: tuple[Version, int]) -> bool:
        decision = merge(Advert(self.me, self.store.version, f"{fingerprint(self.store.digest):016x}"),
                         Advert(self.peer, peer[0], f"{peer[1]:016x}"))
        return decision.adopt

    async def _fetch(self) -> tuple[dict[str, Any], Version] | str:
        """The peer's settings and their version, or why not."""
        assert self.exchange is not None
        reply = await self.exchange.request(Kind.FETCH, {}, FETCH_TIMEOUT_S)
        if reply is None or reply.kind is not Kind.SETTINGS:
            return f"the peer head {self.peer} did not send its settings"
        settings, version = reply.body.get("settings"), read_version(reply.body.get("version"))
        if not isinstance(settings, dict) or version is None:
            self.exchange.refused()
            return f"the peer head {self.peer} sent unreadable settings"
        return settings, version

    async def _fetch_and_settle(self, peer: tuple[Version, int]) -> None:
        self._fetching = True
        known = self._known_count
        try:
            fetched = await self._fetch()
            if known != self._known_count:
                return
            if isinstance(fetched, str):
                self._next_fetch = self.clock.monotonic() + FETCH_RETRY_S
                return
            settings, version = fetched
            of = (version, fingerprint(digest(settings)))
            self.agreement.learn(settings, of)
            if self._adopts(of) and self._tried != of:
                self._tried = of
                # merge() decided (a newer version, or the tiebreak at an equal one).
                taken, text = await self.store.adopt(settings, version, self.peer, force=True,
                                                     expect=self.store.version)
                if taken:
                    self.state.config_sync.adoptions += 1
                    log.info("%s", printable(text))
                else:
                    log.error("the peer's cluster-wide settings (version %s) cannot be taken: %s",
                              version, printable(text))
                    self._next_fetch = self.clock.monotonic() + FETCH_RETRY_S
        finally:
            self._fetching = False
            self.observe()

    async def pull(self, principal: str) -> tuple[bool, str]:
        """The operator's pullPeerConfig: take the peer's settings now, whatever the versions."""
        if self.exchange is None:
            return False, "no peer head"
        if self.agreement.advert() is None:
            return False, NOT_KNOWN
        fetched = await self._fetch()
        if isinstance(fetched, str):
            return False, fetched
        settings, version = fetched
        taken, text = await self.store.adopt(settings, version, f"{self.peer}, pulled by {principal}",
                                             force=True)
        if taken:
            self.state.config_sync.adoptions += 1
        self.observe()
        return taken, text

    async def push(self, principal: str) -> tuple[bool, str]:
        """The operator's pushLocalConfig: this head's version goes above the peer's, so
        the peer takes this head's settings (proposed at once when it is heard)."""
        if self.exchange is None:
            return False, "no peer head"
        peer = self.agreement.advert()
        if peer is None:
            return False, NOT_KNOWN
        above = peer[0]
        version = await self.store.raise_version(above, principal)
        answer = await self.propose(dict(self.store.settings), version)
        if answer.outcome is Confirmation.CONFIRMED:
            return True, f"the peer head took this head's settings (version {version})"
        if answer.outcome is Confirmation.REFUSED:
            return False, f"version {version}; the peer head refused them: {answer.why}"
        self.agreement.alone(answer.why)
        self.observe()
        return True, f"version {version}; {answer.why}: the peer takes them when it is heard"

    # -- proposing (the SET path) ------------------------------------------------------

    async def _serve_asks(self) -> None:
        """The store's proposals (through the agreement), one after the other. A SET that
        stops waiting for its answer stops its proposal too, as when it sent it itself."""
        while True:
            ask = await self.agreement.next_ask()
            if ask.answer.done():
                continue
            serving = asyncio.get_running_loop().create_task(self._serve(ask))
            ask.answer.add_done_callback(lambda answer, task=serving: task.cancel()
                                         if answer.cancelled() else None)
            try:
                await asyncio.wait({serving})
            except asyncio.CancelledError:
                serving.cancel()
                raise

    async def _serve(self, ask: Ask) -> None:
        try:
            answer = await self.propose(ask.settings, ask.version, ask.step)
        except Exception as error:  # noqa: BLE001 - the SET that asked fails, as if it had sent it
            if not ask.answer.done():
                ask.answer.set_exception(error)
            return
        if not ask.answer.done():
            ask.answer.set_result(answer)

    async def propose(self, settings: dict[str, Any], version: Version, step: int = 0) -> Proposal:
        """Ask the peer to take `settings` at `version` before this head does. `step`:
        1 or 2 for the steps of a staged heartbeat-timing change (the peer's audit says
        so). UNCONFIRMED changes nothing here: the caller says `agreement.alone` if it
        holds the change all the same."""
        if self.exchange is None:
            return Proposal(Confirmation.CONFIRMED, "no peer head")
        absent = self.agreement.absent()
        if absent:
            return Proposal(Confirmation.UNCONFIRMED, absent)
        body = {"settings": settings, "version": wire_version(version), "digest": digest(settings)}
        if step:
            body["step"] = step
        self._proposing = True
        try:
            reply = await self.exchange.request(Kind.PROPOSE, body, PROPOSE_TIMEOUT_S)
        except syncproto.TooLarge as error:
            return Proposal(Confirmation.REFUSED, str(error))
        finally:
            self._proposing = False
        if reply is None:
            return Proposal(Confirmation.UNCONFIRMED,
                            f"the peer head did not answer within {int(PROPOSE_TIMEOUT_S * 1000)} ms")
        if reply.kind is Kind.NAK:
            self.state.config_sync.refusals += 1
            problems = reply.body.get("problems")
            return Proposal(Confirmation.REFUSED, "; ".join(map(str, problems)) if isinstance(problems, list)
                            else "no reason given")
        self.state.config_sync.pushes += 1
        self._known(settings, version)
        self.agreement.confirmed()
        return Proposal(Confirmation.CONFIRMED)

    # -- datagrams -----------------------------------------------------------------------

    async def _serve_datagrams(self) -> None:
        while True:
            self.datagram(await self.channel.received())

    def datagram(self, data: bytes) -> None:
        """One datagram from the peer (through the heartbeat process and the channel)."""
        assert self.exchange is not None
        msg = self.exchange.take(data)
        if msg is None:
            return
        if msg.kind is Kind.FETCH:
            self.exchange.answer(msg, Kind.SETTINGS, {"settings": self.store.settings,
                                                      "version": wire_version(self.store.version),
                                                      "digest": self.store.digest})
        else:
            self._spawn(self._proposal(msg))

    async def _proposal(self, msg: Message) -> None:
        assert self.exchange is not None
        settings, version = msg.body.get("settings"), read_version(msg.body.get("version"))
        if not isinstance(settings, dict) or version is None:
            self.exchange.answer(msg, Kind.NAK, {"problems": ["the proposal is unreadable"]})
            return
        if self._proposing or self.store.proposing:
            self.exchange.answer(msg, Kind.NAK, {"problems": [
                "a change of this head's is being proposed at the same moment: set again"]})
            return
        step = msg.body.get("step")
        principal = self.peer
        if step in (1, 2):
            principal += (", step 1 of 2 of a heartbeat timing change (intermediate timing)" if step == 1
                          else ", step 2 of 2 of a heartbeat timing change")
        taken, text = await self.store.adopt(settings, version, principal)
        if taken:
            self._known(settings, version)
            self.state.config_sync.adoptions += 1
            self.exchange.answer(msg, Kind.ACK, {"version": wire_version(self.store.version),
                                                 "digest": self.store.digest})
        else:
            self.exchange.answer(msg, Kind.NAK, {"problems": [text]})
        self.observe()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("configuration sync task failed", exc_info=task.exception())

