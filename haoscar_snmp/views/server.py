"""The local status socket: `GET /status` answers the snapshot as JSON, and `GET /metrics`
the metrics page (metrics.py), on a unix socket in the state directory
(`<state_dir>/status.sock`): `curl --unix-socket <state_dir>/status.sock http://-/metrics`.

Rules:

* no network: a unix socket only, mode 0600 in a 0700 directory, so only the daemon's
  user (and root) can read it; `haoscar-snmp status` is its client;
* a stale socket left by a daemon that died is replaced: the state directory's lock,
  taken before this starts, proves no other daemon uses the directory;
* a request reads the state on the event loop, like an SNMP request does, in slices
  that give the loop back every millisecond or so (slices.py); concurrent requests share
  the render under way (bench/bench_views.py);
* bad input (`?events=x`) gets a 400 with the reason and changes nothing;
* HTTP/1.1 as far as these two pages need it, on asyncio's unix server (not aiohttp,
  which a daemon without the web panel would otherwise load for this alone: 11 MiB,
  bench/bench_memory.py): GET or HEAD, one request per connection (`Connection: close`),
  a request head of at most 8 KiB read within 10 s, else 400 (or 408) and the
  connection closes; another method gets 405, another path 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.clock import Clock
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.metrics import OPENMETRICS_TYPE, MetricsPage, wants_openmetrics
from haoscar_snmp.views.metrics import TEXT_TYPE as METRICS_TEXT_TYPE
from haoscar_snmp.views.snapshot import DEFAULT_EVENTS, MAX_EVENTS
from haoscar_snmp.views.source import SnapshotSource

log = logging.getLogger(__name__)

STATUS_SOCKET = "status.sock"
SOCKET_MODE = 0o600
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
MAX_HEAD = 8192          # bytes of request line and headers
READ_TIMEOUT_S = 10.0    # to receive them
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 500: "Internal Server Error"}


class BadRequest(Exception):
    """A request this server does not take; the answer says why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and headers (names lower-cased; the first of a repeated one) of a
    request head without its final blank line; BadRequest when it is not HTTP/1.x."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise BadRequest(400, "not an HTTP/1.x request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        headers.setdefault(name.lower(), value.strip())
    return parts[0], parts[1], headers


class StatusServer:
    """Serves the snapshot (and the metrics) on `path` while started. `config` gives the
    effective configuration at each request (a reload changes it); `mib` the loaded MIB
    (the daemon's), for the metrics' HELP text."""

    def __init__(self, path: Path, state: State, config: Callable[[], Config], clock: Clock,
                 mib: MibModel | None = None) -> None:
        self.path = path
        self.state = state
        self.config = config
        self.clock = clock
        self.metrics = MetricsPage(state, config, clock, mib)
        self.source = SnapshotSource(state, config, clock)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen; raises OSError when the socket cannot be made (e.g. a path too long)."""
        self._remove_stale()
        server = await asyncio.start_unix_server(self._connection, path=str(self.path), limit=MAX_HEAD)
        try:
            os.chmod(self.path, SOCKET_MODE)
        except BaseException:
            server.close()
            raise
        self._server = server
        log.info("status: serving the snapshot on %s (haoscar-snmp status)", self.path)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):   # a client still connected does not hold the stop
            writer.close()
        await server.wait_closed()
        self._remove_stale()

    def _remove_stale(self) -> None:
        try:
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request, one answer, then the connection closes."""
        self._writers.add(writer)
        method = "GET"
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
                method, target, headers = parse_head(head[:-4])
                status, body, content_type = await self.answer(method, target, headers)
            except asyncio.TimeoutError:
                status, body, content_type = 408, b"request head not received in time\n", TEXT_TYPE
            except asyncio.LimitOverrunError:
                status, body, content_type = 400, b"request head too long\n", TEXT_TYPE
            except asyncio.IncompleteReadError:
                return                                        # the client went away
            except BadRequest as exc:
                status, body, content_type = exc.status, f"{exc}\n".encode(), TEXT_TYPE
            except Exception:   # a fault in rendering: the client hears it, the log has the trace
                log.exception("status: cannot answer %s", self.path)
                status, body, content_type = 500, b"500: Internal Server Error\n", TEXT_TYPE
            extra = "Allow: GET, HEAD\r\n" if status == 405 else ""
            writer.write(f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n".encode())
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def answer(self, method: str, target: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
        """Status, body and Content-Type for one request (read on the loop, as SNMP is)."""
        url = urlsplit(target)
        if url.path not in ("/status", "/metrics"):
            return 404, b"404: Not Found\n", TEXT_TYPE
        if method not in ("GET", "HEAD"):
            return 405, b"405: Method Not Allowed\n", TEXT_TYPE
        if url.path == "/metrics":
            om = wants_openmetrics(headers.get("accept", ""))
            return 200, await self.metrics.body(om), OPENMETRICS_TYPE if om else METRICS_TEXT_TYPE
        text = parse_qs(url.query, keep_blank_values=True).get("events", [str(DEFAULT_EVENTS)])[0]
        if not text.isdigit() or int(text) > MAX_EVENTS:
            error = {"error": f"events must be a whole number 0..{MAX_EVENTS}, not {text!r}"}
            return 400, json.dumps(error).encode(), JSON_TYPE
        return 200, (await self.source.json(int(text))).encode(), JSON_TYPE
