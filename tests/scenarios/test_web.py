"""The web panel on a pair: the page open on the standby shows the failover as it
happens, without a reload. The browser runs inside head2's namespace, where head2's
panel listens on loopback."""

from __future__ import annotations

from haoscar_snmp.config.webusers import hash_password
from tests.integration.browser import chromium, log_in

from .hapair import HaPair

WEB_PORT = 16180
PASSWORD = "scenario-web-password"


# Playwright's synchronous API runs an event loop in this thread while the browser is
# open: only plain calls (signals, files) are made on the pair meanwhile.
def test_the_standby_page_shows_the_failover_without_a_reload(pair: HaPair) -> None:
    pair.extra_toml = f"""
        [web]
        enabled = true
        listen = "127.0.0.1:{WEB_PORT}"
        [[web.users]]
        name = "operator"
        role = "read"
        password_hash = "{hash_password(PASSWORD, log2_n=12)}"
        """
    pair.start_both()
    base = f"http://127.0.0.1:{WEB_PORT}"
    with chromium(pair.workdir, pair.cluster.ns("head2")) as browser:
        page = browser.new_page()
        log_in(page, base, "operator", PASSWORD)
        page.wait_for_selector("#health td.state-standby")              # head2's role here
        page.wait_for_selector("#aliases td:text-is('head1')")          # the holder
        page.evaluate("window.notReloaded = true")
        pair.kill9("head1")
        page.wait_for_selector("#health td.state-active", timeout=10000)
        page.wait_for_selector("#aliases td:text-is('head2')", timeout=5000)
        page.wait_for_selector("#events td:text-is('failoverCompleted')", timeout=5000)
        assert page.evaluate("window.notReloaded === true")
    # Read after the browser is gone: Playwright's synchronous API holds this thread's
    # event loop, which pyroute2's synchronous calls need.
    assert "head2" in pair.holders()
