"""Service checks by type: is the service up, down, or could the check not be carried out?

Each configured service says how it is checked (a command, a systemd unit, a process, a
TCP or UDP port, an HTTP URL); `haoscar_snmp.config.checkspec` has already turned that
into a `CheckSpec`, and a `Checker` runs it. The answer is an `Outcome`: UP, DOWN, or
ERROR when the check itself could not be carried out (no systemd on this head, a command
that is not installed, a name that does not resolve). ERROR says nothing about the
service, so the recovery ladder must not restart or fail over on it; it is a
configuration or host problem for the operator instead.

Every check is bounded by its timeout, and a check that runs out of time is DOWN (a
service that does not answer in time is not serving). A command gets `RUNNER_GRACE` more
before the checker gives up on the runner, so that the runner's own kill of a hung
command (its whole process group) is never cut short. A check never raises for the
target's failure, but cancellation (the daemon stopping) always goes through.

Process checks read /proc in a worker thread, never on the event loop, and checks that
run within `SCAN_REUSE` seconds of each other share one scan: a head with hundreds of
process checks per second lists /proc a few times per second, not hundreds.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import os
import shlex
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haoscar_snmp.config.checkspec import CheckSpec, CheckType
from haoscar_snmp.core.clock import Clock, SystemClock
from haoscar_snmp.core.runner import Runner, RunResult

if TYPE_CHECKING:
    import httpx

SCAN_REUSE = 0.2      # seconds during which one /proc scan answers every process-by-name check
RUNNER_GRACE = 0.5    # the runner kills on its own timeout; this backstop must not cut its kill short
OUTPUT_CUT = 80       # characters of a failed command's first output line kept in the detail
REPLY_CUT = 60        # characters of an unexpected UDP reply kept in the detail
CANNOT_RUN = {126: "not executable", 127: "command not found"}   # the shell's own exit codes
RUNNING_UNIT_STATES = ("active", "reloading")   # a reloading unit goes on serving


class Verdict(enum.Enum):
    """What a check found."""

    UP = "up"
    DOWN = "down"
    ERROR = "error"     # the check itself could not be carried out; says nothing about the service


@dataclass(frozen=True)
class Outcome:
    """One check's answer, with one short sentence for the operator."""

    verdict: Verdict
    detail: str
    timed_out: bool = False   # the check ran out of its time (and is DOWN)


@dataclass(frozen=True)
class ProcessEntry:
    """One process as a by-name check sees it: its kernel name, argv[0]'s base name, its state."""

    pid: int
    comm: str
    argv0: str
    state: str

    @property
    def dead(self) -> bool:
        return self.state in ("Z", "X", "x")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def millis(seconds: float) -> str:
    return f"{round(seconds * 1000)} ms"


def printable(data: bytes, limit: int) -> str:
    """Bytes as an operator can read them: ASCII kept, everything else as \\xHH."""
    return cut("".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in data[: limit + 1]), limit)


def stat_fields(text: str) -> tuple[str, str]:
    """(comm, state) from a /proc/PID/stat line; comm may itself hold spaces and parentheses."""
    comm = text[text.index("(") + 1: text.rindex(")")]
    return comm, text[text.rindex(")") + 1:].split()[0]


def scan_processes(proc: Path) -> list[ProcessEntry]:
    """Every process under `proc`; blocking, for a worker thread. A process that ends
    between the listing and the reads is simply not there."""
    found = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            stat = (proc / name / "stat").read_bytes()
            cmdline = (proc / name / "cmdline").read_bytes()
            comm, state = stat_fields(os.fsdecode(stat))
        except (OSError, ValueError, IndexError):
            continue
        argv0 = os.fsdecode(cmdline.split(b"\0", 1)[0]).rpartition("/")[2]
        found.append(ProcessEntry(int(name), comm, argv0, state))
    return found


def check_pidfile(pidfile: str, proc: Path) -> Outcome:
    """The process named by a pid file; blocking (the file may sit on a slow file system)."""
    try:
        with open(pidfile, "rb") as f:
            content = f.read(64)
    except FileNotFoundError:
        return Outcome(Verdict.DOWN, f"pid file {pidfile} does not exist")
    except OSError as exc:
        return Outcome(Verdict.ERROR, f"cannot read pid file {pidfile}: {exc.strerror or exc}")
    first = content.split(b"\n", 1)[0].strip()
    if not first.isdigit() or int(first) == 0:
        shown = printable(first, 20) if first else "nothing"
        return Outcome(Verdict.DOWN, f"pid file {pidfile} holds {shown}, not a process id")
    pid = int(first)
    try:
        _, state = stat_fields(os.fsdecode((proc / str(pid) / "stat").read_bytes()))
    except (FileNotFoundError, ProcessLookupError):
        return Outcome(Verdict.DOWN, f"process {pid} is gone")
    except OSError as exc:
        return Outcome(Verdict.ERROR, f"cannot read the state of process {pid}: {exc.strerror or exc}")
    except (ValueError, IndexError):
        return Outcome(Verdict.ERROR, f"cannot read the state of process {pid}: unexpected stat format")
    if state == "Z":
        return Outcome(Verdict.DOWN, f"process {pid} is a zombie")
    if state in ("X", "x"):
        return Outcome(Verdict.DOWN, f"process {pid} is dead")
    return Outcome(Verdict.UP, f"process {pid} is running")


def by_name(name: str, processes: list[ProcessEntry]) -> Outcome:
    """UP when a live process has `name` as its kernel name or as argv[0]'s base name."""
    matches = [p for p in processes if name in (p.comm, p.argv0)]
    live = [p for p in matches if not p.dead]
    if len(live) == 1:
        return Outcome(Verdict.UP, f"process {name} is running (pid {live[0].pid})")
    if live:
        return Outcome(Verdict.UP, f"{len(live)} processes named {name} are running")
    if matches:
        pids = ", ".join(str(p.pid) for p in matches[:5])
        return Outcome(Verdict.DOWN, f"no process named {name}, only zombies (pid {pids})")
    return Outcome(Verdict.DOWN, f"no process named {name}")


def command_outcome(result: RunResult, timeout: float) -> Outcome:
    """A command's verdict from its exit code: 0 is UP, 126 and 127 mean it could not run."""
    if result.timed_out:
        return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
    code = result.returncode
    if code == 0:
        return Outcome(Verdict.UP, "exit code 0")
    if code is None:
        return Outcome(Verdict.ERROR, "the command gave no exit code")
    if code in CANNOT_RUN:
        return Outcome(Verdict.ERROR, f"cannot run: exit {code} ({CANNOT_RUN[code]})")
    why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    first = result.output.split("\n", 1)[0].strip()
    return Outcome(Verdict.DOWN, f"{why}: {cut(first, OUTPUT_CUT)}" if first else why)


def unit_properties(output: str) -> dict[str, str]:
    """`Key=Value` lines, in any order; anything else (a warning on stderr) is ignored."""
    props = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().isidentifier():
            props[key.strip()] = value.strip()
    return props


def os_reason(exc: OSError) -> str:
    return cut(exc.strerror or str(exc) or type(exc).__name__, OUTPUT_CUT)


def all_refused(exc: OSError) -> bool:
    """asyncio joins the failures of a name's several addresses into one OSError without an errno."""
    text = str(exc)
    return text.startswith("Multiple exceptions: ") and \
        text.count("[Errno ") == text.count(f"[Errno {errno.ECONNREFUSED}]")


class _Probe(asyncio.DatagramProtocol):
    """Hands the first datagram (or the first error, such as ICMP port unreachable) to a future."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("the socket was closed"))

    def settle(self) -> None:
        """Before closing: nobody waits for the answer any more, so it must not be left to warn."""
        if not self.answer.done():
            self.answer.cancel()
        elif not self.answer.cancelled():
            self.answer.exception()


class Checker:
    """Runs checks of every type; one per daemon, shared by all services."""

    def __init__(self, runner: Runner, *, proc: Path = Path("/proc"),
                 systemd_marker: Path = Path("/run/systemd/system"), clock: Clock | None = None) -> None:
        self.runner = runner
        self.proc = proc
        self.systemd_marker = systemd_marker
        self.clock = clock or SystemClock()
        self._scan: asyncio.Task[list[ProcessEntry]] | None = None
        self._scan_started = 0.0
        self._http: asyncio.Task[httpx.AsyncClient] | None = None

    async def check(self, spec: CheckSpec, timeout: float) -> Outcome:
        """The service's verdict, within `timeout` seconds; never raises for the target's failure."""
        if spec.type is CheckType.COMMAND:
            return await self._command(spec, timeout)
        if spec.type is CheckType.SYSTEMD:
            return await self._systemd(spec, timeout)
        if spec.type is CheckType.PROCESS:
            return await self._process(spec, timeout)
        if spec.type is CheckType.TCP:
            return await self._tcp(spec, timeout)
        if spec.type is CheckType.UDP:
            return await self._udp(spec, timeout)
        if spec.type is CheckType.HTTP:
            return await self._http_get(spec, timeout)
        return Outcome(Verdict.ERROR, f"unknown check type {spec.type}")

    async def aclose(self) -> None:
        """Closes the HTTP client, if an HTTP check ever made one."""
        making, self._http = self._http, None
        if making is None:
            return
        try:
            client = await making
        except (ImportError, OSError):
            return   # never made: nothing to close
        await client.aclose()

    async def _run(self, command: str, timeout: float) -> RunResult | Outcome:
        try:
            async with asyncio.timeout(timeout + RUNNER_GRACE):
                return await self.runner.run(command, timeout)
        except TimeoutError:
            return RunResult(command, None, "", timed_out=True)
        except OSError as exc:
            return Outcome(Verdict.ERROR, f"cannot start the shell: {os_reason(exc)}")

    async def _command(self, spec: CheckSpec, timeout: float) -> Outcome:
        result = await self._run(spec.command, timeout)
        return result if isinstance(result, Outcome) else command_outcome(result, timeout)

    async def _systemd(self, spec: CheckSpec, timeout: float) -> Outcome:
        if not self.systemd_marker.exists():
            return Outcome(Verdict.ERROR, "systemd is not running on this head")
        command = f"systemctl show --property=LoadState,ActiveState,SubState -- {shlex.quote(spec.unit)}"
        result = await self._run(command, timeout)
        if isinstance(result, Outcome):
            return result
        if result.timed_out or result.returncode != 0:
            outcome = command_outcome(result, timeout)
            if outcome.verdict is Verdict.DOWN and not outcome.timed_out:   # systemctl failed, not the unit
                return Outcome(Verdict.ERROR, f"systemctl failed: {outcome.detail}")
            return outcome
        props = unit_properties(result.output)
        if props.get("LoadState") == "not-found":
            return Outcome(Verdict.ERROR, f"unit {spec.unit} is not loaded (not-found)")
        active = props.get("ActiveState")
        if not active:
            return Outcome(Verdict.ERROR, f"systemctl did not report the state of {spec.unit}")
        verdict = Verdict.UP if active in RUNNING_UNIT_STATES else Verdict.DOWN
        return Outcome(verdict, f"unit is {active} ({props.get('SubState') or 'unknown'})")

    async def _process(self, spec: CheckSpec, timeout: float) -> Outcome:
        try:
            async with asyncio.timeout(timeout):
                if spec.pidfile:
                    return await asyncio.to_thread(check_pidfile, spec.pidfile, self.proc)
                return by_name(spec.process_name, await self._processes())
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
        except OSError as exc:
            return Outcome(Verdict.ERROR, f"cannot list {self.proc}: {os_reason(exc)}")

    async def _processes(self) -> list[ProcessEntry]:
        """The latest scan when it began less than SCAN_REUSE ago (or is still going), else a new one."""
        now = self.clock.monotonic()
        scan = self._scan
        if scan is None or (scan.done() and now - self._scan_started >= SCAN_REUSE):
            scan = asyncio.create_task(asyncio.to_thread(scan_processes, self.proc))
            scan.add_done_callback(lambda done: done.cancelled() or done.exception())   # retrieved, always
            self._scan, self._scan_started = scan, now
        return await asyncio.shield(scan)   # one check cancelled or timed out leaves the shared scan running

    async def _tcp(self, spec: CheckSpec, timeout: float) -> Outcome:
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                _, writer = await asyncio.open_connection(spec.host, spec.port)
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no connection within {millis(timeout)}", timed_out=True)
        except socket.gaierror:
            return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
        except ConnectionRefusedError:
            return Outcome(Verdict.DOWN, "connection refused")
        except OSError as exc:
            return Outcome(Verdict.DOWN, "connection refused" if all_refused(exc) else os_reason(exc))
        writer.close()
        try:
            async with asyncio.timeout_at(deadline):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            writer.transport.abort()
        return Outcome(Verdict.UP, f"connected to port {spec.port}")

    async def _udp(self, spec: CheckSpec, timeout: float) -> Outcome:
        loop = asyncio.get_running_loop()
        transport: asyncio.BaseTransport | None = None
        probe: _Probe | None = None
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(timeout):
                sock = await self._udp_socket(spec.host, spec.port)
                transport, probe = await loop.create_datagram_endpoint(_Probe, sock=sock)
                # Sent on the socket itself: asyncio's sendto drops an empty datagram, which is a valid probe.
                sock.send(spec.send)
                reply = await probe.answer
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no reply within {millis(timeout)}", timed_out=True)
        except socket.gaierror:
            return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
        except ConnectionRefusedError:
            return Outcome(Verdict.DOWN, "port unreachable")
        except OSError as exc:
            return Outcome(Verdict.DOWN, os_reason(exc))
        finally:
            if probe is not None:
                probe.settle()
            if transport is not None:
                transport.close()
            elif sock is not None:
                sock.close()
        if spec.expect in reply:
            return Outcome(Verdict.UP, f"reply of {len(reply)} bytes")
        return Outcome(Verdict.DOWN, f"unexpected reply: {printable(reply, REPLY_CUT)}")

    @staticmethod
    async def _udp_socket(host: str, port: int) -> socket.socket:
        """A non-blocking UDP socket connected to the first of the host's addresses that takes it."""
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.connect(address)   # a datagram connect sends nothing: it only fixes the peer
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    async def _client(self) -> httpx.AsyncClient:
        """The shared HTTP client, made once in a worker thread: loading httpx and the system's
        certificates takes long enough to stall the event loop."""
        if self._http is None:
            self._http = asyncio.create_task(asyncio.to_thread(make_http_client))
            self._http.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(self._http)   # a check that times out leaves it to the next

    async def _http_get(self, spec: CheckSpec, timeout: float) -> Outcome:
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                client = await self._client()
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
        except (ImportError, OSError) as exc:   # no httpx, or no certificates: no HTTP check can run here
            self._http = None
            return Outcome(Verdict.ERROR, cut(f"cannot make an HTTP client: {exc}", OUTPUT_CUT))
        import httpx  # loaded by now, with the client

        try:
            async with asyncio.timeout_at(deadline):
                async with client.stream("GET", spec.url, timeout=timeout) as response:
                    status = response.status_code   # the body is never read: only the status matters
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
        except httpx.ConnectError as exc:
            if any(isinstance(cause, socket.gaierror) for cause in causes(exc)):
                return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
            return Outcome(Verdict.DOWN, f"cannot connect: {cut(str(exc) or 'connection failed', OUTPUT_CUT)}")
        except httpx.HTTPError as exc:
            return Outcome(Verdict.DOWN, cut(f"{type(exc).__name__}: {exc}", OUTPUT_CUT))
        except httpx.InvalidURL as exc:
            return Outcome(Verdict.ERROR, cut(f"invalid URL: {exc}", OUTPUT_CUT))
        verdict = Verdict.UP if spec.accepts_status(status) else Verdict.DOWN
        return Outcome(verdict, f"HTTP {status}")


def make_http_client() -> httpx.AsyncClient:
    """The HTTP checks' client; blocking (imports httpx, reads the CA certificates), for a worker thread.

    No keep-alive: every check opens a fresh connection, so a restarted server is really
    reached. No redirects followed: a 3xx is the service's own answer. trust_env off: a proxy
    from the daemon's environment must not answer for the service. Certificates are verified
    against the system's store, where a site's own CA is installed."""
    import httpx  # only a daemon with HTTP checks pays for loading it

    return httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=False,
                             verify=ssl.create_default_context(), trust_env=False)


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
