"""The replicated configuration's pure layer: scopes, settings, digests, merge, drift, adoption."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_config_diff import _field_keys

from fcaps.configuration.overrides import apply_overrides
from haoscar_snmp.config.cluster import (
    SETTINGS_FORMAT,
    Scope,
    after_adoption,
    apply_cluster_wide,
    canonical_json,
    cluster_wide,
    differences,
    digest,
    fingerprint,
    scope,
)
from haoscar_snmp.config.clustersync import (
    Advert,
    DriftState,
    DriftTracker,
    Outcome,
    Version,
    bump,
    cross_head_problems,
    merge,
    stage_timing,
    timing_problems,
)
from haoscar_snmp.config.loader import parse_config
from haoscar_snmp.config.schema import KEYS, Config

HEAD1 = """
[cluster]
name = "c"
local_head = "head1"
state_dir = "/var/lib/head1-state"

[[heads]]
name = "head1"
preferred_role = "primary"
lan_a = "10.0.1.1"
lan_b = "10.0.2.1"
public = "192.0.2.1"

[[heads]]
name = "head2"
preferred_role = "standby"
lan_a = "10.0.1.2"
lan_b = "10.0.2.2"
public = "192.0.2.2"

[[interfaces]]
node = "head1"
lan = "lan_a"
name = "eth1"

[[nodes]]
name = "n1"
lan_a = "10.0.1.11"

[[aliases]]
index = 1
address = "192.0.2.100"
prefix_length = 24
interface = "eth0"

[[services]]
index = 1
name = "pbs"
check = "true"
start = "systemctl start pbs"

[[services]]
index = 2
name = "maui"
check = "true"

[timing]
heartbeat_interval_ms = 1000
heartbeat_dead_time_ms = 3000
initdead_ms = 3000
lan_poll_interval_ms = 1000
lan_down_after_ms = 2000

[heartbeat]
key_file = "/keys/hb-head1"

[failover]
fence_command = "ipmitool -H bmc-head2 chassis power off"

[notify.email]
enabled = true
to = ["ops@example.org"]
smtp_host = "127.0.0.1"

[snmp]
listen = ["10.0.1.1:161"]
sys_location = "rack 1"

[[snmp.communities]]
name = "community-of-head1"
access = "read"

[[snmp.users]]
name = "nms"
auth_protocol = "sha256"
auth_key = "auth-passphrase-head1"
priv_protocol = "aes128"
priv_key = "priv-passphrase-head1"
access = "write"

[log]
level = "debug"
"""

# The same cluster as head2's file: only per-head keys differ.
HEAD2 = (HEAD1.replace('local_head = "head1"', 'local_head = "head2"')
         .replace("head1-state", "head2-state").replace("hb-head1", "hb-head2")
         .replace("bmc-head2", "bmc-head1").replace('"10.0.1.1:161"', '"10.0.1.2:161"')
         .replace("rack 1", "rack 2").replace("of-head1", "of-head2")
         .replace("passphrase-head1", "passphrase-head2").replace('level = "debug"', 'level = "info"'))

KEY = b"the shared heartbeat key bytes"


def parse(text: str) -> Config:
    return parse_config(text, label="c.toml", base_dir=Path("/etc/x"), environ={},
                        read_secret=lambda path: KEY)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


@pytest.fixture
def head1() -> Config:
    return parse(HEAD1)


@pytest.fixture
def head2() -> Config:
    return parse(HEAD2)


# -- classification ----------------------------------------------------------------------


def test_every_configuration_key_is_cluster_wide_or_per_head() -> None:
    keys = _field_keys(Config) + ["heartbeat.key"]
    unclassified = []
    for key in keys:
        try:
            scope(key)
        except KeyError:
            unclassified.append(key)
    assert unclassified == []


def test_scopes_come_from_the_schema() -> None:
    # The schema's own walk: every key it knows has the scope its field declares.
    assert KEYS.unclassified() == []
    for key, mark in KEYS.entries.items():
        assert mark is not None and scope(key) is mark.scope, key
    assert set(KEYS.keys(Scope.CLUSTER_WIDE)) & set(KEYS.keys(Scope.PER_HEAD)) == set()


@pytest.mark.parametrize("key, expected", [
    ("timing.heartbeat_interval_ms", Scope.CLUSTER_WIDE),
    ("services[pbs].check", Scope.CLUSTER_WIDE),
    ("aliases.interface", Scope.CLUSTER_WIDE),
    ("heads[head2].lan_a", Scope.CLUSTER_WIDE),
    ("heartbeat.port", Scope.CLUSTER_WIDE),
    ("notify.email.to", Scope.CLUSTER_WIDE),
    ("cluster.local_head", Scope.PER_HEAD),
    ("cluster.state_dir", Scope.PER_HEAD),
    ("heartbeat.key", Scope.PER_HEAD),
    ("heartbeat.key_file", Scope.PER_HEAD),
    ("failover.fence_command", Scope.PER_HEAD),
    ("snmp.users[nms].auth_key", Scope.PER_HEAD),
    ("snmp.engine_id", Scope.PER_HEAD),
    ("notify.email.smtp_host", Scope.PER_HEAD),
    ("log.level", Scope.PER_HEAD),
])
def test_scope(key: str, expected: Scope) -> None:
    assert scope(key) is expected


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(KeyError, match="not classified"):
        scope("colour")
    with pytest.raises(KeyError):
        scope("timingx.heartbeat_interval_ms")


# -- the settings ------------------------------------------------------------------------


def _leaves(prefix: str, value: Any, out: list[str]) -> list[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            _leaves(f"{prefix}.{key}" if prefix else key, item, out)
    elif isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        for row in value:
            _leaves(prefix, row, out)
    else:
        out.append(prefix)
    return out


def test_two_heads_of_one_cluster_have_the_same_settings(head1: Config, head2: Config) -> None:
    assert cluster_wide(head1) == cluster_wide(head2)
    assert digest(cluster_wide(head1)) == digest(cluster_wide(head2))
    assert canonical_json(cluster_wide(head1)) == canonical_json(cluster_wide(head2))


def test_settings_hold_exactly_the_cluster_wide_keys(head1: Config) -> None:
    settings = cluster_wide(head1)
    leaves = set(_leaves("", settings, [])) - {"format"}
    assert all(scope(key) is Scope.CLUSTER_WIDE for key in leaves)
    expected = {k for k in _field_keys(Config) if scope(k) is Scope.CLUSTER_WIDE}
    assert leaves == expected
    assert settings["format"] == SETTINGS_FORMAT


def test_settings_hold_no_secret_and_no_path(head1: Config) -> None:
    text = canonical_json(cluster_wide(head1)).decode()
    for secret in ("community-of-head1", "passphrase-head1", KEY.decode(), "hb-head1", "head1-state",
                   "bmc-head2", "rack 1", "**"):
        assert secret not in text
    json.loads(text)  # plain JSON data


def test_settings_are_in_a_canonical_order(head1: Config) -> None:
    # The same rows in another file order, and the tables' entries written differently.
    moved = edit(HEAD1, '[[services]]\nindex = 1\nname = "pbs"\ncheck = "true"\nstart = "systemctl start pbs"\n\n',
                 "")
    moved = edit(moved, "[timing]", '[[services]]\nindex = 1\nname = "pbs"\ncheck = "true"\n'
                                    'start = "systemctl start pbs"\n\n[timing]')
    assert [s.name for s in parse(moved).services] == ["maui", "pbs"]
    assert digest(cluster_wide(parse(moved))) == digest(cluster_wide(parse(HEAD1)))
    settings = cluster_wide(parse(HEAD1))
    assert list(settings) == sorted(settings)
    assert [s["index"] for s in settings["services"]] == [1, 2]


def test_digest_and_fingerprint(head1: Config) -> None:
    settings = cluster_wide(head1)
    hexdigest = digest(settings)
    assert len(hexdigest) == 64 and int(hexdigest, 16) >= 0
    assert fingerprint(hexdigest) == int(hexdigest[:16], 16) < 2**64
    changed = cluster_wide(apply_overrides(head1, {"timing": {"garp_count": 2}}))
    assert digest(changed) != hexdigest and fingerprint(digest(changed)) != fingerprint(hexdigest)


def test_per_head_changes_do_not_change_the_digest(head1: Config) -> None:
    other = parse(edit(HEAD1, 'level = "debug"', 'level = "warning"'))
    assert digest(cluster_wide(other)) == digest(cluster_wide(head1))


def test_differences_name_the_keys(head1: Config) -> None:
    peer = apply_overrides(head1, {
        "timing": {"heartbeat_interval_ms": 500},
        "services": {"2": {"check": "false"}, "3": {"name": "sge", "check": "true"}},
        "aliases": {"1": {"deleted": True}},
    })
    assert differences(cluster_wide(head1), cluster_wide(peer)) == [
        "aliases[192.0.2.100]", "services[maui].check", "services[sge]", "timing.heartbeat_interval_ms"]
    assert differences(cluster_wide(head1), cluster_wide(head1)) == []
    assert differences({"timing": {"a": 1}}, {}) == ["timing"]


# -- versions and the merge rule ---------------------------------------------------------


def test_versions_are_ordered_by_counter_then_head() -> None:
    assert Version() < Version(1, "head2") < Version(2, "head1") < Version(2, "head2") < Version(3, "head1")
    assert bump(Version(2, "head2"), "head1") == Version(3, "head1")
    assert str(Version(3, "head1")) == "3@head1" and str(Version()) == "0"


def test_newer_settings_win() -> None:
    mine, newer = Advert("head1", Version(2, "head1"), "aa"), Advert("head2", Version(3, "head2"), "bb")
    adopt = merge(mine, newer)
    assert (adopt.outcome, adopt.adopt, adopt.version) == (Outcome.ADOPT_PEER, True, Version(3, "head2"))
    push = merge(newer, mine)
    assert (push.outcome, push.adopt, push.version) == (Outcome.PUSH_LOCAL, False, Version(3, "head2"))


def test_a_head_that_starts_with_older_settings_adopts_the_peers() -> None:
    restarted = Advert("head2", Version(), "file")
    result = merge(restarted, Advert("head1", Version(4, "head2"), "current"))
    assert result.outcome is Outcome.ADOPT_PEER and result.adopt


def test_equal_settings_keep_the_higher_version() -> None:
    result = merge(Advert("head1", Version(1, "head1"), "aa"), Advert("head2", Version(5, "head2"), "aa"))
    assert (result.outcome, result.adopt, result.version) == (Outcome.EQUAL, False, Version(5, "head2"))


def test_a_conflict_is_won_by_the_head_whose_name_sorts_first() -> None:
    head1, head2 = Advert("head1", Version(), "aa"), Advert("head2", Version(), "bb")
    assert (merge(head1, head2).outcome, merge(head1, head2).adopt) == (Outcome.CONFLICT, False)
    assert (merge(head2, head1).outcome, merge(head2, head1).adopt) == (Outcome.CONFLICT, True)


def test_both_heads_always_agree_on_who_adopts() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        a = Advert("head1", Version(rng.randint(0, 3), rng.choice(["", "head1", "head2"])), rng.choice("xy"))
        b = Advert("head2", Version(rng.randint(0, 3), rng.choice(["", "head1", "head2"])), rng.choice("xy"))
        one, other = merge(a, b), merge(b, a)
        if a.digest == b.digest:
            assert not one.adopt and not other.adopt and one.version == other.version
        else:
            assert one.adopt != other.adopt, (a, b)
            winner = b if one.adopt else a
            assert (one.version if one.adopt else other.version) == winner.version


# -- drift -------------------------------------------------------------------------------


def test_a_difference_settled_within_the_grace_raises_nothing() -> None:
    tracker = DriftTracker(beats=3)
    assert tracker.observe(0.0, 1.0, "a", "a") is None
    started = tracker.observe(10.0, 1.0, "a", "b")
    assert started is not None and started.new is DriftState.MISMATCH
    assert tracker.observe(12.0, 1.0, "a", "b") is None
    settled = tracker.observe(12.5, 1.0, "b", "b")
    assert settled is not None and (settled.old, settled.new) == (DriftState.MISMATCH, DriftState.IN_SYNC)


def test_a_lasting_difference_raises_drift_naming_the_keys_then_clears() -> None:
    tracker = DriftTracker(beats=3)
    tracker.observe(10.0, 1.0, "a", "b")
    assert tracker.observe(13.0, 1.0, "a", "b") is None                 # exactly 3 beats: not longer
    raised = tracker.observe(13.1, 1.0, "a", "b", ["timing.heartbeat_interval_ms", "services[pbs]"])
    assert raised is not None and raised.new is DriftState.DRIFT
    assert raised.text == ("cluster-wide settings differ from the peer's for 3.1 s (more than 3 heartbeats): "
                           "timing.heartbeat_interval_ms, services[pbs]")
    assert tracker.observe(20.0, 1.0, "a", "b") is None
    assert tracker.observe(25.0, 1.0, "a", None) is None and tracker.state is DriftState.DRIFT
    cleared = tracker.observe(26.0, 1.0, "b", "b")
    assert cleared is not None and (cleared.old, cleared.new) == (DriftState.DRIFT, DriftState.IN_SYNC)
    assert tracker.differing == ()


def test_time_without_the_peer_does_not_count() -> None:
    tracker = DriftTracker(beats=2)
    tracker.observe(0.0, 1.0, "a", "b")
    tracker.observe(1.0, 1.0, "a", None)
    assert tracker.observe(100.0, 1.0, "a", "b") is None                # the grace starts again
    raised = tracker.observe(102.5, 1.0, "a", "b")
    assert raised is not None and raised.text.endswith("(the peer's settings have not been received)")


def test_many_keys_are_counted() -> None:
    tracker = DriftTracker(beats=1)
    tracker.observe(0.0, 1.0, "a", "b", [f"k{i}" for i in range(8)])
    raised = tracker.observe(2.0, 1.0, "a", "b")
    assert raised is not None and raised.text.endswith("k0, k1, k2, k3, k4 and 3 more")


# -- cross-head consistency --------------------------------------------------------------


def test_same_settings_have_no_cross_head_problem(head1: Config, head2: Config) -> None:
    assert cross_head_problems(head1, cluster_wide(head2)) == []


def test_heartbeat_timing_is_checked_as_both_heads_would_apply_it(head1: Config) -> None:
    peer = cluster_wide(head1)
    slower = apply_overrides(head1, {"timing": {"heartbeat_interval_ms": 2000, "heartbeat_dead_time_ms": 6000,
                                                "initdead_ms": 6000}})
    found = dict(cross_head_problems(slower, peer))
    # The peer still declares this head dead after 3000 ms, which is 1.5 of its new beats.
    assert set(found) == {"timing.heartbeat_interval_ms"}
    assert "third of the peer's heartbeat_dead_time_ms = 1000" in found["timing.heartbeat_interval_ms"]
    faster = apply_overrides(head1, {"timing": {"heartbeat_interval_ms": 200, "heartbeat_dead_time_ms": 600}})
    found = dict(cross_head_problems(faster, peer))
    assert set(found) == {"timing.heartbeat_dead_time_ms"}
    assert ">= 3 x the peer's heartbeat_interval_ms = 3000 (got 600)" in found["timing.heartbeat_dead_time_ms"]
    # Both ways at once is fine once each dead time covers three of the other's beats.
    ok = apply_overrides(head1, {"timing": {"heartbeat_interval_ms": 500, "heartbeat_dead_time_ms": 3000}})
    assert cross_head_problems(ok, peer) == []


def test_lan_timing_and_poller_are_checked_on_both_heads(head1: Config) -> None:
    peer = cluster_wide(head1)
    peer["timing"]["lan_down_after_ms"] = 1500
    peer["lan"]["poller"] = "active"
    found = dict(cross_head_problems(head1, peer))
    assert "below 2 x its lan_poll_interval_ms = 2000" in found["timing.lan_down_after_ms"]
    assert "neither head reports LAN faults" in found["lan.poller"]
    peer["lan"]["poller"] = "both"
    assert "lan.poller" not in dict(cross_head_problems(head1, peer))


def test_the_pair_port_and_public_path_must_match(head1: Config) -> None:
    peer = cluster_wide(head1)
    peer["heads"][1]["lan_a"] = "10.0.1.3"
    peer["heads"][1]["preferred_role"] = "primary"
    peer["heartbeat"]["port"] = 7790
    peer["heartbeat"]["public_path"] = False
    found = dict(cross_head_problems(head1, peer))
    assert set(found) == {"heads[head2].lan_a", "heads[head2].preferred_role", "heartbeat.port",
                          "heartbeat.public_path"}
    assert found["heartbeat.port"].startswith("7789 here, 7790 on the peer")


def test_a_malformed_peer_is_not_a_crash(head1: Config) -> None:
    assert cross_head_problems(head1, {"timing": "x", "lan": {"poller": "sideways"}}) == []


# -- changing the heartbeat timing on both heads ------------------------------------------


def beat(interval: int, dead: int, initdead: int | None = None) -> dict[str, int]:
    return {"heartbeat_interval_ms": interval, "heartbeat_dead_time_ms": dead,
            "initdead_ms": dead if initdead is None else initdead}


def test_a_change_safe_while_the_heads_differ_goes_in_one_step() -> None:
    assert stage_timing(beat(1000, 3000), beat(800, 3000)) is None
    assert stage_timing(beat(200, 3000), beat(100, 1000)) is None       # 1000 >= 3 x the old 200
    assert stage_timing(beat(200, 1000), beat(300, 1000)) is None


def test_a_slow_down_raises_the_dead_time_first() -> None:
    stage = stage_timing(beat(200, 1000, 5000), beat(1500, 4500, 5000))
    assert stage is not None
    assert stage.intermediate == beat(200, 4500, 5000)
    assert stage.settle_s == 0.0              # nothing falls in step 2: no wait


def test_a_speed_up_beats_faster_first_and_lowers_the_dead_time_one_old_beat_later() -> None:
    stage = stage_timing(beat(1500, 4500, 5000), beat(200, 1000, 5000))
    assert stage is not None
    assert stage.intermediate == beat(200, 4500, 5000)
    assert stage.settle_s == pytest.approx(1.5 + 0.25)


def test_the_peers_timing_as_known_counts_when_it_differs() -> None:
    # This head runs 200/1000, the peer still 1000/3000 (a drift): a change to 300/1000
    # is safe here but not against the peer's beat, and the intermediate covers both.
    stage = stage_timing(beat(200, 1000), beat(300, 1000), beat(1000, 3000))
    assert stage is not None and stage.intermediate == beat(200, 3000)


def _timings() -> list[dict[str, int]]:
    out = []
    for interval in (10, 100, 200, 333, 1000, 1500, 5000, 20000):
        for dead in {3 * interval, 3 * interval + 1, 4 * interval, 10 * interval, 1000, 4500, 15000, 600000}:
            if 30 <= dead <= 600000 and dead >= 3 * interval:
                for initdead in {dead, 2 * dead, 30000}:
                    if initdead >= dead and initdead <= 3600000:
                        out.append(beat(interval, dead, initdead))
    return out


def test_every_mix_of_old_intermediate_and_new_timing_between_the_heads_is_safe(head1: Config) -> None:
    """Whatever step each head has reached when a step fails or is under way, neither
    misjudges the other; and the intermediate is a timing the rules accept."""
    timings = _timings()
    rng = random.Random(7)
    cases = [(old, new, None) for old in timings for new in timings]
    cases += [(rng.choice(timings), rng.choice(timings), rng.choice(timings)) for _ in range(20000)]
    staged = 0
    for old, new, peer in cases:
        stage = stage_timing(old, new, peer)
        before = [old] + ([peer] if peer is not None else [])
        if stage is None:
            for other in before:                         # one step: old and new side by side
                assert timing_problems(new, other) == [] and timing_problems(other, new) == [], (old, new, peer)
            continue
        staged += 1
        middle = stage.intermediate
        assert timing_problems(middle, middle) == []
        assert middle["initdead_ms"] >= middle["heartbeat_dead_time_ms"]
        for first in before + [middle, new]:
            for second in [middle] + ([new] if first is middle else []):
                assert timing_problems(first, second) == [] and timing_problems(second, first) == [], \
                    (old, new, peer, first, second)
        # The beat only ever speeds up in step 1, and step 2 waits for it when a dead time falls.
        longest = max(t["heartbeat_interval_ms"] for t in before)
        sped_up = middle["heartbeat_interval_ms"] < longest
        if sped_up and new["heartbeat_dead_time_ms"] < middle["heartbeat_dead_time_ms"]:
            assert stage.settle_s >= longest / 1000.0
    assert staged > 1000
    # And validated as the SET path validates it, on a real configuration.
    stage = stage_timing(beat(200, 1000, 5000), beat(1500, 4500, 5000))
    assert stage is not None
    apply_overrides(head1, {"timing": {**beat(1500, 4500, 5000), **stage.intermediate}})


def test_the_heartbeat_relations_are_the_cross_head_check(head1: Config) -> None:
    peer = cluster_wide(head1)
    slower = apply_overrides(head1, {"timing": beat(2000, 6000)})
    assert cross_head_problems(slower, peer) == timing_problems(cluster_wide(slower)["timing"], peer["timing"])


def test_after_adoption_the_peer_holds_our_expressible_settings(head1: Config) -> None:
    peer = cluster_wide(head1)
    peer["lan"]["poller"] = "both"                            # the peer's file: stays
    ours = cluster_wide(apply_overrides(head1, {"timing": beat(1500, 4500, 5000), "notify_email": ""}))
    after = after_adoption(peer, ours)
    assert after["timing"] == ours["timing"] and after["lan"]["poller"] == "both"
    assert after["notify"]["email"]["to"] == []
    assert peer["timing"] != ours["timing"]                   # the peer's own copy is untouched
    assert cross_head_problems(apply_overrides(head1, {"timing": beat(1500, 4500, 5000)}), after) == []


# -- adoption ----------------------------------------------------------------------------


def adopt(local_file: Config, peer: Config, overrides: dict | None = None, pending: dict | None = None):
    adoption = apply_cluster_wide(local_file, overrides or {}, cluster_wide(peer), pending)
    # What the store would persist, read back: the overrides survive JSON.
    persisted = json.loads(json.dumps(adoption.overrides))
    return adoption, apply_overrides(local_file, persisted)


def test_adopting_the_peers_changes_makes_the_settings_equal(head1: Config, head2: Config) -> None:
    peer = apply_overrides(head1, {
        "timing": {"heartbeat_interval_ms": 500, "auto_failback": False},
        "notify_email": "night@example.org",
        "services": {"1": {"deleted": True}, "2": {"check": "false", "row_status": "notInService"},
                     "7": {"name": "sge", "check": "true", "recovery": "notify-only"}},
        "aliases": {"4": {"address": "192.0.2.101", "prefix_length": 24, "interface": "eth0"}},
    })
    adoption, effective = adopt(head2, peer)
    assert adoption.not_expressible == []
    assert cluster_wide(effective) == cluster_wide(peer)
    assert adoption.overrides == {
        "timing": {"heartbeat_interval_ms": 500, "auto_failback": False},
        "notify_email": "night@example.org",
        "services": {"1": {"deleted": True}, "2": {"check": "false", "row_status": "notInService"},
                     "7": {**{k: v for k, v in cluster_wide(peer)["services"][1].items() if k != "index"}}},
        "aliases": {"4": {"address": "192.0.2.101", "prefix_length": 24, "interface": "eth0",
                          "row_status": "active"}},
    }
    # Per-head values stay this head's own.
    assert effective.cluster.local_head == "head2" and effective.log.level == head2.log.level


def test_a_row_only_in_the_peers_file_is_created(head1: Config) -> None:
    peer_file = parse(edit(HEAD1, "[timing]", '[[services]]\nindex = 9\nname = "nfs"\ncheck = "true"\n'
                                              'start = "exportfs -a"\nactive_only = true\n\n[timing]'))
    adoption, effective = adopt(head1, peer_file)
    assert adoption.overrides["services"]["9"]["start"] == "exportfs -a"
    assert cluster_wide(effective) == cluster_wide(peer_file)


def test_overrides_are_minimal_and_replace_our_own_cluster_wide_sets(head1: Config) -> None:
    ours = {"timing": {"garp_count": 9}, "services": {"2": {"check": "false"}}, "notify_email": "me@example.org"}
    adoption, effective = adopt(head1, head1, ours)
    assert adoption.overrides == {}
    assert effective == head1


def test_a_notready_row_at_an_index_the_peer_uses_is_dropped(head1: Config) -> None:
    peer = apply_overrides(head1, {"services": {"5": {"name": "sge", "check": "true"}}})
    pending = {"services": {5: {"name": "half", "row_status": "notReady"},
                            6: {"name": "other", "row_status": "notReady"}}}
    adoption = apply_cluster_wide(head1, {}, cluster_wide(peer), pending)
    assert adoption.pending == {"services": {6: {"name": "other", "row_status": "notReady"}}}


def test_what_the_overrides_cannot_express_is_listed(head1: Config) -> None:
    peer = cluster_wide(head1)
    peer["lan"]["poller"] = "both"
    peer["nodes"].append({"name": "n2", "lan_a": "10.0.1.12", "lan_b": None})
    peer["notify"]["email"]["to"] = ["a@example.org", "b@example.org"]
    peer["notify"]["email"]["enabled"] = False
    peer["timing"]["future_knob_ms"] = 5
    adoption = apply_cluster_wide(head1, {"notify_email": "me@example.org"}, peer)
    assert adoption.not_expressible == ["lan.poller", "nodes[n2]", "notify.email.enabled", "notify.email.to",
                                        "timing.future_knob_ms"]
    assert adoption.overrides == {"notify_email": "me@example.org"}  # left as it was


def test_settings_of_another_format_are_refused(head1: Config) -> None:
    with pytest.raises(ValueError, match="format"):
        apply_cluster_wide(head1, {}, {**cluster_wide(head1), "format": SETTINGS_FORMAT + 1})
