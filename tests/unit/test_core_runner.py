"""core.runner: the real ShellRunner on harmless commands, and the FakeRunner's answers."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from fakes import FakeRunner

from haoscar_snmp.core.runner import RunResult, ShellRunner


def run(command: str, timeout: float = 5.0) -> RunResult:
    return asyncio.run(ShellRunner().run(command, timeout))


def proc_state(pid: int) -> str | None:
    """The process's state letter from /proc (R, S, Z, ...), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def my_zombies() -> list[int]:
    """Children of this test process that exited and were never reaped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def wait_until_not_running(pid: int, limit: float = 5.0) -> str | None:
    """Poll briefly: SIGKILL is delivered asynchronously. Returns the last state seen."""
    deadline = time.monotonic() + limit
    state = proc_state(pid)
    while state not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.01)
        state = proc_state(pid)
    return state


def test_true_succeeds() -> None:
    result = run("true")
    assert result == RunResult("true", 0, "")
    assert result.ok and not result.timed_out


def test_false_fails_with_its_exit_code() -> None:
    result = run("false")
    assert result.returncode == 1
    assert not result.ok and not result.timed_out


def test_exit_code_and_merged_output_are_reported() -> None:
    result = run("echo out; echo err >&2; exit 3")
    assert result.returncode == 3
    assert result.output == "out\nerr"


def test_output_is_bounded() -> None:
    result = run("head -c 10000 /dev/zero | tr '\\0' a")
    assert result.ok
    assert result.output == "a" * ShellRunner.max_output


def test_a_hung_command_times_out_and_its_process_group_is_killed(tmp_path: Path) -> None:
    shell_pid = tmp_path / "shell.pid"
    child_pid = tmp_path / "child.pid"
    # The shell starts a background grandchild: killing only the shell would leave it behind.
    result = run(f"echo $$ > {shell_pid}; sleep 5 & echo $! > {child_pid}; wait", timeout=0.2)
    assert result.timed_out
    assert result.returncode is None
    assert not result.ok
    shell, child = int(shell_pid.read_text()), int(child_pid.read_text())
    assert proc_state(shell) is None  # killed and reaped by the runner: no zombie
    assert wait_until_not_running(child) in (None, "Z")  # killed with its group (init reaps it)
    assert my_zombies() == []


def test_sleep_with_a_short_timeout_leaves_no_zombie() -> None:
    result = run("sleep 5", timeout=0.2)
    assert result.timed_out and result.returncode is None
    assert my_zombies() == []


def test_the_runner_is_usable_again_after_a_timeout() -> None:
    async def both() -> tuple[RunResult, RunResult]:
        runner = ShellRunner()
        return await runner.run("sleep 5", 0.2), await runner.run("echo fine", 5)
    hung, fine = asyncio.run(both())
    assert hung.timed_out
    assert fine.ok and fine.output == "fine"


def test_fake_runner_answers_in_order_and_repeats_the_last() -> None:
    runner = FakeRunner({"check-web": [1, 1, 0]})

    async def five() -> list[int | None]:
        return [(await runner.run("check-web", 1.0)).returncode for _ in range(5)]

    assert asyncio.run(five()) == [1, 1, 0, 0, 0]
    assert runner.calls == ["check-web"] * 5


def test_fake_runner_says_ok_to_unknown_commands_and_records_calls() -> None:
    runner = FakeRunner()
    result = asyncio.run(runner.run("anything", 1.0))
    assert result.ok and result.argv == "anything" and not result.timed_out
    assert runner.calls == ["anything"]
