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
import sys
import warnings
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

    def __init__(self) -> None:
        self._spawning: asyncio.Lock | None = None

    async def run(self, command: str, timeout: float) -> RunResult:
        # Starting a process holds the loop until the shell is executing (about a
        # millisecond). One at a time, each in a pass of the loop of its own: twenty
        # commands falling due together delay a timer by one start, not by twenty.
        if self._spawning is None:
            self._spawning = asyncio.Lock()
        async with self._spawning:
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


def watch_children_with_pidfd() -> None:
    """Before Python 3.12, asyncio waits for each child process in a thread of its own,
    started and joined for every command: with tens of commands a second that is most of
    their cost. A pidfd (Linux 5.3) is watched on the event loop instead; from 3.12 on,
    asyncio does so by itself. Call with the loop running, before the first command."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return   # a kernel without pidfds: keep the threaded watcher
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)
