"""A real browser for the web panel's tests: Debian's chromium driven by Playwright.

Nothing is downloaded: Playwright launches /usr/bin/chromium (scripts/setup installs
it), headless, with every background fetch of its own turned off. `in_namespace` runs
it inside a scenario's network namespace (Playwright talks to it over a pipe, so the
namespace boundary does not matter), where the head's loopback panel is reachable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chromium(workdir: Path, namespace: str | None = None) -> Iterator[object]:
    """A launched browser (playwright.sync_api.Browser), closed at the end."""
    if not os.path.exists(CHROMIUM):   # not a skip: these tests are the panel's proof
        pytest.fail(f"{CHROMIUM} is missing; run scripts/setup")
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM
    if namespace is not None:
        wrapper = workdir / "chromium-in-namespace"
        wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ip")} netns exec {namespace} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o700)
        executable = str(wrapper)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS, timeout=30000)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: object, base: str, user: str, password: str) -> None:
    page.goto(base + "/")                                   # redirected to the login page
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/", wait_until="commit")
