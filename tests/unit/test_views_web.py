"""The web panel over aiohttp's test client: login and its throttle, sessions and their
expiry, CSRF and Origin checks, roles, security headers, and writes that go through the
configuration store exactly as a SET does (the same refusals, the same audit)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from fakes import FakeClock

from fcaps.configuration.mibmap import CONFIG_MAP
from fcaps.configuration.store import ConfigStore
from haoscar_snmp.config.schema import WebConfig, WebUserInline
from haoscar_snmp.config.webusers import UsersFileError, hash_password, parse_users, render_users, verify_password
from haoscar_snmp.config.webusers import WebUser as User
from haoscar_snmp.core.events import EventBus, EventType
from haoscar_snmp.core.state import State
from haoscar_snmp.snmp.mib import MibModel
from haoscar_snmp.views.metrics import MetricsPage
from haoscar_snmp.views.source import SnapshotSource
from haoscar_snmp.views.web.live import fingerprint
from haoscar_snmp.views.web.server import WebPanel
from haoscar_snmp.views.web.sessions import Sessions
from haoscar_snmp.views.web.throttle import BURST, PERIOD_S, LoginThrottle
from haoscar_snmp.views.web.writes import WebWrites

CHEAP = 10     # log2 N of the test users' hashes: a login costs a millisecond, not 0.1 s
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}


class World:
    def __init__(self, tmp_path: Path, mib: MibModel, **web: Any) -> None:
        self.clock = FakeClock()
        self.state = State()
        self.bus = EventBus()
        self.events: list[Any] = []
        self.bus.subscribe("test", self.events.append)
        self.store = ConfigStore(None, tmp_path, self.state, self.bus, self.clock)
        users = (WebUserInline(name="alice", role="write", password_hash=hash_password(PASSWORDS["alice"], log2_n=CHEAP)),
                 WebUserInline(name="bob", role="read", password_hash=hash_password(PASSWORDS["bob"], log2_n=CHEAP)))
        config = self.store.current().model_copy(update={"web": WebConfig(enabled=True, users=users, **web)})
        self.writes = WebWrites(self.store, CONFIG_MAP, lambda name: mib[name].oid, self.state)
        self.panel = WebPanel(config, self.store.current, self.writes,
                              SnapshotSource(self.state, self.store.current, self.clock), self.clock,
                              MetricsPage(self.state, self.store.current, self.clock, mib).handle)


Test = Callable[[World, TestClient], Awaitable[None]]


def run(tmp_path: Path, mib: MibModel, test: Test, **web: Any) -> None:
    async def main() -> None:
        world = World(tmp_path, mib, **web)
        client = TestClient(TestServer(world.panel.app))
        await client.start_server()
        try:
            await test(world, client)
        finally:
            await client.close()
    asyncio.run(asyncio.wait_for(main(), 60))


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("/")).rstrip("/")}


async def login(client: TestClient, user: str, password: str | None = None) -> Any:
    return await client.post("/login", data={"user": user, "password": password or PASSWORDS[user]},
                             headers=origin(client), allow_redirects=False)


async def csrf(client: TestClient) -> str:
    text = await (await client.get("/config")).text()
    match = re.search(r'name="csrf" value="([^"]+)"', text)
    assert match, text[:500]
    return match[1]


async def post(client: TestClient, path: str, data: dict[str, str], token: str | None) -> Any:
    form = dict(data, **({"csrf": token} if token is not None else {}))
    return await client.post(path, data=form, headers=origin(client), allow_redirects=False)


async def flash(client: TestClient) -> str:
    text = await (await client.get("/config")).text()
    match = re.search(r'<p id="flash" class="(ok|error)">([^<]*)</p>', text)
    assert match, "no message on the configuration page"
    return f"{match[1]}: {match[2]}"


# -- users file and hashes -------------------------------------------------------------

def test_hashes_are_salted_and_verified() -> None:
    one, two = hash_password("same password", log2_n=CHEAP), hash_password("same password", log2_n=CHEAP)
    assert one != two and one.startswith("scrypt$10$8$1$")
    assert verify_password("same password", one) and not verify_password("other password", one)
    assert not verify_password("x", "not a hash")


def test_users_file_round_trip_and_bad_lines() -> None:
    users = (User("alice", "write", hash_password("pw-alice-123", log2_n=CHEAP)),)
    assert parse_users(render_users(users, "header")) == users
    for bad, why in (("alice:admin:x", "role must be"), ("al ice:read:x", "user name"), ("alice:read", "name:role:hash"),
                     ("alice:read:scrypt$40$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "cost")):
        with pytest.raises(UsersFileError, match=why):
            parse_users(bad)
    with pytest.raises(UsersFileError, match="twice"):
        parse_users(render_users(users + users))


def test_web_config_refuses_unsafe_settings() -> None:
    user = WebUserInline(name="a", role="read", password_hash=hash_password("0123456789", log2_n=CHEAP))
    with pytest.raises(ValueError, match="beyond loopback without TLS"):
        WebConfig(enabled=True, listen="0.0.0.0:16180", users=(user,))
    with pytest.raises(ValueError, match="go together"):
        WebConfig(tls_cert_file="/etc/x.crt")
    with pytest.raises(ValueError, match="without users"):
        WebConfig(enabled=True)
    assert WebConfig().listen.host == "127.0.0.1" and not WebConfig().enabled


# -- login, sessions, throttle ---------------------------------------------------------

def test_no_anonymous_access_and_login(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        page = await client.get("/", allow_redirects=False)
        assert page.status == 303 and page.headers["Location"] == "/login"
        assert (await client.get("/state.json")).status == 401
        assert (await client.get("/live")).status == 401
        wrong = await login(client, "alice", "wrong-password")
        assert wrong.status == 401 and "Wrong user name or password" in await wrong.text()
        unknown = await login(client, "mallory", "whatever-password")
        assert unknown.status == 401
        ok = await login(client, "alice")
        assert ok.status == 303
        cookie = ok.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        state = await (await client.get("/state.json")).json()
        assert state["cluster"]["name"] == "demo"
        out = await post(client, "/logout", {}, await csrf(client))
        assert out.status == 303
        assert (await client.get("/state.json")).status == 401
    run(tmp_path, mib, test)


def test_login_is_throttled_per_name_and_per_address(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        for _ in range(BURST):
            assert (await login(client, "alice", "wrong-password")).status == 401
        refused = await login(client, "alice")           # the right password, too soon
        assert refused.status == 429 and "Too many failed logins" in await refused.text()
        world.clock.advance(PERIOD_S)
        assert (await login(client, "alice")).status == 303
    run(tmp_path, mib, test)


def test_throttle_memory_is_bounded() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, max_keys=100)
    for i in range(1000):
        throttle.failed(f"192.0.2.{i}", f"user{i}")
    assert len(throttle.addresses) == 100 and len(throttle.names) == 100
    for _ in range(BURST):
        throttle.failed("198.51.100.1", "x")
    assert not throttle.allowed("198.51.100.1", "y") and not throttle.allowed("198.51.100.2", "x")
    assert throttle.allowed("198.51.100.2", "y")


def test_sessions_expire_when_idle_and_at_their_age_and_are_bounded() -> None:
    clock = FakeClock()
    sessions = Sessions(clock, idle_s=60, max_s=300, max_sessions=3)
    one = sessions.create("alice", "write")
    clock.advance(59)
    assert sessions.get(one.id) is one
    clock.advance(61)
    assert sessions.get(one.id) is None                  # idle too long
    two = sessions.create("alice", "write")
    for _ in range(6):
        clock.advance(50)
        sessions.get(two.id)
    assert sessions.get(two.id) is None                  # 300 s after the login, used or not
    many = [sessions.create("bob", "read") for _ in range(5)]
    assert len(sessions) == 3 and sessions.get(many[0].id) is None and sessions.get(many[-1].id) is not None


def test_session_ends_when_its_user_is_gone(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "bob")
        assert (await client.get("/state.json")).status == 200
        world.panel.users.inline = tuple(u for u in world.panel.users.inline if u.name != "bob")
        assert (await client.get("/state.json")).status == 401
    run(tmp_path, mib, test)


# -- headers, CSRF, Origin, roles ------------------------------------------------------

def test_security_headers(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        for path in ("/login", "/static/panel.js"):
            answer = await client.get(path)
            assert answer.status == 200
            csp = answer.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert answer.headers["X-Frame-Options"] == "DENY"
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
        await login(client, "alice")
        for path in ("/", "/config", "/state.json"):
            answer = await client.get(path)
            assert answer.headers["Cache-Control"] == "no-store"
        html = await (await client.get("/")).text()
        assert "<script>" not in html and "style=" not in html and "http" not in html.replace("http-equiv", "")
    run(tmp_path, mib, test)


def test_every_post_needs_the_origin_and_the_csrf_token(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "alice")
        token = await csrf(client)
        form = {"heartbeat_interval_ms": "1000", "csrf": token}
        no_origin = await client.post("/config/timing", data=form, allow_redirects=False)
        assert no_origin.status == 403 and "Origin" in await no_origin.text()
        elsewhere = await client.post("/config/timing", data=form, headers={"Origin": "https://evil.example"},
                                      allow_redirects=False)
        assert elsewhere.status == 403
        assert (await post(client, "/config/timing", {"heartbeat_interval_ms": "1000"}, None)).status == 403
        assert (await post(client, "/config/timing", {"heartbeat_interval_ms": "1000"}, "forged")).status == 403
        assert world.store.current().timing.heartbeat_interval_ms == 5000      # nothing changed
        assert (await post(client, "/config/timing", {"heartbeat_interval_ms": "1000"}, token)).status == 303
        assert world.store.current().timing.heartbeat_interval_ms == 1000
    run(tmp_path, mib, test)


def test_a_read_only_user_sees_no_write_control_and_gets_403(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "bob")
        page = await (await client.get("/config")).text()
        assert 'action="/config/' not in page and "Switchover" not in page
        token = re.search(r'name="csrf" value="([^"]+)"', page)[1]              # the logout form's
        answer = await post(client, "/config/timing", {"heartbeat_interval_ms": "1000"}, token)
        assert answer.status == 403 and "may only read" in await answer.text()
        answer = await post(client, "/config/action", {"action": "reset_counters"}, token)
        assert answer.status == 403
        assert world.store.current().timing.heartbeat_interval_ms == 5000
    run(tmp_path, mib, test)


# -- writes through the store ----------------------------------------------------------

def test_a_service_created_changed_suspended_and_deleted(tmp_path: Path, mib: MibModel,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "alice")
        token = await csrf(client)
        with caplog.at_level(logging.INFO, logger="haoscar_snmp.audit"):
            answer = await post(client, "/config/services", {"name": "web-made", "check": "true",
                                                             "interval_ms": "2000", "_bools": "enabled",
                                                             "enabled": "on"}, token)
            assert answer.status == 303
        assert await flash(client) == "ok: services row 3 created"
        row = next(s for s in world.store.current().services if s.name == "web-made")
        assert (row.index, row.interval_ms, row.enabled) == (3, 2000, True)
        assert world.state.services[(3,)].name == "web-made"
        assert "SET by web:alice: haoscarServiceName.3 changed from '' to 'web-made'" in caplog.text
        changed = [e for e in world.events if e.type == EventType.CONFIG_CHANGED]
        assert changed and changed[0].data["principal"] == "web:alice"
        assert changed[0].data["oid"] == mib["haoscarServiceRowStatus"].oid + (3,)
        await post(client, "/config/services/3", {"interval_ms": "3000"}, token)
        assert next(s for s in world.store.current().services if s.index == 3).interval_ms == 3000
        await post(client, "/config/services/3/status", {"status": "notInService"}, token)
        assert await flash(client) == "ok: services row 3 suspended"
        assert str(next(s for s in world.store.current().services if s.index == 3).row_status.label) == "notInService"
        await post(client, "/config/services/3/status", {"status": "destroy"}, token)
        assert all(s.index != 3 for s in world.store.current().services)
        await post(client, "/config/services/1/status", {"status": "destroy"}, token)    # a row of the file
        assert all(s.index != 1 for s in world.store.current().services)
        assert world.store.overrides()["services"]["1"] == {"deleted": True}
    run(tmp_path, mib, test)


def test_an_alias_created_changed_refused_suspended_and_deleted(tmp_path: Path, mib: MibModel,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "alice")
        token = await csrf(client)
        with caplog.at_level(logging.INFO, logger="haoscar_snmp.audit"):
            answer = await post(client, "/config/aliases", {"address": "192.0.2.80", "prefix_length": "24",
                                                            "interface": "eth9"}, token)
            assert answer.status == 303
        message = await flash(client)
        assert message.startswith("ok: aliases row ") and message.endswith(" created"), message
        row = next(a for a in world.store.current().aliases if str(a.address) == "192.0.2.80")
        assert (row.prefix_length, row.interface) == (24, "eth9")
        assert f"SET by web:alice: haoscarAliasAddress.{row.index} changed" in caplog.text
        await post(client, f"/config/aliases/{row.index}", {"prefix_length": "25"}, token)
        assert next(a for a in world.store.current().aliases if a.index == row.index).prefix_length == 25
        await post(client, f"/config/aliases/{row.index}", {"address": "not-an-address"}, token)
        assert (await flash(client)).startswith("error: Refused: ")
        assert str(next(a for a in world.store.current().aliases if a.index == row.index).address) == "192.0.2.80"
        await post(client, f"/config/aliases/{row.index}/status", {"status": "notInService"}, token)
        assert await flash(client) == f"ok: aliases row {row.index} suspended"
        await post(client, f"/config/aliases/{row.index}/status", {"status": "destroy"}, token)
        assert all(a.index != row.index for a in world.store.current().aliases)
    run(tmp_path, mib, test)


def test_refusals_say_what_the_store_says_and_are_audited(tmp_path: Path, mib: MibModel,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "alice")
        token = await csrf(client)
        problems = world.store.check({"services": {"3": {"name": "x", "check": "true", "interval_ms": 50}}})
        assert problems
        with caplog.at_level(logging.WARNING, logger="haoscar_snmp.audit"):
            await post(client, "/config/services", {"name": "fast", "check": "true", "interval_ms": "50"}, token)
        message = await flash(client)
        assert message.startswith("error: Refused: ") and "must be 0 (the [timing] default) or 100..3600000" in message
        assert all(s.name != "fast" for s in world.store.current().services)
        assert "SET by web:alice refused with inconsistentValue" in caplog.text
        assert [e for e in world.events if e.type == EventType.SET_REFUSED]
        await post(client, "/config/timing", {"heartbeat_interval_ms": "soon"}, token)
        assert "is not a whole number" in await flash(client)
        await post(client, "/config/timing", {"heartbeat_interval_ms": "10000", "heartbeat_dead_time_ms": "15000"},
                   token)
        assert "heartbeat_dead_time_ms" in await flash(client)                   # the store's cross-field rule
        assert world.store.current().timing.heartbeat_interval_ms == 5000
        await post(client, "/config/services", {"name": "always-healthy", "check": "true"}, token)
        assert "duplicate" in await flash(client)
    run(tmp_path, mib, test)


def test_operator_actions_go_to_the_actions_layer(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        seen: list[tuple[Any, str]] = []
        world.store.on_request.append(lambda action, who: seen.append((action, who)))
        await login(client, "alice")
        token = await csrf(client)
        await post(client, "/config/action", {"action": "reset_service", "service_index": "2"}, token)
        assert [(getattr(a, "name", a), who) for a, who in seen] == [("SELECT_SERVICE_2", "web:alice"),
                                                                    ("RESET_SERVICE", "web:alice")]
        await post(client, "/config/action", {"action": "reboot"}, token)
        assert "is not an operator action" in await flash(client)
    run(tmp_path, mib, test)


def test_live_feed_pushes_the_snapshot(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        await login(client, "alice")
        world.panel.live.start()
        try:
            stream = await client.get("/live")
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 10)
            assert b'"schema":1' in first
            world.state.services[(1,)].name = "renamed"           # as a writer would, then its event
            world.panel.live.on_event(world.events[0] if world.events else None)
            for _ in range(20):
                world.clock.advance(0.5)
                await asyncio.sleep(0.01)
            pushed = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 10)
            assert b'"renamed"' in pushed
            stream.close()
        finally:
            await world.panel.live.stop()
    run(tmp_path, mib, test, max_live_clients=1)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_metrics_ask_for_basic_authentication_by_default(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        anonymous = await client.get("/metrics")
        assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic ")
        assert (await client.get("/metrics", headers=basic("bob", "wrong-password"))).status == 401
        for _ in range(3):                          # the second and third from the cache
            scrape = await client.get("/metrics", headers=basic("bob", PASSWORDS["bob"]))
            assert scrape.status == 200 and "haoscar_" in await scrape.text()
        world.panel.users.inline = ()               # a removed user's cached credential ends
        assert (await client.get("/metrics", headers=basic("bob", PASSWORDS["bob"]))).status == 401
    run(tmp_path, mib, test)


def test_metrics_open_only_when_configured(tmp_path: Path, mib: MibModel) -> None:
    async def test(world: World, client: TestClient) -> None:
        assert (await client.get("/metrics")).status == 200
        assert (await client.get("/state.json")).status == 401       # the rest still needs a login
    run(tmp_path, mib, test, metrics_auth="none")


def test_fingerprint_ignores_moving_times() -> None:
    one = {"generated": {"at": "a"}, "x": [{"ago_s": 1.0, "v": 1}], "uptime_s": 3}
    two = {"generated": {"at": "b"}, "x": [{"ago_s": 9.0, "v": 1}], "uptime_s": 4}
    assert fingerprint(one) == fingerprint(two) != fingerprint({**two, "x": [{"v": 2}]})


def self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "web.crt", directory / "web.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


def test_tls_listener_with_secure_host_cookie(tmp_path: Path, mib: MibModel) -> None:
    import socket
    import ssl

    import aiohttp

    cert_file, key_file = self_signed(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        world = World(tmp_path / "state", mib, listen=f"127.0.0.1:{port}", tls_cert_file=str(cert_file),
                      tls_key_file=str(key_file))
        url = await world.panel.start()
        assert url == f"https://127.0.0.1:{port}/"
        context = ssl.create_default_context(cafile=str(cert_file))
        context.check_hostname = False
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                answer = await http.post(url + "login", data={"user": "alice", "password": PASSWORDS["alice"]},
                                         headers={"Origin": url.rstrip("/")}, ssl=context, allow_redirects=False)
                assert answer.status == 303
                cookie = answer.headers["Set-Cookie"]
                assert cookie.startswith("__Host-haoscar=") and "Secure" in cookie and "HttpOnly" in cookie
                assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
        finally:
            await world.panel.stop()
    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_loader_refuses_a_readable_tls_key_and_users_file(tmp_path: Path) -> None:
    from haoscar_snmp.config.errors import ConfigError
    from haoscar_snmp.config.loader import parse_config, read_embedded_default

    cert_file, key_file = self_signed(tmp_path)
    users = tmp_path / "web.users"
    users.write_text(render_users((User("alice", "write", hash_password("alice-password", log2_n=CHEAP)),)))
    users.chmod(0o644)
    key_file.chmod(0o640)
    text = read_embedded_default().replace('listen = "127.0.0.1:16180"    # loopback', f"""users_file = "{users}"
tls_cert_file = "{cert_file}"
tls_key_file = "{key_file}"
listen = "127.0.0.1:16180"  #""")
    with pytest.raises(ConfigError) as error:
        parse_config(text, label="x", base_dir=tmp_path, environ={"HOME": str(tmp_path)})
    keys = {p.key: p.message for p in error.value.problems}
    assert "mode 0640" in keys["web.tls_key_file"] and "mode 0644" in keys["web.users_file"]
    users.chmod(0o600)
    key_file.chmod(0o600)
    config = parse_config(text, label="x", base_dir=tmp_path, environ={"HOME": str(tmp_path)})
    assert [u.name for u in config.web.all_users()] == ["webdemo", "alice"]


def test_the_users_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    from haoscar_snmp.views.web.users import UserTable

    users = tmp_path / "web.users"
    alice = User("alice", "write", hash_password("alice-password", log2_n=CHEAP))
    users.write_text(render_users((alice,)))
    users.chmod(0o600)

    async def main() -> None:
        table = UserTable((), (alice,), users, FakeClock())
        assert await table.authenticate("alice", "alice-password") == alice
        carol = User("carol", "read", hash_password("carol-password", log2_n=CHEAP))
        users.write_text(render_users((carol,)))       # alice removed, carol added
        assert await table.authenticate("carol", "carol-password") == carol
        assert table.get("alice") is None
        users.chmod(0o644)                             # no longer a secret file: nobody from it
        users.write_text(render_users((carol,)) + "\n")
        assert await table.authenticate("carol", "carol-password") is None
    asyncio.run(asyncio.wait_for(main(), 30))
