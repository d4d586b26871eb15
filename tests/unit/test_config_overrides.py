"""SNMP overrides: they win over the file and are held to exactly the file's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcaps.configuration.overrides import apply_overrides, check_candidate
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.loader import load_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import RowStatus


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(None, state_dir=tmp_path)  # services: 1 always-healthy, 2 tmp-writable


def problems(config: Config, overrides: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(config, overrides, source="/state/overrides.json")
    assert all(p.file == "/state/overrides.json" for p in caught.value.problems)
    return {p.key: p.message for p in caught.value.problems}


def test_no_overrides_is_the_file_config(config: Config) -> None:
    assert apply_overrides(config, {}) == config


def test_timing_overrides_win_and_the_file_config_is_untouched(config: Config) -> None:
    effective = apply_overrides(config, {"timing": {"heartbeat_interval_ms": 1000, "garp_count": 2}})
    assert (effective.timing.heartbeat_interval_ms, effective.timing.garp_count) == (1000, 2)
    assert effective.timing.heartbeat_dead_time_ms == config.timing.heartbeat_dead_time_ms
    assert config.timing.heartbeat_interval_ms == 5000


def test_notify_email_replaces_the_recipients(config: Config) -> None:
    effective = apply_overrides(config, {"notify_email": "ops@example.org"})
    assert effective.notify.email.to == ("ops@example.org",)
    assert apply_overrides(effective, {"notify_email": ""}).notify.email.to == ()
    assert "overrides.notify_email" in problems(config, {"notify_email": "not an address"})


def test_service_rows_are_patched_created_and_deleted_by_index(config: Config) -> None:
    effective = apply_overrides(config, {"services": {
        "1": {"deleted": True},
        "2": {"retry_threshold": 9, "row_status": "notInService"},
        "7": {"name": "sge", "check": "systemctl is-active --quiet sge", "recovery": "notify-only"},
    }})
    assert [(s.index, s.name) for s in effective.services] == [(2, "tmp-writable"), (7, "sge")]
    patched = effective.services[0]
    assert (patched.retry_threshold, patched.check) == (9, config.services[1].check)
    assert patched.row_status is RowStatus.NOT_IN_SERVICE
    assert [s.name for s in effective.active_services()] == ["sge"]
    assert effective.services[1].row_status is RowStatus.ACTIVE


def test_alias_rows_can_be_created(config: Config) -> None:
    effective = apply_overrides(config, {"aliases": {"3": {
        "address": "192.0.2.100", "prefix_length": 24, "interface": "eth0", "row_status": "notInService"}}})
    assert [(a.index, str(a.address)) for a in effective.aliases] == [(3, "192.0.2.100")]
    assert effective.active_aliases() == ()


def test_values_are_checked_with_the_same_ranges(config: Config) -> None:
    found = problems(config, {"timing": {"heartbeat_interval_ms": 5}})
    assert "greater than or equal to 10 (got 5)" in found["overrides.timing.heartbeat_interval_ms"]


def test_cross_field_rules_blame_the_override(config: Config) -> None:
    found = problems(config, {
        "timing": {"heartbeat_interval_ms": 10000},
        "services": {"7": {"name": "always-healthy", "check": "true"}},
        "aliases": {"5": {"address": "192.0.2.1", "prefix_length": 40, "interface": "eth0"}},
    })
    assert set(found) == {"overrides.timing.heartbeat_dead_time_ms", "overrides.services.7.name",
                          "overrides.aliases.5.prefix_length"}
    assert "duplicate service name" in found["overrides.services.7.name"]


def test_every_malformed_override_is_reported(config: Config) -> None:
    found = problems(config, {
        "colour": 1,
        "timing": {"heartbeat_intervall_ms": 1000},
        "services": {"x": {}, "0": {}, "2": {"deleted": False}, "3": {"check": "true"},
                     "1": {"index": 4, "enabled": False}},
        "aliases": [],
    })
    assert set(found) == {
        "overrides.colour", "overrides.timing.heartbeat_intervall_ms", "overrides.services.x",
        "overrides.services.0", "overrides.services.2.deleted", "overrides.services.3.name",
        "overrides.services.1.index", "overrides.aliases",
    }


def test_a_new_row_must_be_complete(config: Config) -> None:
    found = problems(config, {"services": {"9": {"name": "half"}}})
    assert found == {"overrides.services.9.check": "required key is missing"}


def test_check_candidate_reports_without_raising(config: Config) -> None:
    assert check_candidate(config, {"timing": {"heartbeat_interval_ms": 1000}}) == []
    [problem] = check_candidate(config, {"timing": {"lan_down_after_ms": 300}})
    assert problem.key == "overrides.timing.lan_down_after_ms"
