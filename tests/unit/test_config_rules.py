"""Cross-field rules: each is reported with the key it concerns."""

from __future__ import annotations

from pathlib import Path

import pytest

from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config
from haoscar_snmp.config.secretfiles import SecretFileError

TWO_HEADS = """
[cluster]
name = "c"
local_head = "head1"
state_dir = "/var/lib/x"

[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.0.1.1"
lan_b = "10.0.2.1"

[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.0.1.2"
lan_b = "10.0.2.2"

[[interfaces]]
node = "head1"
lan = "lan_a"
name = "eth1"

[[aliases]]
address = "192.0.2.100"
prefix_length = 24
interface = "eth0"

[[services]]
name = "pbs"
check = "true"

[[services]]
name = "maui"
check = "true"

[timing]
heartbeat_interval_ms = 1000
heartbeat_dead_time_ms = 3000
initdead_ms = 3000
lan_poll_interval_ms = 1000
lan_down_after_ms = 2000

[heartbeat]
key_file = "/keys/hb"

[snmp]
listen = ["127.0.0.1:161", "[::1]:161"]

[[snmp.communities]]
name = "public"
access = "read"

[[snmp.users]]
name = "nms"
auth_protocol = "sha256"
auth_key = "auth-passphrase"
priv_protocol = "aes128"
priv_key = "priv-passphrase"
access = "write"

[[snmp.targets]]
name = "inform"
address = "10.0.1.250:162"
version = "v3"
kind = "inform"
user = "nms"

[[snmp.targets]]
name = "trap"
address = "[2001:db8::5]:162"
version = "v2c"
community = "public"
"""


def read_secret(path: Path) -> bytes:
    """Every secret file exists except those under /missing."""
    if str(path).startswith("/missing"):
        raise SecretFileError(f"{path} does not exist")
    return b"0123456789abcdef"


def parse(text: str) -> Config:
    return parse_config(text, label="c.toml", base_dir=Path("/etc/x"), environ={}, read_secret=read_secret)


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert all(p.file == "c.toml" for p in caught.value.problems)
    return {p.key: p.message for p in caught.value.problems}


def edit(old: str, new: str, count: int = 1) -> str:
    assert TWO_HEADS.count(old) >= count, old
    return TWO_HEADS.replace(old, new, count)


def test_the_base_config_is_valid() -> None:
    config = parse(TWO_HEADS)
    assert config.local_head_config.name == "head1"
    assert config.retry_threshold(config.services[0]) == config.timing.service_retry_threshold


@pytest.mark.parametrize("text, key, fragment", [
    (edit('local_head = "head1"', 'local_head = "head3"'), "cluster.local_head", "not a [[heads]] name"),
    (edit('name = "head2"', 'name = "head1"'), "heads[1].name", "duplicate head name"),
    (edit('"standby"', '"primary"'), "heads[1].preferred_role", "exactly one"),
    (edit('"primary"', '"standby"'), "heads", "found none"),
    (edit('lan_b = "10.0.2.2"\n', ""), "heads[1].lan_b", "required with two heads"),
    (edit('lan_a = "10.0.1.1"\n', ""), "heads[0].lan_a", "required with two heads"),
    (edit('[heartbeat]\nkey_file = "/keys/hb"\n', ""), "heartbeat.key_file", "required with two heads"),
    (edit("heartbeat_dead_time_ms = 3000", "heartbeat_dead_time_ms = 2999"),
     "timing.heartbeat_dead_time_ms", ">= 3 x heartbeat_interval_ms = 3000"),
    (edit("initdead_ms = 3000", "initdead_ms = 2000"), "timing.initdead_ms", ">= heartbeat_dead_time_ms"),
    (edit("lan_down_after_ms = 2000", "lan_down_after_ms = 1999"),
     "timing.lan_down_after_ms", ">= 2 x lan_poll_interval_ms"),
    (edit("prefix_length = 24", "prefix_length = 33"), "aliases[0].prefix_length", "does not fit IPv4"),
    (TWO_HEADS + '[[aliases]]\naddress = "192.0.2.100"\nprefix_length = 24\ninterface = "eth0"\n',
     "aliases[1].address", "duplicate alias address"),
    (edit('name = "maui"', 'name = "pbs"'), "services[1].name", "duplicate service name"),
    (edit('name = "pbs"\n', 'name = "pbs"\nindex = 7\n')
     .replace('name = "maui"\n', 'name = "maui"\nindex = 7\n'),
     "services[1].index", "duplicate index 7"),
    (edit('"[::1]:161"', '"127.0.0.1:161"'), "snmp.listen[1]", "duplicate listen endpoint"),
    (TWO_HEADS + '[[interfaces]]\nnode = "head1"\nlan = "lan_b"\nname = "eth1"\n',
     "interfaces[1].name", "duplicate interface head1/eth1"),
    (edit('access = "read"', 'access = "write"'), "snmp.communities[0].access", "allow_v2c_write"),
    (edit('name = "public"\n', 'name = "public"\nname_file = "/keys/c"\n'),
     "snmp.communities[0].name", "not both"),
    (edit('priv_protocol = "aes128"\npriv_key = "priv-passphrase"\n', 'priv_protocol = "none"\n'),
     "snmp.users[0].access", "needs privacy"),
    (edit('priv_key = "priv-passphrase"\n', ""), "snmp.users[0].priv_key", "required"),
    (edit('auth_key = "auth-passphrase"\n', ""), "snmp.users[0].auth_key", "required"),
    (edit('user = "nms"', 'user = "ops"'), "snmp.targets[0].user", "not a [[snmp.users]] name"),
    (edit('user = "nms"\n', ""), "snmp.targets[0].user", "required for a v3 target"),
    (edit('version = "v2c"\ncommunity = "public"\n', 'version = "v2c"\n'), "snmp.targets[1].community",
     "required"),
    (edit('version = "v2c"\ncommunity = "public"\n', 'version = "v2c"\ncommunity = "public"\nuser = "nms"\n'),
     "snmp.targets[1].user", "only for v3"),
    (edit('key_file = "/keys/hb"', 'key_file = "/missing/hb"'), "heartbeat.key_file", "does not exist"),
])
def test_each_rule_names_its_key(text: str, key: str, fragment: str) -> None:
    found = problems(text)
    assert key in found, found
    assert fragment in found[key]


def test_v2c_write_is_allowed_with_explicit_opt_in() -> None:
    text = edit('access = "read"', 'access = "write"').replace(
        'listen = ["127.0.0.1:161", "[::1]:161"]', 'listen = ["127.0.0.1:161"]\nallow_v2c_write = true')
    assert parse(text).snmp.communities[0].access == "write"


def test_ipv6_alias_may_use_long_prefixes() -> None:
    text = edit('address = "192.0.2.100"\nprefix_length = 24',
                'address = "2001:db8::100"\nprefix_length = 64')
    assert parse(text).aliases[0].prefix_length == 64


def test_a_single_head_needs_no_lans_and_no_heartbeat_key() -> None:
    head2 = TWO_HEADS[TWO_HEADS.index("[[heads]]\nname = \"head2\""):TWO_HEADS.index("[[interfaces]]")]
    text = TWO_HEADS.replace(head2, "").replace('[heartbeat]\nkey_file = "/keys/hb"\n', "")
    text = text.replace('lan_a = "10.0.1.1"\nlan_b = "10.0.2.1"\n', "")
    config = parse(text)
    assert config.peer_head_config is None and config.heartbeat.key is None


def test_more_than_two_heads_is_rejected() -> None:
    text = TWO_HEADS + '[[heads]]\nname = "head3"\npreferred_role = "standby"\n'
    assert "heads" in problems(text)


def test_config_built_directly_still_runs_the_rules() -> None:
    """Config itself enforces the rules, so no code path can build an inconsistent one."""
    config = parse(TWO_HEADS)
    values = {name: getattr(config, name) for name in Config.model_fields}
    values["timing"] = config.timing.model_copy(update={"initdead_ms": 0})
    with pytest.raises(ValueError, match="timing.initdead_ms"):
        Config.model_validate(values)


def test_engine_id_is_derived_from_cluster_and_head_unless_given() -> None:
    derived = parse(TWO_HEADS).effective_engine_id()
    assert derived == bytes.fromhex("80007ed904") + b"c/head1"
    given = parse(edit('listen = [', 'engine_id = "0x80007ED9050102030405"\nlisten = ['))
    assert given.effective_engine_id() == bytes.fromhex("80007ed9050102030405")
    assert "snmp.engine_id" in problems(edit('listen = [', 'engine_id = "abc"\nlisten = ['))


def timing_advice(config: Config) -> list[str]:
    return [a for a in config.advisories() if a.startswith("timing: heartbeat")]


def test_timings_below_the_measured_floor_are_accepted_with_a_warning() -> None:
    assert timing_advice(parse(TWO_HEADS)) == []
    fast = edit("heartbeat_interval_ms = 1000\nheartbeat_dead_time_ms = 3000",
                "heartbeat_interval_ms = 10\nheartbeat_dead_time_ms = 30")
    advice = timing_advice(parse(fast))
    assert len(advice) == 1 and "below the floor" in advice[0]
    floor = edit("heartbeat_interval_ms = 1000\nheartbeat_dead_time_ms = 3000",
                 "heartbeat_interval_ms = 20\nheartbeat_dead_time_ms = 60")
    assert timing_advice(parse(floor)) == []


def test_lan_failure_as_head_failure_without_compute_nodes_is_said_to_never_fire() -> None:
    advice = parse(TWO_HEADS + '\n[failover]\nlan_failure_is_head_failure = true\n').advisories()
    assert any(a.startswith("failover.lan_failure_is_head_failure: no compute node is watched") for a in advice)
    assert not any("not in effect yet" in a for a in advice)


def test_e_mail_without_recipients_or_recipients_without_e_mail_are_said() -> None:
    advice = parse(TWO_HEADS + '\n[notify.email]\nenabled = true\n').advisories()
    assert any(a.startswith("notify.email.to: e-mail is enabled but has no recipient") for a in advice)
    advice = parse(TWO_HEADS + '\n[notify.email]\nto = ["ops@example.org"]\n').advisories()
    assert any(a.startswith("notify.email.enabled: false") for a in advice)


def test_head_indexes_follow_the_names_not_the_file_order() -> None:
    config = parse(TWO_HEADS.replace('name = "head1"', 'name = "zeta"').replace(
        'local_head = "head1"', 'local_head = "zeta"'))
    assert [h.name for h in config.heads] == ["zeta", "head2"]
    assert (config.head_index("head2"), config.head_index("zeta")) == (1, 2)


def test_agentx_can_be_enabled_but_only_in_the_default_context() -> None:
    assert parse(TWO_HEADS + '\n[snmp.agentx]\nenabled = true\n').snmp.agentx.enabled
    found = problems(TWO_HEADS + '\n[snmp.agentx]\nenabled = true\ncontext = "other"\n')
    assert "only the default context" in found["snmp.agentx.context"]
