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
import functools
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
    import aiohttp

SCAN_REUSE = 0.2      # seconds during which one /proc scan answers every process-by-name check
RUNNER_GRACE = 0.5    # the runner kills on its own timeout; this backstop must not cut its kill short
OUTPUT_CUT = 80       # characters of a failed command's first output line kept in the detail
REPLY_CUT = 60        # characters of an unexpected UDP reply kept in the detail
UDP_MAX = 65535       # the largest UDP answer read
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
        self._http: asyncio.Task[aiohttp.ClientSession] | None = None

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
            session = await making
        except (ImportError, OSError):
            return   # never made: nothing to close
        await session.close()

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
        """A connect to each of the host's addresses in turn: the first that takes it is UP."""
        loop = asyncio.get_running_loop()
        errors: list[OSError] = []
        try:
            async with asyncio.timeout(timeout):
                for family, kind, proto, address in await resolve(spec.host, spec.port, socket.SOCK_STREAM):
                    sock = socket.socket(family, kind, proto)
                    try:
                        sock.setblocking(False)
                        await loop.sock_connect(sock, address)
                        return Outcome(Verdict.UP, f"connected to port {spec.port}")
                    except OSError as exc:
                        errors.append(exc)
                    finally:
                        sock.close()
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no connection within {millis(timeout)}", timed_out=True)
        except socket.gaierror:
            return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
        if any(isinstance(exc, ConnectionRefusedError) for exc in errors):
            return Outcome(Verdict.DOWN, "connection refused")   # reached the host: nothing listens
        return Outcome(Verdict.DOWN, os_reason(errors[-1]) if errors else f"no address for {spec.host}")

    async def _udp(self, spec: CheckSpec, timeout: float) -> Outcome:
        """One datagram out, the first answer back; ICMP port unreachable comes back as an error."""
        loop = asyncio.get_running_loop()
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout(timeout):
                sock = await self._udp_socket(spec.host, spec.port)
                sock.send(spec.send)        # an empty datagram is a valid probe too
                reply = await loop.sock_recv(sock, UDP_MAX)
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no reply within {millis(timeout)}", timed_out=True)
        except socket.gaierror:
            return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
        except ConnectionRefusedError:
            return Outcome(Verdict.DOWN, "port unreachable")
        except OSError as exc:
            return Outcome(Verdict.DOWN, os_reason(exc))
        finally:
            if sock is not None:
                sock.close()
        if spec.expect in reply:
            return Outcome(Verdict.UP, f"reply of {len(reply)} bytes")
        return Outcome(Verdict.DOWN, f"unexpected reply: {printable(reply, REPLY_CUT)}")

    @staticmethod
    async def _udp_socket(host: str, port: int) -> socket.socket:
        """A non-blocking UDP socket connected to the first of the host's addresses that takes it."""
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, address in await resolve(host, port, socket.SOCK_DGRAM):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.connect(address)   # a datagram connect sends nothing: it only fixes the peer
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error

    async def _session(self) -> aiohttp.ClientSession:
        """The shared HTTP session. Loading aiohttp and the system's certificates takes long
        enough to stall the event loop, so that part runs once in a worker thread."""
        if self._http is None:
            self._http = asyncio.create_task(self._make_session())
            self._http.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(self._http)   # a check that times out leaves it to the next

    @staticmethod
    async def _make_session() -> aiohttp.ClientSession:
        context = await asyncio.to_thread(load_http_client)
        return make_http_session(context)

    async def _http_get(self, spec: CheckSpec, timeout: float) -> Outcome:
        # A bound on real I/O, like every check's timeout: on the loop's clock, which real
        # sockets and threads keep pace with; the injected clock only dates the scans.
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                session = await self._session()
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
        except (ImportError, OSError) as exc:   # no aiohttp, or no certificates: no HTTP check can run here
            self._http = None
            return Outcome(Verdict.ERROR, cut(f"cannot make an HTTP client: {exc}", OUTPUT_CUT))
        import aiohttp  # loaded by now, with the session

        try:
            async with asyncio.timeout_at(deadline):
                async with session.get(spec.url, allow_redirects=False) as response:
                    status = response.status    # the body is never read: only the status matters
        except TimeoutError:
            return Outcome(Verdict.DOWN, f"no answer within {millis(timeout)}", timed_out=True)
        except aiohttp.ClientConnectorDNSError:
            return Outcome(Verdict.ERROR, f"cannot resolve {spec.host}")
        except aiohttp.InvalidURL as exc:
            return Outcome(Verdict.ERROR, cut(f"invalid URL: {exc}", OUTPUT_CUT))
        except aiohttp.ClientConnectorError as exc:
            return Outcome(Verdict.DOWN, f"cannot connect: {cut(connect_reason(exc), OUTPUT_CUT)}")
        except aiohttp.ClientError as exc:
            return Outcome(Verdict.DOWN, cut(f"{type(exc).__name__}: {exc}", OUTPUT_CUT))
        verdict = Verdict.UP if spec.accepts_status(status) else Verdict.DOWN
        return Outcome(verdict, f"HTTP {status}")


async def resolve(host: str, port: int, kind: int) -> list[tuple[int, int, int, Any]]:
    """(family, type, protocol, address) of each of the host's addresses. A numeric address
    is read on the spot; only a name goes to the resolver (a worker thread)."""
    numeric = numeric_address(host, port, kind)
    if numeric is not None:
        return numeric
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    return [(family, socktype, proto, address) for family, socktype, proto, _, address in infos]


@functools.lru_cache(maxsize=4096)
def numeric_address(host: str, port: int, kind: int) -> list[tuple[int, int, int, Any]] | None:
    """The address of a numeric host (remembered: it cannot change), None for a name."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None
    return [(family, socktype, proto, address) for family, socktype, proto, _, address in infos]


def connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection failed, without aiohttp's 'Cannot connect to host ...' preamble."""
    cause = getattr(exc, "certificate_error", None) or exc.os_error
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"{cause.reason}: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return cause.strerror or str(cause) or type(cause).__name__


def load_http_client() -> ssl.SSLContext:
    """Blocking, for a worker thread: imports aiohttp (only a daemon with HTTP checks pays for
    it) and reads the system's certificate store, where a site's own CA is installed."""
    import aiohttp  # noqa: F401  - the import is the slow part

    return ssl.create_default_context()


def make_http_session(context: ssl.SSLContext) -> aiohttp.ClientSession:
    """The HTTP checks' session, made on the event loop.

    No keep-alive: every check opens a fresh connection, so a restarted server is really
    reached. No redirects followed (per request): a 3xx is the service's own answer. No
    proxy from the daemon's environment answers for the service. No DNS cache: a name is
    looked up at every check, as for TCP and UDP checks."""
    import aiohttp

    connector = aiohttp.TCPConnector(force_close=True, use_dns_cache=False, ssl=context)
    return aiohttp.ClientSession(connector=connector, trust_env=False,
                                 headers={"User-Agent": "haoscar-snmp service check"})


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
