"""Scenario fixtures: a namespace cluster per test (root only; CI runs as root and fails
the run if any scenario test skipped)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from .hapair import HaPair
from .netns import Cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with Cluster() as c:
        yield c
    assert c.wait_gone(), "namespaces left behind"


@pytest.fixture
def pair(cluster: Cluster, tmp_path: Path) -> Iterator[HaPair]:
    p = HaPair(cluster, tmp_path)
    p.start_trapd()
    try:
        yield p
    finally:
        p.stop_all()
    p.assert_no_bug()
