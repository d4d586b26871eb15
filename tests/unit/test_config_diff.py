"""Reload is a diff: changes by identity, and the keys that need a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcaps.configuration.overrides import apply_overrides
from haoscar_snmp.config.diff import diff_configs
from haoscar_snmp.config.loader import parse_config, read_embedded_default
from haoscar_snmp.config.schema import Config

DEMO = read_embedded_default()


def parse(text: str = DEMO) -> Config:
    return parse_config(text, label="demo", base_dir=Path("/etc"), environ={"HOME": "/home/op"})


def edit(old: str, new: str) -> Config:
    assert DEMO.count(old) == 1, old
    return parse(DEMO.replace(old, new))


@pytest.fixture
def old() -> Config:
    return parse()


def test_identical_configs_have_no_diff(old: Config) -> None:
    diff = diff_configs(old, parse())
    assert not diff and diff.changed_keys == [] and diff.restart_required == []
    assert diff.summary() == "configuration unchanged"


def test_timing_change_is_live(old: Config) -> None:
    diff = diff_configs(old, apply_overrides(old, {"timing": {"heartbeat_interval_ms": 1000}}))
    assert diff.changed_keys == ["timing.heartbeat_interval_ms"]
    assert diff.restart_required == []
    assert diff.summary() == "1 key changed: timing.heartbeat_interval_ms changed"


def test_services_are_compared_by_name(old: Config) -> None:
    new = apply_overrides(old, {"services": {
        "1": {"deleted": True}, "2": {"check": "test -d /tmp"}, "5": {"name": "new", "check": "true"}}})
    diff = diff_configs(old, new)
    assert (diff.services_added, diff.services_removed, diff.services_changed) == (
        ["new"], ["always-healthy"], ["tmp-writable"])
    assert set(diff.changed_keys) == {
        "services[always-healthy]", "services[new]", "services[tmp-writable].check"}
    assert diff.restart_required == []


def test_inserting_a_service_above_others_is_one_addition() -> None:
    old = parse()
    new = edit('[[services]]\nname = "always-healthy"', '[[services]]\nname = "first"\ncheck = "true"\n\n'
               '[[services]]\nname = "always-healthy"')
    diff = diff_configs(old, new)
    assert diff.services_added == ["first"]
    # Automatic indexes moved (which is why the example config sets them explicitly).
    assert diff.services_changed == ["always-healthy", "tmp-writable"]
    assert all(key.endswith(".index") for key in diff.changed_keys if key != "services[first]")


def test_aliases_are_compared_by_address(old: Config) -> None:
    row = {"address": "192.0.2.7", "prefix_length": 24, "interface": "lo"}
    one = apply_overrides(old, {"aliases": {"1": row}})
    two = apply_overrides(old, {"aliases": {"1": {**row, "prefix_length": 25}}})
    assert diff_configs(old, one).aliases_added == ["192.0.2.7"]
    assert diff_configs(one, old).aliases_removed == ["192.0.2.7"]
    diff = diff_configs(one, two)
    assert diff.aliases_changed == ["192.0.2.7"] and diff.changed_keys == ["aliases[192.0.2.7].prefix_length"]


@pytest.mark.parametrize("old_text, new_text, key", [
    ('name = "demo"', 'name = "demo2"', "cluster.name"),
    ('state_dir = ""', 'state_dir = "/srv/state"', "cluster.state_dir"),
    ('listen = ["127.0.0.1:16161", "[::1]:16161"]', 'listen = ["127.0.0.1:16161"]', "snmp.listen"),
    ('engine_id = ""', 'engine_id = "80007ed9040102"', "snmp.engine_id"),
    ('[snmp.agentx]\nenabled = false', '[snmp.agentx]\nenabled = false\nmaster = "/run/agentx"',
     "snmp.agentx.master"),
    ('[snmp.agentx]\n', '[heartbeat]\nport = 7000\n\n[snmp.agentx]\n', "heartbeat.port"),
    ('preferred_role = "primary"', 'preferred_role = "primary"\npublic = "192.0.2.10"',
     "heads[head1].public"),
])
def test_unsafe_changes_require_a_restart(old: Config, old_text: str, new_text: str, key: str) -> None:
    diff = diff_configs(old, edit(old_text, new_text))
    assert key in diff.changed_keys
    assert diff.restart_required == [key]
    assert diff.summary().endswith(f"restart required for {key}")


def test_secret_changes_are_detected_but_never_shown(old: Config) -> None:
    new = edit('auth_key = "demo-auth-passphrase"', 'auth_key = "rotated-passphrase"')
    diff = diff_configs(old, new)
    assert diff.changed_keys == ["snmp.users[admin].auth_key"]
    assert "rotated" not in diff.summary() and "demo-auth" not in repr(diff)
    community = edit('[[snmp.communities]]\nname = "public"', '[[snmp.communities]]\nname = "secret2"')
    assert diff_configs(old, community).changed_keys == ["snmp.communities[0].name"]


def test_summary_is_one_sentence(old: Config) -> None:
    new = apply_overrides(edit('garp_count = 5', 'garp_count = 7'),
                          {"services": {"9": {"name": "x", "check": "true"}}})
    summary = diff_configs(old, new).summary()
    assert "\n" not in summary
    assert summary == "2 keys changed: services added x; timing.garp_count changed"


def _field_keys(model: type, prefix: str = "") -> list[str]:
    """Every leaf key of the configuration schema, as dotted names (aliases where the
    file uses them), tables without their row brackets."""
    import typing

    from pydantic import BaseModel

    keys = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        annotation = info.annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        inner = [a for arg in args for a in (typing.get_args(arg) or [arg])]
        nested = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            keys += _field_keys(nested[0], key + ".")
        else:
            keys.append(key)
    return keys


def test_every_configuration_key_is_either_live_or_restart_only() -> None:
    from haoscar_snmp.config.diff import classify

    keys = _field_keys(Config) + ["heartbeat.key"]
    assert len(keys) > 60
    unclassified = [k for k in keys if classify(k) is None]
    assert unclassified == []


def test_the_restart_only_keys_are_the_sockets_identities_the_snmp_engine_and_the_web_panel() -> None:
    """Walked from the schema, where each field declares its reload kind: a change here
    changes which reloads are refused, so it is made on purpose."""
    from haoscar_snmp.config.keys import Reload
    from haoscar_snmp.config.schema import KEYS

    # Keys two deep ("snmp.agentx.enabled" -> "snmp.agentx"), the heads' columns as "heads".
    # The web panel's keys as "web": its listener and limits are set up once, at start.
    # [membership] as "membership": the backend decides which parts are built at all.
    groups = {"heads" if key.startswith("heads.") else "web" if key.startswith("web.")
              else "membership" if key.startswith("membership.")
              else ".".join(key.split(".")[:2]) for key in KEYS.keys(reload=Reload.RESTART)}
    assert groups == {"cluster.name", "cluster.local_head", "cluster.state_dir", "heads", "snmp.listen",
                      "snmp.engine_id", "snmp.sys_name", "snmp.sys_contact", "snmp.sys_location",
                      "snmp.agentx", "heartbeat.port", "heartbeat.public_path", "web", "membership"}
    whole = [key for key in KEYS.entries if key.startswith(("heads.", "snmp.agentx.", "web.", "membership."))]
    assert whole and all(KEYS.reload(key) is Reload.RESTART for key in whole)


@pytest.mark.parametrize("old_text, new_text, key", [
    ('sys_contact = "demo"', 'sys_contact = "ops"', "snmp.sys_contact"),
    ('engine_id = ""', 'engine_id = "80007ed9040102"', "snmp.engine_id"),
])
def test_snmp_engine_changes_are_refused_as_restart_only(old: Config, old_text: str, new_text: str,
                                                         key: str) -> None:
    diff = diff_configs(old, edit(old_text, new_text))
    assert key in diff.restart_required


@pytest.mark.parametrize("old_text, new_text, key", [
    ('name = "public"', 'name = "secret-now"', "snmp.communities[0].name"),
    ('auth_key = "demo-auth-passphrase"', 'auth_key = "rotated-passphrase"', "snmp.users[admin].auth_key"),
    ('address = "127.0.0.1:16162"', 'address = "127.0.0.1:16163"', "snmp.targets[local-trapd].address.port"),
    ('allow_v2c_write = false', 'allow_v2c_write = true', "snmp.allow_v2c_write"),
    ('auth_failure_traps = false', 'auth_failure_traps = true', "snmp.auth_failure_traps"),
])
def test_snmp_credentials_are_applied_live(old: Config, old_text: str, new_text: str, key: str) -> None:
    diff = diff_configs(old, edit(old_text, new_text))
    assert key in diff.changed_keys
    assert diff.restart_required == []
