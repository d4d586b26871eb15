"""Fixtures shared by the unit tests: the MIB as data and the embedded demo config."""

from __future__ import annotations

import pytest

from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.snmp.mib import MibModel


@pytest.fixture(scope="module")
def mib() -> MibModel:
    return MibModel.load()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The embedded demo: services 1 (always-healthy) and 2 (tmp-writable), no aliases."""
    return load_config(None, state_dir=tmp_path_factory.mktemp("state"))
