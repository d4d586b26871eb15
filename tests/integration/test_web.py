"""The web panel in a real browser against the real daemon: log in, read the state, see
it change live, create a service, see a refused value's reason, and find the created
service in the MIB with snmpget. One daemon and one browser for the module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from haoscar_snmp.core.bug import BUG_MARKER

from .browser import chromium, free_tcp_port, log_in
from .harness import REPO, R, Agent, free_udp_port

WRITER, WRITER_PASSWORD = "operator", "operator-password-1"
READER, READER_PASSWORD = "watcher", "watcher-password-2"
SERVICE_NAME_COLUMN = f"{R}.1.8.1.2"     # haoscarServiceName
SCREENSHOTS = os.environ.get("WEB_SCREENSHOTS")   # a directory: the docs' screenshots are taken there


def web_user(path: Path, name: str, password: str, role: str) -> str:
    done = subprocess.run([sys.executable, "-m", "haoscar_snmp", "web-user", str(path), name, "--role", role,
                           "--password-stdin"], input=password + "\n", capture_output=True, text=True,
                          timeout=30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agent, str]]:
    workdir = tmp_path_factory.mktemp("web")
    (workdir / "secrets").mkdir(mode=0o700)
    users = workdir / "secrets" / "web.users"
    assert "added" in web_user(users, WRITER, WRITER_PASSWORD, "write")
    web_user(users, READER, READER_PASSWORD, "read")
    assert users.stat().st_mode & 0o777 == 0o600
    port = free_tcp_port()
    agent = Agent(workdir, free_udp_port(), free_udp_port(), extra_toml=f"""
            [web]
            enabled = true
            listen = "127.0.0.1:{port}"
            users_file = "secrets/web.users"
            """)
    agent.write_config()
    agent.start()
    try:
        yield agent, f"http://127.0.0.1:{port}"
    finally:
        agent.stop()
    assert BUG_MARKER not in agent.log_text(), agent.log_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with chromium(tmp_path_factory.mktemp("browser")) as launched:
        yield launched


def test_log_in_read_create_a_service_and_find_it_in_the_mib(panel: tuple[Agent, str], browser: object) -> None:
    agent, base = panel
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    monitor = context.new_page()
    log_in(monitor, base, WRITER, WRITER_PASSWORD)
    # The state, drawn from the snapshot pushed over server-sent events.
    monitor.wait_for_selector("#services td:text-is('healthy')")
    assert monitor.inner_text("#health td.state-normal") == "normal"
    assert "itest" in monitor.inner_text("#health")
    monitor.wait_for_selector("#live.on")
    if SCREENSHOTS:
        monitor.screenshot(path=f"{SCREENSHOTS}/web-monitoring.png", full_page=True)

    config = context.new_page()
    config.goto(base + "/config")
    # A refused value: the store's own reason is shown, and nothing is created.
    config.click("#new-services summary")
    config.fill("#new-services input[name=name]", "webmade")
    config.fill("#new-services input[name=check]", "true")
    config.fill("#new-services input[name=interval_ms]", "50")
    config.click("#new-services button[type=submit]")
    refused = config.inner_text("#flash")
    assert refused.startswith("Refused:") and "100..3600000" in refused, refused
    assert "webmade" not in agent.v2c("snmpwalk", SERVICE_NAME_COLUMN, mib=False).out
    # The same service with a good interval is created through the SET path...
    config.click("#new-services summary")
    config.fill("#new-services input[name=name]", "webmade")
    config.fill("#new-services input[name=check]", "true")
    config.fill("#new-services input[name=interval_ms]", "1000")
    config.click("#new-services button[type=submit]")
    assert config.inner_text("#flash") == "services row 2 created"
    if SCREENSHOTS:
        config.screenshot(path=f"{SCREENSHOTS}/web-configuration.png", full_page=False)
    # ...is in the MIB...
    got = agent.v2c("snmpget", f"{SERVICE_NAME_COLUMN}.2", mib=False)
    assert got.rc == 0 and '"webmade"' in got.out, got.text
    # ...audited with the web principal...
    assert "SET by web:operator: haoscarServiceName.2 changed from '' to 'webmade'" in agent.log_text()
    # ...and the monitoring page, never reloaded, shows it.
    monitor.wait_for_selector("#services td:text-is('webmade')", timeout=5000)
    context.close()


def test_a_read_only_user_sees_no_write_control(panel: tuple[Agent, str], browser: object) -> None:
    agent, base = panel
    context = browser.new_context()
    page = context.new_page()
    log_in(page, base, READER, READER_PASSWORD)
    page.goto(base + "/config")
    assert page.locator("form[action^='/config/']").count() == 0
    assert page.locator("button:text-is('Switchover')").count() == 0
    # A write forged from the page's own origin (the CSRF token is the logout form's).
    status = page.evaluate("""async () => {
        const body = new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value,
                                          heartbeat_interval_ms: '1000'});
        return (await fetch('/config/timing', {method: 'POST', body})).status; }""")
    assert status == 403
    context.close()
