"""`haoscar-snmp status`: rendering (plain and colour), colour rules, exit codes, the
socket client against a real status server on a unix socket, --watch."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import pytest
from fakes import FakeClock
from views_world import NOW, alarm, config, healthy

from haoscar_snmp.__main__ import main
from haoscar_snmp.core.events import Severity
from haoscar_snmp.core.state import AliasStatus, ServiceRow, ServiceStatus
from haoscar_snmp.views import console
from haoscar_snmp.views.server import StatusServer
from haoscar_snmp.views.snapshot import snapshot


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def world(tmp_path: Path):
    cfg = config(tmp_path)
    return cfg, healthy(cfg)


def snap(world):
    cfg, state = world
    return snapshot(state, cfg, FakeClock(start=NOW), events=10)


def test_plain_rendering_shows_every_part(world) -> None:
    text = console.render(snap(world))
    assert "\x1b[" not in text
    text = " ".join(text.split())
    for words in ("cluster views status normal health OK", "this head head1: active", "head2", "standby",
                  "lanA up rtt 0.42 ms jitter 0.04 ms loss 0.20%", "pbs", "rung watching",
                  "10.72.0.50/24 on pub", "holder head1", "active alarms (0)", "last events (4)",
                  "configuration standalone", "failovers 2", "cluster over 30d: 99.9999% MTTR 12s MTBF 2h00m",
                  "cluster views 24h 99.9990% 30d 99.9999%"):
        assert words in text, words


def test_colour_marks_states_and_health(world) -> None:
    cfg, state = world
    alarm(state, Severity.CRITICAL)
    text = console.render(snap(world), colour=True)
    assert "\x1b[1;31mFAILED\x1b[0m" in text
    assert "\x1b[32mrunning\x1b[0m" in text and "\x1b[1;31mcritical\x1b[0m" in text


def test_reasons_and_a_missing_holder_are_shown(world) -> None:
    cfg, state = world
    state.aliases[(1,)].status = AliasStatus.RELEASED
    text = console.render(snap(world))
    assert "health FAILED" in text and "failed: 1 alias held by no head: 10.72.0.50" in text
    assert "holder none" in text


def test_long_tables_list_only_the_rows_not_well(world) -> None:
    cfg, state = world
    for i in range(3, 40):
        state.services.put((i,), ServiceRow(f"svc{i}", "x", status=ServiceStatus.RUNNING))
    state.services[(7,)].status = ServiceStatus.FAILED
    text = console.render(snap(world))
    assert "services (39)" in text and "svc7" in text and "svc8 " not in text
    assert "... 38 more (all well): --json lists every row" in text


@pytest.mark.parametrize("tty, env, flag, on", [
    (True, {}, False, True), (False, {}, False, False), (True, {"NO_COLOR": ""}, False, False),
    (True, {"NO_COLOR": "1"}, False, False), (True, {}, True, False),
])
def test_colour_only_on_a_terminal_without_no_color(tty, env, flag, on) -> None:
    stream = Tty() if tty else io.StringIO()
    assert console.use_colour(stream, flag, env) is on


def test_duration_words() -> None:
    assert [console.duration(s) for s in (5, 312, 7380, 360000)] == ["5s", "5m12s", "2h03m", "4d04h"]


class Served:
    """A real StatusServer on a unix socket, its loop in a thread (the CLI is synchronous)."""

    def __init__(self, path: Path, world) -> None:
        cfg, state = world
        self.server = StatusServer(path, state, lambda: cfg, FakeClock(start=NOW))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "Served":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_the_socket_is_owner_only_and_removed_at_stop(tmp_path: Path, world) -> None:
    path = tmp_path / "status.sock"
    with Served(path, world):
        assert path.stat().st_mode & 0o777 == 0o600
        got = console.fetch(path)
        assert got["cluster"]["name"] == "views" and len(got["events"]) == 4
    assert not path.exists()


def test_a_stale_socket_is_replaced(tmp_path: Path, world) -> None:
    import socket
    path = tmp_path / "status.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    with Served(path, world):
        assert console.fetch(path)["schema"] == 1


def test_bad_query_is_refused(tmp_path: Path, world) -> None:
    path = tmp_path / "status.sock"
    with Served(path, world):
        conn = console.UnixHTTPConnection(path, 5)
        conn.request("GET", "/status?events=nine")
        response = conn.getresponse()
        assert response.status == 400 and b"events must be a whole number" in response.read()
        conn.close()


def exchange(path: Path, data: bytes) -> bytes:
    """Send raw bytes to the status socket; all it answers before it closes."""
    import socket
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_the_server_speaks_enough_http_and_refuses_the_rest(tmp_path: Path, world) -> None:
    path = tmp_path / "status.sock"
    with Served(path, world):
        got = exchange(path, b"GET /status?events=2 HTTP/1.1\r\nHost: -\r\n\r\n")
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in head
        assert b"Content-Type: application/json; charset=utf-8" in head
        assert f"Content-Length: {len(body)}".encode() in head and body.startswith(b'{"schema":1')
        head_only = exchange(path, b"HEAD /status HTTP/1.1\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.1 200 OK") and head_only.endswith(b"\r\n\r\n")
        metrics = exchange(path, b"GET /metrics HTTP/1.1\r\nACCEPT: text/plain\r\n\r\n")
        assert b"Content-Type: text/plain; version=0.0.4" in metrics and b"# EOF" not in metrics
        assert exchange(path, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 ")
        refused = exchange(path, b"POST /status HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in refused
        assert exchange(path, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        long_head = b"GET /status HTTP/1.1\r\nX: " + b"x" * 9000 + b"\r\n\r\n"
        assert exchange(path, long_head).startswith(b"HTTP/1.1 400 ")
        assert console.fetch(path)["schema"] == 1     # and it still serves


@pytest.mark.parametrize("change, code", [
    (lambda s: None, 0),
    (lambda s: alarm(s, Severity.MAJOR), 1),
    (lambda s: alarm(s, Severity.CRITICAL), 2),
])
def test_the_command_exits_with_the_health(tmp_path: Path, world, change, code, capsys) -> None:
    change(world[1])
    with Served(tmp_path / "status.sock", world):
        assert main(["status", "--state-dir", str(tmp_path)]) == code
        assert main(["status", "--state-dir", str(tmp_path), "--json"]) == code
    out = capsys.readouterr().out
    assert "cluster views" in out and '"schema": 1' in out


def test_no_daemon_is_unknown_and_says_which_socket(tmp_path: Path, capsys) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert f"UNKNOWN: {tmp_path / 'status.sock'} does not exist: the daemon is not running" in err


def test_a_dead_socket_is_unknown(tmp_path: Path, capsys) -> None:
    import socket
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "status.sock"))      # bound, never listening: connection refused
    try:
        assert main(["status", "--state-dir", str(tmp_path)]) == 3
    finally:
        sock.close()
    assert "nothing answers on" in capsys.readouterr().err


def test_watch_bounds(tmp_path: Path, capsys) -> None:
    assert main(["status", "--state-dir", str(tmp_path), "--watch", "0.1"]) == 3
    assert "--watch must be 0.5..3600 seconds" in capsys.readouterr().err


def test_watch_redraws_in_place_on_a_terminal(tmp_path: Path, world) -> None:
    path = tmp_path / "status.sock"
    stream, sleeps = Tty(), []
    with Served(path, world):
        code = console.watch(path, 2.0, False, False, stream=stream, sleep=sleeps.append, rounds=3)
    out = stream.getvalue()
    assert code == 0 and sleeps == [2.0, 2.0]
    assert out.startswith("\x1b[?25l\x1b[2J") and out.endswith("\x1b[?25h")
    assert out.count("\x1b[H") == 3 and out.count("\x1b[2J") == 1      # cleared once: no flicker
    assert "every 2s" in out and "\x1b[K" in out


def test_watch_stops_on_ctrl_c_and_keeps_the_last_code(tmp_path: Path) -> None:
    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    stream = io.StringIO()
    code = console.watch(tmp_path / "status.sock", 1.0, False, False, stream=stream, sleep=interrupt)
    assert code == 3 and "UNKNOWN" in stream.getvalue() and "\x1b[" not in stream.getvalue()


def test_an_event_text_that_names_its_subject_is_not_prefixed_twice() -> None:
    from haoscar_snmp.views.console import _event_text

    assert _event_text({"subject": "head1", "text": "head1: starting -> active"}) == "head1: starting -> active"
    assert _event_text({"subject": "web", "text": "service web down"}) == "web: service web down"
    assert _event_text({"subject": "", "text": "agent started"}) == "agent started"
