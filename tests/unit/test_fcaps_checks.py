"""fcaps.fault.services.checks.Checker: verdicts from a FakeRunner and from a fake /proc tree.

COMMAND and SYSTEMD map exit codes and systemctl's properties to UP, DOWN or ERROR (the
check could not be carried out); PROCESS reads pid files and scans /proc, sharing one
scan among checks that come close together. The real targets (sockets, HTTP, processes,
the shell) are in tests/integration/test_checks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from fakes import FakeClock, FakeRunner

from fcaps.fault.services.checks import Checker, Outcome, Verdict
from fcaps.fault.services import checks as checks
from haoscar_snmp.config.checkspec import CheckSpec, parse
from haoscar_snmp.core.runner import RunResult

REPO = Path(__file__).resolve().parents[2]
SHOW = "systemctl show --property=LoadState,ActiveState,SubState -- "


def run(checker: Checker, spec: CheckSpec, timeout: float = 0.5) -> Outcome:
    return asyncio.run(checker.check(spec, timeout))


def command(answers: dict[str, list[int | None]], check: str = "check-web",
            outputs: dict[str, str] | None = None) -> Outcome:
    return run(Checker(FakeRunner(answers, outputs)), parse("command", check))


class FailingRunner:
    """A runner whose shell cannot be started at all."""

    async def run(self, command: str, timeout: float) -> RunResult:
        raise PermissionError(13, "Permission denied")


class HangingRunner:
    """A runner that does not keep its word about the timeout."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, command: str, timeout: float) -> RunResult:
        self.started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


# -- COMMAND ---------------------------------------------------------------------------


def test_exit_zero_is_up() -> None:
    assert command({"check-web": [0]}) == Outcome(Verdict.UP, "exit code 0")


def test_another_exit_code_is_down_with_the_first_line_of_output() -> None:
    outcome = command({"check-web": [3]}, outputs={"check-web": "disk full\nsecond line"})
    assert outcome == Outcome(Verdict.DOWN, "exit code 3: disk full")
    assert command({"check-web": [1]}) == Outcome(Verdict.DOWN, "exit code 1")


def test_a_long_output_line_is_cut() -> None:
    outcome = command({"check-web": [2]}, outputs={"check-web": "x" * 500})
    assert outcome.verdict is Verdict.DOWN
    assert outcome.detail.startswith("exit code 2: xxx") and outcome.detail.endswith("...")
    assert len(outcome.detail) == len("exit code 2: ") + checks.OUTPUT_CUT


def test_a_command_killed_by_a_signal_is_down() -> None:
    assert command({"check-web": [-9]}) == Outcome(Verdict.DOWN, "killed by signal 9")


@pytest.mark.parametrize("code, why", [(126, "not executable"), (127, "command not found")])
def test_a_command_that_cannot_run_is_an_error_not_a_down_service(code: int, why: str) -> None:
    outcome = command({"check-web": [code]}, outputs={"check-web": "sh: 1: check-web: not found"})
    assert outcome == Outcome(Verdict.ERROR, f"cannot run: exit {code} ({why})")


def test_a_command_that_timed_out_is_down() -> None:
    assert command({"check-web": [None]}) == Outcome(Verdict.DOWN, "no answer within 500 ms", timed_out=True)


def test_a_shell_that_cannot_start_is_an_error() -> None:
    outcome = run(Checker(FailingRunner()), parse("command", "check-web"))
    assert outcome == Outcome(Verdict.ERROR, "cannot start the shell: Permission denied")


def test_a_runner_that_overstays_is_cut_off_by_the_checker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "RUNNER_GRACE", 0.01)
    started = time.monotonic()
    outcome = run(Checker(HangingRunner()), parse("command", "check-web"), timeout=0.05)
    assert outcome == Outcome(Verdict.DOWN, "no answer within 50 ms", timed_out=True)
    assert time.monotonic() - started < 1.0


def test_cancelling_a_check_cancels_it() -> None:
    """The daemon stopping cancels its checks: that must not turn into a verdict."""
    async def scenario() -> None:
        runner = HangingRunner()
        task = asyncio.create_task(Checker(runner).check(parse("command", "x"), 60))
        await runner.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(scenario())


def test_the_checker_passes_the_command_and_its_timeout_to_the_runner() -> None:
    seen: list[tuple[str, float]] = []

    class Recording:
        async def run(self, command: str, timeout: float) -> RunResult:
            seen.append((command, timeout))
            return RunResult(command, 0, "")

    run(Checker(Recording()), parse("command", "pgrep -x nfsd"), timeout=0.8)
    assert seen == [("pgrep -x nfsd", 0.8)]


# -- SYSTEMD ---------------------------------------------------------------------------


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "run-systemd-system"
    path.mkdir()
    return path


def systemd(marker: Path, output: str, code: int | None = 0, unit: str = "nfs-server.service",
            ) -> tuple[Outcome, FakeRunner]:
    shown = SHOW + shlex.quote(unit)
    runner = FakeRunner({shown: [code]}, {shown: output})
    return run(Checker(runner, systemd_marker=marker), parse("systemd", unit)), runner


def test_an_active_unit_is_up(marker: Path) -> None:
    outcome, runner = systemd(marker, "LoadState=loaded\nActiveState=active\nSubState=running\n")
    assert outcome == Outcome(Verdict.UP, "unit is active (running)")
    assert runner.calls == [SHOW + "nfs-server.service"]


def test_the_properties_are_read_in_any_order(marker: Path) -> None:
    outcome, _ = systemd(marker, "SubState=failed\nActiveState=failed\nLoadState=loaded")
    assert outcome == Outcome(Verdict.DOWN, "unit is failed (failed)")


@pytest.mark.parametrize("active, sub, verdict", [
    ("inactive", "dead", Verdict.DOWN),
    ("activating", "start-pre", Verdict.DOWN),
    ("deactivating", "stop-sigterm", Verdict.DOWN),
    ("reloading", "reload", Verdict.UP),
])
def test_any_other_active_state_is_down_but_reloading(marker: Path, active: str, sub: str,
                                                      verdict: Verdict) -> None:
    outcome, _ = systemd(marker, f"LoadState=loaded\nActiveState={active}\nSubState={sub}\n")
    assert outcome == Outcome(verdict, f"unit is {active} ({sub})")


def test_an_unknown_unit_is_an_error(marker: Path) -> None:
    outcome, _ = systemd(marker, "LoadState=not-found\nActiveState=inactive\nSubState=dead\n",
                         unit="nsf-server.service")
    assert outcome == Outcome(Verdict.ERROR, "unit nsf-server.service is not loaded (not-found)")


def test_the_unit_name_is_quoted_for_the_shell(marker: Path) -> None:
    unit = "dev-disk-by\\x2dlabel-data.mount"
    outcome, runner = systemd(marker, "LoadState=loaded\nActiveState=active\nSubState=mounted", unit=unit)
    assert outcome.verdict is Verdict.UP
    assert runner.calls == [SHOW + "'dev-disk-by\\x2dlabel-data.mount'"]


def test_a_machine_without_systemd_is_an_error_and_runs_nothing(tmp_path: Path) -> None:
    runner = FakeRunner()
    outcome = run(Checker(runner, systemd_marker=tmp_path / "absent"), parse("systemd", "sshd.service"))
    assert outcome == Outcome(Verdict.ERROR, "systemd is not running on this head")
    assert runner.calls == []


def test_systemctl_failing_is_an_error_not_a_down_unit(marker: Path) -> None:
    outcome, _ = systemd(marker, "Failed to connect to bus: No such file or directory", code=1)
    assert outcome == Outcome(Verdict.ERROR,
                              "systemctl failed: exit code 1: Failed to connect to bus: No such file or directory")
    outcome, _ = systemd(marker, "", code=127)
    assert outcome == Outcome(Verdict.ERROR, "cannot run: exit 127 (command not found)")


def test_systemctl_timing_out_is_down(marker: Path) -> None:
    outcome, _ = systemd(marker, "", code=None)
    assert outcome == Outcome(Verdict.DOWN, "no answer within 500 ms", timed_out=True)


def test_output_without_an_active_state_is_an_error(marker: Path) -> None:
    outcome, _ = systemd(marker, "Warning: something odd\nLoadState=loaded\n")
    assert outcome == Outcome(Verdict.ERROR, "systemctl did not report the state of nfs-server.service")


# -- PROCESS: a fake /proc ---------------------------------------------------------------


def add_process(proc: Path, pid: int, comm: str, state: str = "S", argv: list[str] | None = None) -> None:
    """A /proc/PID directory as the kernel shows it: comm, NUL-separated cmdline, stat."""
    entry = proc / str(pid)
    entry.mkdir(parents=True)
    (entry / "comm").write_text(comm[:15] + "\n")
    args = [comm] if argv is None else argv
    (entry / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in args))
    (entry / "stat").write_text(f"{pid} ({comm[:15]}) {state} 1 {pid} {pid} 0 -1 4194560 120 0 0 0\n")


def add_zombie(proc: Path, pid: int, comm: str) -> None:
    add_process(proc, pid, comm, state="Z", argv=[])   # a zombie has no command line left


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    add_process(root, 1, "init", argv=["/sbin/init", "splash"])
    add_process(root, 2, "kthreadd", argv=[])
    (root / "self").mkdir()          # not a process
    (root / "meminfo").write_text("MemTotal: 1 kB\n")
    return root


def by_name(proc: Path, name: str, clock: FakeClock | None = None) -> Outcome:
    return run(Checker(FakeRunner(), proc=proc, clock=clock), parse("process", name))


def by_pidfile(proc: Path, pidfile: Path) -> Outcome:
    return run(Checker(FakeRunner(), proc=proc), parse("process", str(pidfile)))


def test_a_running_process_named_in_its_pid_file_is_up(proc: Path, tmp_path: Path) -> None:
    add_process(proc, 4242, "nfsd")
    pidfile = tmp_path / "nfsd.pid"
    pidfile.write_text("4242\n")
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.UP, "process 4242 is running")
    pidfile.write_text("  4242  \nsomething else\n")   # first line, surrounding blanks ignored
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.UP, "process 4242 is running")


def test_a_missing_pid_file_is_down(proc: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "nfsd.pid"
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.DOWN, f"pid file {pidfile} does not exist")


def test_a_pid_file_that_cannot_be_read_is_an_error(proc: Path, tmp_path: Path) -> None:
    """Root reads any file whatever its mode, so a directory stands for the unreadable file."""
    pidfile = tmp_path / "nfsd.pid"
    pidfile.mkdir()
    outcome = by_pidfile(proc, pidfile)
    assert outcome == Outcome(Verdict.ERROR, f"cannot read pid file {pidfile}: Is a directory")


@pytest.mark.parametrize("content, shown", [("abc\n", "abc"), ("", "nothing"), ("0\n", "0"), ("-5", "-5"),
                                            ("12\x00", "12\\x00")])
def test_a_pid_file_without_a_process_id_is_down(proc: Path, tmp_path: Path, content: str, shown: str) -> None:
    pidfile = tmp_path / "nfsd.pid"
    pidfile.write_text(content)
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.DOWN, f"pid file {pidfile} holds {shown}, not a process id")


def test_a_pid_file_naming_a_gone_process_is_down(proc: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "nfsd.pid"
    pidfile.write_text("31337\n")
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.DOWN, "process 31337 is gone")


def test_a_pid_file_naming_a_zombie_is_down(proc: Path, tmp_path: Path) -> None:
    add_zombie(proc, 4243, "nfsd")
    add_process(proc, 4244, "nfsd", state="X")
    pidfile = tmp_path / "nfsd.pid"
    pidfile.write_text("4243")
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.DOWN, "process 4243 is a zombie")
    pidfile.write_text("4244")
    assert by_pidfile(proc, pidfile) == Outcome(Verdict.DOWN, "process 4244 is dead")


def test_a_process_is_found_by_its_kernel_name(proc: Path) -> None:
    add_process(proc, 300, "rpc.mountd", argv=["rpc.mountd: serving", "-F"])   # argv[0] rewritten
    assert by_name(proc, "rpc.mountd") == Outcome(Verdict.UP, "process rpc.mountd is running (pid 300)")


def test_a_process_is_found_by_the_base_name_of_argv0(proc: Path) -> None:
    add_process(proc, 301, "python3", argv=["/opt/ha/bin/ha-watchdog", "--serve"])
    assert by_name(proc, "ha-watchdog") == Outcome(Verdict.UP, "process ha-watchdog is running (pid 301)")
    assert by_name(proc, "--serve").verdict is Verdict.DOWN      # later arguments are not names
    assert by_name(proc, "bin").verdict is Verdict.DOWN          # nor are directories


def test_a_name_longer_than_the_kernel_keeps_is_found_by_argv0(proc: Path) -> None:
    add_process(proc, 302, "very-long-daemon-name", argv=["/usr/sbin/very-long-daemon-name"])
    assert by_name(proc, "very-long-daemon-name").verdict is Verdict.UP


def test_several_live_processes_of_one_name_are_up(proc: Path) -> None:
    for pid in (400, 401, 402):
        add_process(proc, pid, "nginx")
    assert by_name(proc, "nginx") == Outcome(Verdict.UP, "3 processes named nginx are running")


def test_no_such_process_is_down(proc: Path) -> None:
    assert by_name(proc, "nfsd") == Outcome(Verdict.DOWN, "no process named nfsd")


def test_only_zombies_of_that_name_is_down_and_says_so(proc: Path) -> None:
    add_zombie(proc, 500, "nfsd")
    assert by_name(proc, "nfsd") == Outcome(Verdict.DOWN, "no process named nfsd, only zombies (pid 500)")
    add_process(proc, 501, "nfsd")
    assert by_name(proc, "nfsd") == Outcome(Verdict.UP, "process nfsd is running (pid 501)")


def test_a_process_vanishing_during_the_scan_is_skipped(proc: Path) -> None:
    """Listed, then gone before its files are read: the kernel removes the directory's content."""
    (proc / "600").mkdir()
    half = proc / "601"
    half.mkdir()
    (half / "stat").write_text("601 (nfsd) S 1 601 601 0 -1\n")   # cmdline gone after stat was read
    (proc / "602").mkdir()
    (proc / "602" / "stat").write_text("garbage")
    (proc / "602" / "cmdline").write_bytes(b"nfsd\0")
    assert by_name(proc, "nfsd") == Outcome(Verdict.DOWN, "no process named nfsd")
    add_process(proc, 603, "nfsd")
    assert by_name(proc, "nfsd") == Outcome(Verdict.UP, "process nfsd is running (pid 603)")


def test_a_kernel_name_with_spaces_and_parentheses_is_read_whole(proc: Path) -> None:
    add_process(proc, 700, "a) b (c", argv=[])
    assert by_name(proc, "a) b (c") == Outcome(Verdict.UP, "process a) b (c is running (pid 700)")


def test_no_proc_at_all_is_an_error(tmp_path: Path) -> None:
    outcome = by_name(tmp_path / "absent", "nfsd")
    assert outcome.verdict is Verdict.ERROR and outcome.detail.startswith(f"cannot list {tmp_path / 'absent'}")


def test_a_scan_slower_than_the_timeout_is_down(proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(root: Path) -> list[Any]:
        time.sleep(0.3)
        return []
    monkeypatch.setattr(checks, "scan_processes", slow)
    outcome = run(Checker(FakeRunner(), proc=proc), parse("process", "nfsd"), timeout=0.05)
    assert outcome == Outcome(Verdict.DOWN, "no answer within 50 ms", timed_out=True)


# -- PROCESS: one scan for checks close together ----------------------------------------------


class CountingScan:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.real = checks.scan_processes
        monkeypatch.setattr(checks, "scan_processes", self)

    def __call__(self, root: Path) -> list[Any]:
        self.count += 1
        return self.real(root)


def test_checks_within_the_reuse_time_share_one_scan(proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = CountingScan(monkeypatch)
    clock = FakeClock()
    checker = Checker(FakeRunner(), proc=proc, clock=clock)

    async def scenario() -> list[Verdict]:
        verdicts = [(await checker.check(parse("process", "nfsd"), 1)).verdict]
        add_process(proc, 800, "nfsd")
        clock.advance(0.1)   # the same scan: the new process is not seen yet
        verdicts.append((await checker.check(parse("process", "nfsd"), 1)).verdict)
        clock.advance(0.15)  # 0.25 s after the scan began: a new one
        verdicts.append((await checker.check(parse("process", "nfsd"), 1)).verdict)
        return verdicts

    assert asyncio.run(scenario()) == [Verdict.DOWN, Verdict.DOWN, Verdict.UP]
    assert scans.count == 2


def test_two_hundred_checks_at_once_scan_once(proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = CountingScan(monkeypatch)
    add_process(proc, 900, "nfsd")
    checker = Checker(FakeRunner(), proc=proc)   # the real monotonic clock

    async def scenario() -> list[Outcome]:
        names = ["nfsd", "init", "sshd", "kthreadd"] * 50
        return list(await asyncio.gather(*(checker.check(parse("process", n), 1) for n in names)))

    outcomes = asyncio.run(scenario())
    assert [o.verdict for o in outcomes[:4]] == [Verdict.UP, Verdict.UP, Verdict.DOWN, Verdict.UP]
    assert len(outcomes) == 200 and scans.count == 1


def test_one_check_timing_out_leaves_the_shared_scan_to_the_others(
        proc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(root: Path) -> list[checks.ProcessEntry]:
        time.sleep(0.2)
        return [checks.ProcessEntry(1, "nfsd", "nfsd", "S")]

    monkeypatch.setattr(checks, "scan_processes", slow)
    checker = Checker(FakeRunner(), proc=proc, clock=FakeClock())

    async def scenario() -> tuple[Outcome, Outcome]:
        impatient = checker.check(parse("process", "nfsd"), 0.05)
        patient = checker.check(parse("process", "nfsd"), 2)
        first, second = await asyncio.gather(impatient, patient)
        return first, second

    first, second = asyncio.run(scenario())
    assert first.timed_out and first.verdict is Verdict.DOWN
    assert second == Outcome(Verdict.UP, "process nfsd is running (pid 1)")


# -- network failures that loopback cannot stage ----------------------------------------------


def raising(exc: BaseException) -> Any:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc
    return fail


def tcp_with(monkeypatch: pytest.MonkeyPatch, addresses: list[str], failures: dict[str, OSError]) -> Outcome:
    """A TCP check of db.example:5432 resolving to `addresses`, each connect failing as told."""
    async def resolve(host: str, port: int, kind: int) -> list[tuple[int, int, int, Any]]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, kind, 0, (a, port)) for a in addresses]

    async def connect(loop: Any, sock: socket.socket, address: Any) -> None:
        if address[0] in failures:
            raise failures[address[0]]
    monkeypatch.setattr(checks, "resolve", resolve)
    monkeypatch.setattr(asyncio.selector_events.BaseSelectorEventLoop, "sock_connect", connect)
    return run(Checker(FakeRunner()), parse("tcp", "db.example:5432"))


@pytest.mark.parametrize("failures, outcome", [
    ({}, Outcome(Verdict.UP, "connected to port 5432")),
    ({"10.0.0.5": OSError(113, "No route to host")}, Outcome(Verdict.DOWN, "No route to host")),
    ({"10.0.0.5": ConnectionRefusedError(111, "Connection refused")}, Outcome(Verdict.DOWN, "connection refused")),
])
def test_tcp_connects(monkeypatch: pytest.MonkeyPatch, failures: dict[str, OSError], outcome: Outcome) -> None:
    assert tcp_with(monkeypatch, ["10.0.0.5"], failures) == outcome


def test_tcp_tries_every_address_of_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable, refused = OSError(99, "Cannot assign requested address"), ConnectionRefusedError(111, "refused")
    assert tcp_with(monkeypatch, ["fd00::5", "10.0.0.5"], {"fd00::5": unreachable}) == \
        Outcome(Verdict.UP, "connected to port 5432")
    # One address reached the host and nothing listens there: that says more than the other.
    assert tcp_with(monkeypatch, ["fd00::5", "10.0.0.5"], {"fd00::5": unreachable, "10.0.0.5": refused}) == \
        Outcome(Verdict.DOWN, "connection refused")
    assert tcp_with(monkeypatch, ["fd00::5", "10.0.0.5"],
                    {"fd00::5": unreachable, "10.0.0.5": OSError(113, "No route to host")}) == \
        Outcome(Verdict.DOWN, "No route to host")


def test_a_tcp_name_that_does_not_resolve_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "resolve", raising(socket.gaierror(-2, "Name or service not known")))
    assert run(Checker(FakeRunner()), parse("tcp", "db.example:5432")) == \
        Outcome(Verdict.ERROR, "cannot resolve db.example")


def test_a_numeric_address_is_not_sent_to_the_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_resolver(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the resolver was asked")
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", no_resolver)
    found = asyncio.run(checks.resolve("fd00::5", 53, socket.SOCK_DGRAM))
    assert [(family, address[0]) for family, _, _, address in found] == [(socket.AF_INET6, "fd00::5")]


@pytest.mark.parametrize("exc, outcome", [
    (socket.gaierror(-2, "Name or service not known"), Outcome(Verdict.ERROR, "cannot resolve ntp.example")),
    (OSError(101, "Network is unreachable"), Outcome(Verdict.DOWN, "Network is unreachable")),
])
def test_udp_failures(monkeypatch: pytest.MonkeyPatch, exc: OSError, outcome: Outcome) -> None:
    monkeypatch.setattr(Checker, "_udp_socket", staticmethod(raising(exc)))
    assert run(Checker(FakeRunner()), parse("udp", "ntp.example:123")) == outcome


class FakeSession:
    """Answers every GET with `status`, or raises `error`; remembers being closed."""

    def __init__(self, status: int = 200, error: BaseException | None = None) -> None:
        self.status, self.error, self.closed, self.asked = status, error, False, []

    @contextlib.asynccontextmanager
    async def get(self, url: str, allow_redirects: bool = True) -> Any:
        self.asked.append((url, allow_redirects))
        if self.error is not None:
            raise self.error
        yield self

    async def close(self) -> None:
        self.closed = True


def http_with(monkeypatch: pytest.MonkeyPatch, session: FakeSession) -> Outcome:
    monkeypatch.setattr(checks, "load_http_client", lambda: None)
    monkeypatch.setattr(checks, "make_http_session", lambda context: session)

    async def go() -> Outcome:
        checker = Checker(FakeRunner())
        try:
            return await checker.check(parse("http", "http://web.example/health"), 0.5)
        finally:
            await checker.aclose()
    return asyncio.run(go())


def connector_error(kind: type[aiohttp.ClientConnectorError], os_error: OSError) -> aiohttp.ClientConnectorError:
    key = ConnectionKey("web.example", 80, False, True, None, None, None)
    return kind(key, os_error)


def test_an_http_status_is_the_verdict_and_redirects_are_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    session = FakeSession(302)
    assert http_with(monkeypatch, session) == Outcome(Verdict.UP, "HTTP 302")
    assert session.asked == [("http://web.example/health", False)]
    assert session.closed   # aclose closed the shared session


def test_an_http_name_that_does_not_resolve_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    error = connector_error(aiohttp.ClientConnectorDNSError, socket.gaierror(-2, "Name or service not known"))
    assert http_with(monkeypatch, FakeSession(error=error)) == Outcome(Verdict.ERROR, "cannot resolve web.example")


def test_an_http_connection_failure_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    error = connector_error(aiohttp.ClientConnectorError, OSError(113, "No route to host"))
    assert http_with(monkeypatch, FakeSession(error=error)) == Outcome(Verdict.DOWN, "cannot connect: No route to host")


def test_other_http_errors_are_down(monkeypatch: pytest.MonkeyPatch) -> None:
    error = aiohttp.ServerDisconnectedError("Server disconnected")
    assert http_with(monkeypatch, FakeSession(error=error)) == \
        Outcome(Verdict.DOWN, "ServerDisconnectedError: Server disconnected")


def test_an_http_client_that_cannot_be_made_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise ImportError("No module named 'aiohttp'")
    monkeypatch.setattr(checks, "load_http_client", missing)
    outcome = run(Checker(FakeRunner()), parse("http", "http://web.example/"))
    assert outcome == Outcome(Verdict.ERROR, "cannot make an HTTP client: No module named 'aiohttp'")


# -- odds and ends ---------------------------------------------------------------------------


def test_an_unknown_check_type_is_an_error() -> None:
    spec = CheckSpec(type="ping")  # type: ignore[arg-type]
    assert run(Checker(FakeRunner()), spec).verdict is Verdict.ERROR


def test_printable_escapes_and_cuts() -> None:
    assert checks.printable(b"OK\r\n", 60) == "OK\\x0d\\x0a"
    assert checks.printable(b"a" * 100, 10) == "aaaaaaa..."
    assert checks.printable(b"a" * 10, 10) == "a" * 10


def test_a_daemon_without_http_checks_never_loads_aiohttp() -> None:
    code = ("import asyncio, sys\n"
            "from fcaps.fault.services.checks import Checker\n"
            "from haoscar_snmp.config.checkspec import parse\n"
            "from haoscar_snmp.core.runner import ShellRunner\n"
            "async def main():\n"
            "    checker = Checker(ShellRunner())\n"
            "    print((await checker.check(parse('command', 'true'), 5)).verdict.value)\n"
            "    await checker.aclose()\n"
            "asyncio.run(main())\n"
            "print('aiohttp' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, timeout=60).stdout.split()
    assert out == ["up", "False"]
