"""Running external commands (service checks, restarts, fence commands) without blocking.

Everything that executes a program goes through a `Runner`, so that unit tests pass a
fake one and integration tests run the real thing. Every run is bounded by a timeout:
a hung check must not hang the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RunResult:
    """Outcome of one command: exit code (None when it timed out), and its output."""

    argv: str
    returncode: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    async def run(self, command: str, timeout: float) -> RunResult:
        """Run a shell command line, return its result; never raises for the command's failure."""


class ShellRunner:
    """Runs commands with /bin/sh in their own process group, killed whole on timeout."""

    max_output = 4096

    async def run(self, command: str, timeout: float) -> RunResult:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so a timeout can kill the whole tree
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()  # reap: no zombies left behind
            return RunResult(command, None, "", timed_out=True)
        except asyncio.CancelledError:
            _kill_group(proc.pid)  # the caller gave up (the daemon stops): so does the command
            with contextlib.suppress(asyncio.CancelledError):
                await proc.wait()
            raise
        text = out[: self.max_output].decode("utf-8", "replace").strip()
        return RunResult(command, proc.returncode, text)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
