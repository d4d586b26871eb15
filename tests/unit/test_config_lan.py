"""The LAN poller's configuration: [[nodes]], the watched rows they expand to with the heads
and [[interfaces]], their conflicts, [lan], and haoscarLanIfTable's stable row indexes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from haoscar_snmp.config.diff import classify, diff_configs
from haoscar_snmp.config.errors import ConfigError
from haoscar_snmp.config.lanrows import MAX_ROWS, RowIndexes, reindex, watched_interfaces
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import Config, Poller
from haoscar_snmp.core.state import Lan

A, B = Lan.LAN_A, Lan.LAN_B

BASE = """
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

[[interfaces]]
node = "head1"
lan = "public"
name = "eth0"
address = "192.0.2.11"

[[nodes]]
name = "node01"
lan_a = "10.0.1.101"
lan_b = "10.0.2.101"

[[nodes]]
name = "node02"
lan_a = "10.0.1.102"

[heartbeat]
key_file = "/keys/hb"

[snmp]
listen = ["127.0.0.1:161"]
"""


def parse(text: str) -> Config:
    return parse_config(text, label="c.toml", base_dir=Path("/etc/x"), environ={},
                        read_secret=lambda path: b"0123456789abcdef")


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert all(p.file == "c.toml" for p in caught.value.problems)
    return {p.key: p.message for p in caught.value.problems}


def node(name: str, lan_a: str | None = None, lan_b: str | None = None) -> str:
    lines = [f'\n[[nodes]]\nname = "{name}"']
    lines += [f'lan_a = "{lan_a}"'] if lan_a else []
    lines += [f'lan_b = "{lan_b}"'] if lan_b else []
    return "\n".join(lines) + "\n"


def rows(config: Config) -> list[tuple[str, str, str, str]]:
    return [(r.node, r.lan.key, r.name, str(r.address)) for r in watched_interfaces(config)]


def test_nodes_and_the_heads_expand_to_one_row_per_node_and_lan() -> None:
    config = parse(BASE)
    assert rows(config) == [
        ("head1", "lan_a", "eth1", "10.0.1.1"),      # the head's address, the interface's name
        ("head1", "lan_b", "", "10.0.2.1"),
        ("head2", "lan_a", "", "10.0.1.2"),
        ("head2", "lan_b", "", "10.0.2.2"),
        ("head1", "public", "eth0", "192.0.2.11"),
        ("node01", "lan_a", "", "10.0.1.101"),
        ("node01", "lan_b", "", "10.0.2.101"),
        ("node02", "lan_a", "", "10.0.1.102"),
    ]
    assert config.nodes[1].lan_b is None


def test_a_500_node_cluster_is_500_short_entries() -> None:
    text = BASE + "".join(node(f"n{i:03d}", f"10.2.{i // 200}.{1 + i % 200}", f"10.3.{i // 200}.{1 + i % 200}")
                          for i in range(500))
    started = time.monotonic()
    config = parse(text)
    assert time.monotonic() - started < 5
    assert len(watched_interfaces(config)) == 8 + 1000


@pytest.mark.parametrize("extra, key, fragment", [
    ('\n[[nodes]]\nname = "node03"\n', "nodes[2]", "give lan_a, lan_b or both"),
    (node("node01", "10.0.1.201"), "nodes[2].name", "duplicate node name node01 (also nodes[0])"),
    (node("head2", "10.0.1.202"), "nodes[2].name", "head2 is a [[heads]] name"),
    ('\n[[interfaces]]\nnode = "node01"\nlan = "lan_b"\nname = "eth1"\n',
     "nodes[0].lan_b", "node01 on lan_b is also interfaces[2]: give each interface once"),
    ('\n[[interfaces]]\nnode = "head2"\nlan = "lan_b"\nname = "eth2"\naddress = "10.0.2.9"\n',
     "interfaces[2].address", "10.0.2.9 is not heads[1].lan_b (10.0.2.2)"),
    ('\n[[interfaces]]\nnode = "head1"\nlan = "lan_a"\nname = "bond0"\n',
     "interfaces[2].lan", "head1 already has a lan_a interface (interfaces[0])"),
    (node("node03", "10.0.1.102"), "nodes[2].lan_a", "address 10.0.1.102 is also nodes[1].lan_a (node02 on lan_a)"),
    (node("node03", None, "10.0.1.2"), "nodes[2].lan_b", "address 10.0.1.2 is also heads[1].lan_a"),
    ('\n[[nodes]]\nname = "node 3"\nlan_a = "10.0.1.103"\n', "nodes[2].name", "A-Z a-z 0-9"),
    (node("node03", "10.0.1.300"), "nodes[2].lan_a", "is not an IPv4 or IPv6 address"),
    ('\n[lan]\nrise = 0\n', "lan.rise", "greater than or equal to 1"),
    ('\n[lan]\nhold_down_ms = 86400001\n', "lan.hold_down_ms", "less than or equal to 86400000"),
    ('\n[lan]\nfailure_percent = 101\n', "lan.failure_percent", "less than or equal to 100"),
    ('\n[lan]\nfailure_min_interfaces = 0\n', "lan.failure_min_interfaces", "greater than or equal to 1"),
    ('\n[lan]\npoller = "nobody"\n', "lan.poller", "'standby', 'active' or 'both'"),
    ('\n[lan]\nfall = 2\n', "lan.fall", "unknown key"),
])
def test_each_rejection_names_its_file_and_key(extra: str, key: str, fragment: str) -> None:
    found = problems(BASE + extra)
    assert key in found, found
    assert fragment in found[key]


def test_a_bad_node_row_does_not_hide_the_conflicts_of_the_others() -> None:
    found = problems(BASE + node("node03", "10.0.1.999") + node("node01", "10.0.1.204"))
    assert set(found) == {"nodes[2].lan_a", "nodes[3].name"}


def test_the_lan_settings_have_defaults_and_are_read_as_given() -> None:
    config = parse(BASE)
    assert (config.lan.rise, config.lan.hold_down_ms, config.lan.failure_percent,
            config.lan.failure_min_interfaces, config.lan.poller) == (3, 60000, 50, 2, Poller.STANDBY)
    assert config.failover.lan_failure_is_head_failure is False
    config = parse(BASE + '\n[lan]\nrise = 5\nhold_down_ms = 0\npoller = "both"\n'
                   + '\n[failover]\nlan_failure_is_head_failure = true\n')
    assert (config.lan.rise, config.lan.hold_down_ms, config.lan.poller) == (5, 0, Poller.BOTH)
    assert config.failover.lan_failure_is_head_failure is True


def not_in_effect(config: Config) -> set[str]:
    return {a.split(":")[0] for a in config.advisories() if "not in effect yet" in a}


def test_every_lan_setting_is_in_effect() -> None:
    text = BASE.replace("[heartbeat]", "[timing]\nlan_poll_interval_ms = 1000\n\n[heartbeat]") \
        + '\n[lan]\nrise = 2\nfailure_percent = 60\n\n[failover]\nlan_failure_is_head_failure = true\n'
    assert not_in_effect(parse(BASE)) == not_in_effect(parse(text)) == set()


def test_nodes_and_lan_are_applied_by_a_reload() -> None:
    old = parse(BASE)
    new = parse(BASE.replace('lan_a = "10.0.1.102"', 'lan_a = "10.0.1.112"') + node("node03", "10.0.1.103")
                + "\n[lan]\nrise = 4\n")
    diff = diff_configs(old, new)
    assert set(diff.changed_keys) == {"nodes[node02].lan_a", "nodes[node03]", "lan.rise"}
    assert diff.restart_required == []
    assert classify("nodes[node02].lan_a") == classify("lan.poller") == "live"


# -- row indexes -------------------------------------------------------------------------

def test_rows_keep_their_index_across_reloads_and_new_rows_get_fresh_ones() -> None:
    first = reindex(RowIndexes(), [("head1", A), ("head1", B), ("n1", A), ("n2", A)])
    assert dict(first.rows) == {("head1", A): 1, ("head1", B): 2, ("n1", A): 3, ("n2", A): 4}
    # n1 leaves, n3 comes before n2 in the file: n2 keeps 4, n3 gets 5, 3 is not given again.
    second = reindex(first, [("head1", A), ("head1", B), ("n3", A), ("n2", A)])
    assert dict(second.rows) == {("head1", A): 1, ("head1", B): 2, ("n3", A): 5, ("n2", A): 4}
    # n1 comes back: a new row, so a new index.
    third = reindex(second, [("n1", A), ("n2", A)])
    assert dict(third.rows) == {("n1", A): 6, ("n2", A): 4} and third.next_index == 7
    assert reindex(third, [("n1", A), ("n2", A)]) == third


def test_after_every_index_was_given_the_smallest_free_one_is_reused() -> None:
    worn = RowIndexes({("n1", A): 2}, next_index=MAX_ROWS + 1)
    again = reindex(worn, [("n1", A), ("n2", A), ("n3", A)])
    assert dict(again.rows) == {("n1", A): 2, ("n2", A): 1, ("n3", A): 3}


def test_the_example_configuration_watches_both_heads_and_the_nodes(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "conf" / "haoscar-snmp.example.toml").read_text()
    text = text.replace("/var/lib/haoscar-snmp", str(tmp_path))
    config = parse(text)
    watched = {(r.node, r.lan) for r in watched_interfaces(config)}
    assert {("head1", A), ("head1", B), ("head2", A), ("head2", B), ("node01", A), ("node02", B)} <= watched
    assert config.lan.poller is Poller.STANDBY
