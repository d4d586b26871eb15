"""[membership]: the backend and the Corosync mode's settings, validated; the settings the
corosync backend does not use, named; a reload that changes the backend, refused."""

from __future__ import annotations

import pytest
from test_config_diff import DEMO
from test_config_diff import parse as parse_demo
from test_config_rules import TWO_HEADS, parse, problems

from haoscar_snmp.config.diff import diff_configs
from haoscar_snmp.config.keys import Reload, Scope
from haoscar_snmp.config.schema import KEYS, Backend, PacemakerUse

# Two heads run by Corosync: no heartbeat key, no LAN addresses, services that only notify.
COROSYNC = (TWO_HEADS.replace('[heartbeat]\nkey_file = "/keys/hb"\n', "")
            .replace('lan_a = "10.0.1.1"\nlan_b = "10.0.2.1"\n', "")
            .replace('lan_a = "10.0.1.2"\nlan_b = "10.0.2.2"\n', "")
            .replace('check = "true"\n', 'check = "true"\nrecovery = "restart-then-notify"\n')
            .replace("[timing]\n", '[membership]\nbackend = "corosync"\n\n[timing]\n'))


def test_the_default_is_the_own_heartbeat() -> None:
    config = parse(TWO_HEADS)
    assert config.membership.backend is Backend.OWN and not config.corosync
    assert config.membership.pacemaker is PacemakerUse.AUTO
    assert config.unused_keys() == []


def test_the_keys_are_classified() -> None:
    assert KEYS.reload("membership") is Reload.RESTART
    assert KEYS.scope("membership.backend") is Scope.CLUSTER_WIDE
    assert KEYS.scope("membership.alert_socket") is Scope.PER_HEAD


def test_corosync_needs_no_heartbeat_key_nor_lan_addresses() -> None:
    config = parse(COROSYNC)
    assert config.corosync
    # The heartbeat's timings were given in the file: named, not silently accepted.
    assert config.unused_keys() == ["timing.heartbeat_interval_ms", "timing.heartbeat_dead_time_ms",
                                    "timing.initdead_ms"]
    advice = [a for a in config.advisories() if a.startswith("membership.backend")]
    assert advice == ["membership.backend: corosync, so these settings are not used: "
                      "timing.heartbeat_interval_ms, timing.heartbeat_dead_time_ms, timing.initdead_ms"]


def test_unused_settings_of_either_backend_are_named() -> None:
    text = (COROSYNC.replace("[membership]\n", '[heartbeat]\nport = 7000\n\n[failover]\nfence_command = "x"\n\n'
                             "[membership]\n")
            .replace('recovery = "restart-then-notify"\n', 'recovery = "notify-only"\nstart = "s"\n', 1))
    unused = parse(text).unused_keys()
    assert {"heartbeat.port", "failover.fence_command", "services[0].start"} <= set(unused)
    own = TWO_HEADS.replace("[timing]\n", "[membership]\nrefresh_s = 60\n\n[timing]\n")
    assert parse(own).unused_keys() == ["membership.refresh_s"]


def test_the_failover_rung_is_refused_with_corosync() -> None:
    found = problems(COROSYNC.replace('recovery = "restart-then-notify"\n', "", 1))
    assert "restart-then-failover" in found["services[0].recovery"]
    assert "Pacemaker places the resources" in found["services[0].recovery"]


@pytest.mark.parametrize("line, key, fragment", [
    ('backend = "heartbeat"', "membership.backend", "own"),
    ('pacemaker = "maybe"', "membership.pacemaker", "auto"),
    ('alert_socket = "relative.sock"', "membership.alert_socket", "absolute"),
    (f'alert_socket = "/{"x" * 120}"', "membership.alert_socket", "107 bytes"),
    ("refresh_s = 1", "membership.refresh_s", "greater than or equal to 5"),
    ("crm_mon_timeout_s = 0", "membership.crm_mon_timeout_s", "greater than or equal to 1"),
    ("crm_mon_timeout_s = 30", "membership.crm_mon_timeout_s", "shorter than refresh_s = 30"),
])
def test_bad_settings_are_refused(line: str, key: str, fragment: str) -> None:
    found = problems(COROSYNC.replace('backend = "corosync"\n', f'backend = "corosync"\n{line}\n'.replace(
        'backend = "corosync"\nbackend', "backend")))
    assert fragment in found[key], found


def test_a_reload_that_changes_the_backend_is_refused() -> None:
    old = parse_demo()
    assert "[membership]" not in DEMO
    new = parse_demo(DEMO + '\n[membership]\nbackend = "corosync"\n'.replace(
        "corosync", "own"))     # the same backend, written out: nothing to restart
    assert diff_configs(old, new).restart_required == []
    changed = parse(COROSYNC)
    assert diff_configs(parse(TWO_HEADS.replace('recovery = "restart-then-notify"\n', "")), changed) \
        .restart_required.count("membership.backend") == 1
