"""What the role machine does to this head: take over, release, and hold the aliases.

A takeover runs the fence command (after a failover) and the quorum check, adds every
active alias, announces them (the first burst is part of the takeover and of its measured
duration; a repeat follows in the background), starts the services that run only on the
active head and saves the new generation. A failed step puts back what was done and
returns to standby with a failoverFailure alarm. A release stops those services and
removes every alias, configured or held, going on past one that cannot be removed.

While active, the aliases held follow the configuration at once (`_reconcile`); a
standby removes an alias that appears anyway (`_stray_aliases`), and one left by a
daemon that was killed (`_drop_orphans`).

`RoleEffects` is a part of `RoleMachine` (fault/role/machine.py): the machine decides
and makes the transitions; this part carries out the effects of the transitions it
chooses. It writes the alias table's runtime columns (status, owner, announcements)
and the quorum result of the check at takeover.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import AliasStatus, HeadStatus, State

from fcaps.fault.alarms import Alarms, AlarmType, ProbableCause
from fcaps.fault.heartbeat.proto import Flag
from fcaps.fault.takeover import Alias, AliasOps
from .advertise import GenerationFile
from .decide import Peer

log = logging.getLogger("fcaps.fault.role.machine")     # it logs as the machine it is part of

S = HeadStatus
STRAY_CHECK_S = 1.0         # a standby looks for stray aliases this often


class RoleEffects:
    """The takeover and release sequences and the aliases held; part of `RoleMachine`."""

    # Of the machine (fault/role/machine.py), which sets these and defines the methods.
    state: State
    config: Callable[[], Config]
    aliases: AliasOps
    bus: EventBus
    alarms: Alarms
    clock: Clock
    runner: Runner
    generation: GenerationFile
    me: str
    index: int
    preferred: bool
    status: HeadStatus
    _held: dict[int, Alias]
    _garp_tasks: set[asyncio.Task[None]]
    _last_orphan_check: float
    _transition: Callable[[HeadStatus, str], None]
    _advertise: Callable[..., None]
    _record_failover: Callable[[int, str], None]

    # -- takeover and release ------------------------------------------------------------

    async def _take_over(self, reason: str, peer: Peer | None) -> None:
        cfg = self.config()
        view = self.state.peer
        # A failover is a takeover from a peer that was alive and died; taking over at
        # start-up from a peer never heard is not one.
        detected = view.silent_since if view is not None and not view.heard and view.ever_heard else 0.0
        failover = bool(detected)
        handover = peer is not None and peer.alive and bool(peer.flags & Flag.HANDOVER)
        begin = detected or self.clock.monotonic()
        # Above every generation seen, so that "who took over last" is known after a
        # partition; advertised from the first heartbeat of the takeover on.
        generation = max(self.generation.value, view.generation if view else 0) + 1
        self.generation.value = generation
        self._transition(S.TAKING_OVER, reason)
        if failover:
            self.bus.publish(Event(EventType.FAILOVER_STARTED, self.me, Severity.MAJOR,
                                   f"failover to {self.me} started: {reason}", self.clock.time(),
                                   {"head_index": self.index, "reason": reason}))
        problem = await self._preconditions(cfg, failover)
        added: list[Alias] = []
        if problem is None:
            try:
                for alias in self._alias_list(cfg):
                    await self.aliases.add(alias)
                    added.append(alias)
                    self._alias_row(alias, AliasStatus.HELD, self.me)
            except OSError as exc:
                problem = f"could not add alias: {exc}"
        if problem is not None:
            for alias in added:
                await self.aliases.remove(alias)
                self._alias_row(alias, AliasStatus.RELEASED, "")
            self._transition(S.STANDBY, f"takeover failed: {problem}")
            self.bus.publish(Event(EventType.FAILOVER_FAILED, self.me, Severity.CRITICAL,
                                   f"takeover by {self.me} failed: {problem}", self.clock.time(),
                                   {"head_index": self.index, "reason": problem}))
            self.alarms.raise_alarm(ProbableCause.FAILOVER_FAILURE, self.me, Severity.CRITICAL,
                                    AlarmType.PROCESSING_ERROR, f"takeover failed: {problem}")
            return
        # The first burst is part of the takeover (and of its measured duration): clients
        # reach this head only once they have heard it. The repeat goes in the background.
        await self._garp_burst()
        self._announce_aliases(now=False)
        duration_ms = round((self.clock.monotonic() - begin) * 1000)
        await self._services("start", cfg)
        self._transition(S.ACTIVE, reason)
        self._background(self.generation.save(generation))
        self.alarms.clear(ProbableCause.FAILOVER_FAILURE, self.me)
        if failover:
            self._record_failover(duration_ms, reason)
        elif self.preferred and handover:
            self.bus.publish(Event(EventType.FAILBACK_COMPLETED, self.me, Severity.INFO,
                                   f"failback to {self.me} completed in {duration_ms} ms ({reason})",
                                   self.clock.time(), {"head_index": self.index, "reason": reason,
                                                       "duration_ms": duration_ms}))

    async def _preconditions(self, cfg: Config, failover: bool) -> str | None:
        timeout = cfg.failover.command_timeout_ms / 1000.0
        if failover and cfg.failover.fence_command:
            result = await self.runner.run(cfg.failover.fence_command, timeout)
            if not result.ok:
                return f"fence command failed ({'timeout' if result.timed_out else result.returncode})"
        if cfg.failover.quorum_command:
            result = await self.runner.run(cfg.failover.quorum_command, timeout)
            self.state.quorum.record(result.ok, self.clock.time())
            if not result.ok:
                return "quorum check failed"
        return None

    async def _release(self, reason: str) -> None:
        self._transition(S.RELEASING, reason)
        await self._services("stop", self.config())
        configured = {a.index: a for a in self._alias_list(self.config())}
        for alias in {**configured, **self._held}.values():
            try:
                await self.aliases.remove(alias)
            except OSError as exc:  # keep going: leaving one alias is better than leaving all
                log.error("could not remove alias %s: %s", alias.address, exc)
            self._alias_row(alias, AliasStatus.RELEASED, "")
        self._transition(S.STANDBY, reason)

    async def _drop_orphans(self) -> None:
        """Aliases left configured by a daemon that was killed: the active peer owns them."""
        for alias in self._alias_list(self.config()):
            if await self.aliases.present(alias):
                log.warning("removing alias %s left over from an earlier run: %s is active",
                            alias.address, self.state.peer.name if self.state.peer else "the peer")
                await self.aliases.remove(alias)
            self._alias_row(alias, AliasStatus.RELEASED, "")

    async def _stray_aliases(self) -> None:
        """A standby holds no alias. One that appears anyway (added by hand, or by a
        script) would answer for the address beside the active head: remove it, and say
        so with an aliasConflict alarm raised and cleared. Looked for once a second."""
        now = self.clock.monotonic()
        if now - self._last_orphan_check < STRAY_CHECK_S:
            return
        self._last_orphan_check = now
        for alias in self._alias_list(self.config()):
            if not await self.aliases.present(alias):
                continue
            text = (f"alias {alias.address} was configured on {self.me}, which is standby; removed "
                    f"(it would answer beside the active head)")
            log.warning("%s", text)
            self.alarms.raise_alarm(ProbableCause.ALIAS_CONFLICT, f"{self.me}/{alias.address}",
                                    Severity.MAJOR, AlarmType.PROCESSING_ERROR, text)
            await self.aliases.remove(alias)
            self.alarms.clear(ProbableCause.ALIAS_CONFLICT, f"{self.me}/{alias.address}", text)

    async def _services(self, which: str, cfg: Config) -> None:
        """Start (on takeover) or stop (on release) the services that run only on the
        active head. A failure is logged and left to the service monitor: it must not
        keep the alias from moving."""
        timeout = cfg.failover.command_timeout_ms / 1000.0
        for svc in cfg.active_services():
            command = svc.start if which == "start" else svc.stop
            if not (svc.active_only and svc.enabled and command):
                continue
            result = await self.runner.run(command, timeout)
            if not result.ok:
                log.error("%s of service %s failed (%s): %s", which, svc.name,
                          "timeout" if result.timed_out else f"exit {result.returncode}", result.output)

    # -- aliases -------------------------------------------------------------------------

    def _alias_list(self, cfg: Config) -> list[Alias]:
        return [Alias(str(a.address), a.prefix_length, a.interface, a.index) for a in cfg.active_aliases()]

    def _alias_row(self, alias: Alias, status: AliasStatus, owner: str) -> None:
        row = self.state.aliases.get((alias.index,))
        if row is not None:
            row.status, row.owner = status, owner
        if status == AliasStatus.HELD:
            self._held[alias.index] = alias
        else:
            self._held.pop(alias.index, None)
        self._advertise(aliases=tuple(self._held[i].address for i in sorted(self._held)))

    async def _reconcile(self, cfg: Config) -> None:
        """An active head holds exactly the active aliases of the configuration: a row
        added, changed or removed (SNMP SET or reload) is applied at once."""
        wanted = {a.index: a for a in self._alias_list(cfg)}
        for index, alias in list(self._held.items()):
            if wanted.get(index) != alias:
                try:
                    await self.aliases.remove(alias)
                except OSError as exc:
                    log.error("could not remove alias %s: %s", alias.address, exc)
                    continue
                self._alias_row(alias, AliasStatus.RELEASED, "")
                log.info("alias %s removed: the configuration no longer has it", alias.address)
        for index, alias in wanted.items():
            if index not in self._held:
                try:
                    await self.aliases.add(alias)
                except OSError as exc:
                    log.error("could not add alias %s: %s", alias.address, exc)
                    continue
                self._alias_row(alias, AliasStatus.HELD, self.me)
                sent = await self.aliases.announce(alias, cfg.timing.garp_count)
                row = self.state.aliases.get((alias.index,))
                if row is not None:
                    row.garp_sent += sent
                log.info("alias %s added: the configuration has it now", alias.address)

    async def _garp_burst(self, delay: float = 0.0) -> None:
        """One burst of garp_count announcements for every alias this head holds."""
        if delay:
            await self.clock.sleep(delay)
        if self.status not in (S.TAKING_OVER, S.ACTIVE):
            return  # released meanwhile: announcing now would steal the traffic back
        cfg = self.config()
        for alias in list(self._held.values()):
            sent = await self.aliases.announce(alias, cfg.timing.garp_count)
            row = self.state.aliases.get((alias.index,))
            if row is not None:
                row.garp_sent += sent

    def _announce_aliases(self, now: bool = True) -> None:
        """Announce in the background: a burst now (unless already sent), another after
        garp_repeat_ms, for switches and clients that missed or ignored the first."""
        delays = [self.config().timing.garp_repeat_ms / 1000.0]
        if now:
            delays.insert(0, 0.0)
        for delay in delays:
            self._background(self._garp_burst(delay))

    def _background(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._garp_tasks.add(task)
        task.add_done_callback(self._garp_tasks.discard)

    async def stop(self) -> None:
        """Cancel background announcements quietly (shutdown)."""
        tasks = list(self._garp_tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
