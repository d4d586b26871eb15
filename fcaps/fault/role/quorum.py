"""Quorum check job: runs the configured quorum command now and then, so that each head
knows, and advertises in its heartbeats (QUORUM_OK), whether it could become active.

A takeover runs the command once more before it adds any alias; this job only keeps the
advertised flag honest in between. Without a quorum command the flag is always set.
"""

from __future__ import annotations

from typing import Callable

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.runner import Runner
from haoscar_snmp.core.state import State


class QuorumCheck:
    """Sole writer of `state.quorum` (with the takeover's own check)."""

    name = "quorum"

    def __init__(self, state: State, config: Callable[[], Config], runner: Runner, clock: Clock,
                 wake_role: Callable[[], None]) -> None:
        self.state = state
        self.config = config
        self.runner = runner
        self.clock = clock
        self.wake_role = wake_role

    def interval(self) -> float:
        return self.config().failover.quorum_interval_ms / 1000.0

    async def run_cycle(self) -> str:
        cfg = self.config()
        command = cfg.failover.quorum_command
        before = self.state.quorum.ok
        if not command:
            self.state.quorum.record(True, self.clock.time())
            outcome = "no quorum command configured"
        else:
            result = await self.runner.run(command, cfg.failover.command_timeout_ms / 1000.0)
            self.state.quorum.record(result.ok, self.clock.time())
            why = "timed out" if result.timed_out else f"exit {result.returncode}"
            outcome = "quorum check passes" if result.ok else f"quorum check fails ({why})"
        if self.state.quorum.ok != before:
            self.wake_role()   # the flag in the heartbeats changes
        return outcome
