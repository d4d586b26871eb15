"""Suite-wide rules: in CI (CI=true) a skipped scenario or integration test is a failure,
not a pass (CI runs as root: what skips without root must run there)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "/scenarios/" in path:
            item.add_marker(pytest.mark.scenario)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = [r for r in reporter.stats.get("skipped", [])
               if {"scenario", "integration"} & set(getattr(r, "keywords", {}))]
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} scenario or integration test(s) skipped; they must run "
                            "in CI (it runs as root)", red=True)
        session.exitstatus = 1
