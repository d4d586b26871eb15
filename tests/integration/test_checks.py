"""Service checks against real targets on loopback: processes, sockets, HTTP, the shell.

No fakes: the checker reads the real /proc, connects real TCP and UDP sockets, asks a real
HTTP server (and a TLS one whose certificate it must refuse) and runs commands through the
real ShellRunner. Every process and server a test starts is stopped by its fixture or its
`finally`, also when the test fails.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from fcaps.fault.services.checks import Checker, Outcome, Verdict
from haoscar_snmp.config.checkspec import parse
from haoscar_snmp.core.runner import ShellRunner

LOOPBACK = "127.0.0.1"


def check(kind: str, target: str, timeout: float = 2.0, send: str = "", expect: str = "") -> Outcome:
    """One check by a fresh checker on the real machine, its HTTP client closed afterwards."""
    async def go() -> Outcome:
        checker = Checker(ShellRunner())
        try:
            return await checker.check(parse(kind, target, send, expect), timeout)
        finally:
            await checker.aclose()
    return asyncio.run(go())


def proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def wait_for_state(pid: int, wanted: tuple[str | None, ...], limit: float = 5.0) -> str | None:
    deadline = time.monotonic() + limit
    state = proc_state(pid)
    while state not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = proc_state(pid)
    return state


def unique_name() -> str:
    return "hchk" + secrets.token_hex(4)   # 12 characters: the kernel keeps all of it in comm


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Sleeper:
    proc: subprocess.Popen[bytes]
    name: str
    pidfile: Path


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Sleeper]:
    """A real `sleep 30`, run from a copy under a name no other process has."""
    name = unique_name()
    program = tmp_path / name
    shutil.copy("/bin/sleep", program)
    proc = subprocess.Popen([str(program), "30"])
    try:
        pidfile = tmp_path / f"{name}.pid"
        pidfile.write_text(f"{proc.pid}\n")
        assert wait_for_state(proc.pid, ("S", "R")) in ("S", "R")
        yield Sleeper(proc, name, pidfile)
    finally:
        stop(proc)


@pytest.fixture
def zombie(tmp_path: Path) -> Iterator[Sleeper]:
    """A child that has exited and that nobody reaps (until the fixture does)."""
    name = unique_name()
    program = tmp_path / name
    shutil.copy("/bin/true", program)
    proc = subprocess.Popen([str(program)])
    try:
        pidfile = tmp_path / f"{name}.pid"
        pidfile.write_text(f"{proc.pid}\n")
        assert wait_for_state(proc.pid, ("Z",)) == "Z"   # read from /proc: polling would reap it
        yield Sleeper(proc, name, pidfile)
    finally:
        proc.wait(5)


def test_a_running_process_by_pid_file_is_up(sleeper: Sleeper) -> None:
    assert check("process", str(sleeper.pidfile)) == Outcome(Verdict.UP, f"process {sleeper.proc.pid} is running")


def test_a_running_process_by_name_is_up(sleeper: Sleeper) -> None:
    outcome = check("process", sleeper.name)
    assert outcome == Outcome(Verdict.UP, f"process {sleeper.name} is running (pid {sleeper.proc.pid})")


def test_a_process_is_found_by_its_argv0(tmp_path: Path) -> None:
    name = unique_name()
    proc = subprocess.Popen([f"/opt/{name}", "30"], executable="/bin/sleep")   # comm stays "sleep"
    try:
        assert wait_for_state(proc.pid, ("S", "R")) in ("S", "R")
        assert check("process", name) == Outcome(Verdict.UP, f"process {name} is running (pid {proc.pid})")
    finally:
        stop(proc)


def test_a_killed_process_is_down_by_pid_file_and_by_name(sleeper: Sleeper) -> None:
    sleeper.proc.kill()
    sleeper.proc.wait(5)
    assert check("process", str(sleeper.pidfile)) == Outcome(Verdict.DOWN, f"process {sleeper.proc.pid} is gone")
    assert check("process", sleeper.name) == Outcome(Verdict.DOWN, f"no process named {sleeper.name}")


def test_a_zombie_is_down_by_pid_file_and_by_name(zombie: Sleeper) -> None:
    pid = zombie.proc.pid
    assert check("process", str(zombie.pidfile)) == Outcome(Verdict.DOWN, f"process {pid} is a zombie")
    assert check("process", zombie.name) == Outcome(Verdict.DOWN,
                                                    f"no process named {zombie.name}, only zombies (pid {pid})")


def test_a_missing_pid_file_is_down(tmp_path: Path) -> None:
    pidfile = tmp_path / "none.pid"
    assert check("process", str(pidfile)) == Outcome(Verdict.DOWN, f"pid file {pidfile} does not exist")


# -- TCP ----------------------------------------------------------------------------------------


@contextmanager
def closed_tcp_port() -> Iterator[int]:
    """A port bound but not listening, held for the test: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        yield s.getsockname()[1]


def test_a_listening_tcp_port_is_up() -> None:
    async def go() -> tuple[Outcome, int]:
        accepted = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            writer.close()

        server = await asyncio.start_server(handle, LOOPBACK, 0)
        try:
            port = server.sockets[0].getsockname()[1]
            checker = Checker(ShellRunner())
            outcome = await checker.check(parse("tcp", f"{LOOPBACK}:{port}"), 2)
            await asyncio.sleep(0.05)
            return outcome, port
        finally:
            server.close()
            await server.wait_closed()
            assert accepted == 1

    outcome, port = asyncio.run(go())
    assert outcome == Outcome(Verdict.UP, f"connected to port {port}")


def test_a_closed_tcp_port_is_refused() -> None:
    with closed_tcp_port() as port:
        assert check("tcp", f"{LOOPBACK}:{port}") == Outcome(Verdict.DOWN, "connection refused")
        # localhost may name ::1 as well: refused on every address is still plainly refused
        assert check("tcp", f"localhost:{port}") == Outcome(Verdict.DOWN, "connection refused")


# -- UDP ----------------------------------------------------------------------------------------


class Responder(asyncio.DatagramProtocol):
    """Echoes every datagram, or answers `reply`, or (silent) answers nothing; keeps what it got."""

    def __init__(self, reply: bytes | None = None, silent: bool = False) -> None:
        self.reply = reply
        self.silent = silent
        self.received: list[bytes] = []
        self.sock: socket.socket | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)
        if not self.silent and self.sock is not None:
            # Through the socket itself: asyncio's sendto would drop an empty echo.
            self.sock.sendto(data if self.reply is None else self.reply, addr)


@asynccontextmanager
async def udp_server(responder: Responder) -> AsyncIterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.setblocking(False)
    responder.sock = sock
    try:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: responder, sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        yield sock.getsockname()[1]
    finally:
        transport.close()


def udp(responder: Responder, send: str = "", expect: str = "", timeout: float = 2.0) -> Outcome:
    async def go() -> Outcome:
        async with udp_server(responder) as port:
            return await Checker(ShellRunner()).check(parse("udp", f"{LOOPBACK}:{port}", send, expect), timeout)
    return asyncio.run(go())


def test_a_udp_echo_with_the_expected_reply_is_up() -> None:
    responder = Responder()
    assert udp(responder, send=r"PING\r\n", expect="PING") == Outcome(Verdict.UP, "reply of 6 bytes")
    assert responder.received == [b"PING\r\n"]


def test_an_empty_datagram_is_sent_and_any_reply_will_do() -> None:
    responder = Responder(reply=b"pong")
    assert udp(responder) == Outcome(Verdict.UP, "reply of 4 bytes")
    assert responder.received == [b""]


def test_a_reply_without_the_expected_text_is_down() -> None:
    outcome = udp(Responder(reply=b"ERR busy\r\n\x00"), send="status", expect="OK")
    assert outcome == Outcome(Verdict.DOWN, "unexpected reply: ERR busy\\x0d\\x0a\\x00")


def test_a_long_unexpected_reply_is_cut() -> None:
    outcome = udp(Responder(reply=b"x" * 200), send="status", expect="OK")
    assert outcome == Outcome(Verdict.DOWN, "unexpected reply: " + "x" * 57 + "...")


def test_a_udp_server_that_does_not_answer_times_out() -> None:
    responder = Responder(silent=True)
    outcome = udp(responder, send="hello", timeout=0.3)
    assert outcome == Outcome(Verdict.DOWN, "no reply within 300 ms", timed_out=True)
    assert responder.received == [b"hello"]


def test_a_udp_port_with_nothing_listening_is_unreachable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    assert check("udp", f"{LOOPBACK}:{port}", send="hello") == Outcome(Verdict.DOWN, "port unreachable")
    assert time.monotonic() - started < 1.0   # the ICMP error answers at once: no waiting for the timeout


# -- HTTP ---------------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive allowed: the checker must still open a connection per check
    connections: ClassVar[list[int]] = []

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address[1])

    def do_GET(self) -> None:
        status = {"/": 200, "/bad": 503, "/moved": 302}.get(self.path, 404)
        body = b"hello\n"
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/bad")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass   # a refused TLS handshake is the point of one test, not noise for the log


@contextmanager
def http_server(context: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[int]]]:
    """A real HTTP server in a thread: 200 on /, 503 on /bad, 302 on /moved; yields (port, connections)."""
    handler = type("Counting", (Handler,), {"connections": []})
    server = QuietServer((LOOPBACK, 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler.connections
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_statuses_map_to_up_and_down() -> None:
    with http_server() as (port, connections):
        async def go() -> list[Outcome]:
            checker = Checker(ShellRunner())
            try:
                return [await checker.check(parse("http", f"http://{LOOPBACK}:{port}{path}", expect=expect), 2)
                        for path, expect in [("/", ""), ("/bad", ""), ("/moved", ""), ("/moved", "200"),
                                             ("/bad", "200-299,503"), ("/", "")]]
            finally:
                await checker.aclose()
        outcomes = asyncio.run(go())
        assert outcomes == [Outcome(Verdict.UP, "HTTP 200"), Outcome(Verdict.DOWN, "HTTP 503"),
                            Outcome(Verdict.UP, "HTTP 302"), Outcome(Verdict.DOWN, "HTTP 302"),
                            Outcome(Verdict.UP, "HTTP 503"), Outcome(Verdict.UP, "HTTP 200")]
        assert len(connections) == 6   # no keep-alive: each check reaches the server afresh


def test_an_http_url_on_a_closed_port_cannot_connect() -> None:
    with closed_tcp_port() as port:
        outcome = check("http", f"http://{LOOPBACK}:{port}/")
    assert outcome.verdict is Verdict.DOWN and not outcome.timed_out
    assert outcome.detail.startswith("cannot connect: ")


def test_an_http_server_that_never_answers_times_out() -> None:
    async def go() -> tuple[Outcome, float]:
        release = asyncio.Event()

        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await release.wait()   # accepts, reads nothing, answers nothing
            writer.close()

        server = await asyncio.start_server(hang, LOOPBACK, 0)
        checker = Checker(ShellRunner())
        try:
            port = server.sockets[0].getsockname()[1]
            started = time.monotonic()
            outcome = await checker.check(parse("http", f"http://{LOOPBACK}:{port}/"), 0.3)
            return outcome, time.monotonic() - started
        finally:
            await checker.aclose()
            release.set()
            server.close()
            await server.wait_closed()

    outcome, took = asyncio.run(go())
    assert outcome == Outcome(Verdict.DOWN, "no answer within 300 ms", timed_out=True)
    assert took < 1.0


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no authority signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


def test_an_https_server_with_an_unknown_certificate_is_refused(tmp_path: Path) -> None:
    with http_server(self_signed(tmp_path)) as (port, _):
        outcome = check("http", f"https://{LOOPBACK}:{port}/")
    assert outcome.verdict is Verdict.DOWN and not outcome.timed_out
    assert outcome.detail.startswith("cannot connect: ") and "CERTIFICATE_VERIFY_FAILED" in outcome.detail


# -- commands through the real shell -----------------------------------------------------------


def test_commands_exit_codes_map_to_verdicts(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    assert check("command", "true") == Outcome(Verdict.UP, "exit code 0")
    assert check("command", "echo 'disk is full'; exit 3") == Outcome(Verdict.DOWN, "exit code 3: disk is full")
    assert check("command", "no-such-command-haoscar") == Outcome(Verdict.ERROR,
                                                                  "cannot run: exit 127 (command not found)")
    assert check("command", str(script)) == Outcome(Verdict.ERROR, "cannot run: exit 126 (not executable)")


def test_a_hung_command_times_out_and_its_whole_process_group_is_killed(tmp_path: Path) -> None:
    leader_file = tmp_path / "leader"
    started = time.monotonic()
    outcome = check("command", f"echo $$ > {leader_file}; sleep 5 & sleep 5; wait", timeout=0.3)
    took = time.monotonic() - started
    assert outcome == Outcome(Verdict.DOWN, "no answer within 300 ms", timed_out=True)
    assert took < 2.0
    group = int(leader_file.read_text())
    deadline = time.monotonic() + 5
    while (left := members(group)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert left == []


def members(group: int) -> list[int]:
    """Live (not zombie) processes in a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


# -- systemd ------------------------------------------------------------------------------------


SYSTEMD = Path("/run/systemd/system")

# What `systemctl show --property=LoadState,ActiveState,SubState -- UNIT` prints, for a
# stand-in where systemd does not run (containers, this CI): the real shell runs it.
STAND_IN = """#!/bin/sh
for unit; do :; done
case "$unit" in
  systemd-journald.service) printf 'LoadState=loaded\nActiveState=active\nSubState=running\n' ;;
  haoscar-stopped.service) printf 'LoadState=loaded\nActiveState=failed\nSubState=failed\n' ;;
  *) printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\n' ;;
esac
"""


def systemd_check(unit: str, marker: Path) -> Outcome:
    async def go() -> Outcome:
        checker = Checker(ShellRunner(), systemd_marker=marker)
        try:
            return await checker.check(parse("systemd", unit), 2.0)
        finally:
            await checker.aclose()
    return asyncio.run(go())


def test_systemd_units_are_read_through_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine that runs systemd, against the real systemctl; elsewhere against a
    stand-in `systemctl` on PATH that prints what systemctl prints."""
    marker = SYSTEMD
    if not SYSTEMD.exists():
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "systemctl").write_text(STAND_IN)
        (bin_dir / "systemctl").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
        marker = tmp_path
        assert systemd_check("haoscar-stopped.service", marker) == Outcome(Verdict.DOWN, "unit is failed (failed)")
    assert systemd_check("systemd-journald.service", marker) == Outcome(Verdict.UP, "unit is active (running)")
    assert systemd_check("haoscar-no-such-unit.service", marker) == Outcome(
        Verdict.ERROR, "unit haoscar-no-such-unit.service is not loaded (not-found)")


def test_a_systemd_check_on_a_machine_without_systemd_is_an_error(tmp_path: Path) -> None:
    assert systemd_check("systemd-journald.service", tmp_path / "no-systemd-here") == Outcome(
        Verdict.ERROR, "systemd is not running on this head")


def test_a_cancelled_command_takes_its_whole_process_group_down(tmp_path: Path) -> None:
    """The daemon stopping cancels running checks: their commands must not live on."""
    marker = tmp_path / "child.pid"

    async def scenario() -> None:
        task = asyncio.ensure_future(ShellRunner().run(f"sleep 30 & echo $! > {marker}; wait", 10))
        for _ in range(200):
            if marker.exists() and marker.read_text().strip():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(scenario())
    child = int(marker.read_text())
    for _ in range(100):
        if not Path(f"/proc/{child}").exists() or \
                Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"sleep {child} outlived the cancelled command")
