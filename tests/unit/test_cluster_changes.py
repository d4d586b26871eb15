"""The differ between two views: every kind of change, and nothing when nothing changed."""

from __future__ import annotations

from dataclasses import replace

from clusterviews import membership, placement, resource, view, vip

from fcaps.fault.cluster.changes import ChangeKind as K
from fcaps.fault.cluster.changes import diff
from fcaps.fault.cluster.model import ClusterView


def kinds(old: ClusterView, new: ClusterView) -> list[tuple[K, str]]:
    return [(c.kind, c.subject) for c in diff(old, new)]


def test_nothing_changed() -> None:
    assert diff(view(), view()) == []
    assert diff(ClusterView(), ClusterView()) == []


def test_what_no_notification_tells_changes_nothing() -> None:
    # a latency, a ring id's sequence with the same members, a standby flag: tables only
    old = view()
    new = view(membership(latency=900), placement(node2={"standby": True}))
    assert diff(old, new) == []


def test_a_node_leaves_and_joins() -> None:
    left = view(membership(online=("node1", "node2")))
    assert kinds(view(), left) == [(K.NODE_LEFT, "node3")]
    change = diff(view(), left)[0]
    assert change.node_id == 3 and "node3 left" in change.text
    assert kinds(left, view()) == [(K.NODE_JOINED, "node3")]


def test_quorum_lost_and_regained() -> None:
    alone = view(membership(online=("node1",), quorate=False))
    assert kinds(view(), alone) == [(K.NODE_LEFT, "node2"), (K.NODE_LEFT, "node3"), (K.QUORUM_LOST, "")]
    assert "1 of 3 expected votes" in diff(view(), alone)[-1].text
    assert kinds(alone, view()) == [(K.NODE_JOINED, "node2"), (K.NODE_JOINED, "node3"),
                                    (K.QUORUM_REGAINED, "")]


def test_corosync_unknown_and_recovered_say_only_that() -> None:
    lost = ClusterView(None, placement())
    assert kinds(view(), lost) == [(K.MEMBERSHIP_UNKNOWN, "corosync")]
    back = view(membership(online=("node1",), quorate=False))     # much changed meanwhile
    assert kinds(lost, back) == [(K.MEMBERSHIP_RECOVERED, "corosync")]


def test_pacemaker_unknown_and_recovered() -> None:
    lost = ClusterView(membership(), None)
    assert kinds(view(), lost) == [(K.MEMBERSHIP_UNKNOWN, "pacemaker")]
    assert kinds(lost, view(p=placement(vip("node2")))) == [(K.MEMBERSHIP_RECOVERED, "pacemaker")]


def test_a_resource_moves() -> None:
    changes = diff(view(), view(p=placement(vip("node2"), resource("web", "node2"))))
    assert [(c.kind, c.subject, c.old, c.new) for c in changes] == [
        (K.RESOURCE_MOVED, "vip", "Started on node1", "Started on node2")]


def test_a_stop_a_start_and_a_promotion_are_moves() -> None:
    stopped = view(p=placement(vip(""), resource("web", "node2")))
    assert [(c.old, c.new) for c in diff(view(), stopped)] == [("Started on node1", "Stopped")]
    assert [(c.old, c.new) for c in diff(stopped, view())] == [("Stopped", "Started on node1")]
    promoted = view(p=placement(vip(), resource("web", "node2", role="Promoted")))
    assert [(c.kind, c.new) for c in diff(view(), promoted)] == [(K.RESOURCE_MOVED, "Promoted on node2")]


def test_a_resource_that_disappears_while_running_is_told_stopped() -> None:
    gone = view(p=placement(vip()))
    changes = diff(view(), gone)
    assert [(c.kind, c.subject, c.new, c.after) for c in changes] == [(K.RESOURCE_MOVED, "web", "Stopped", None)]
    assert changes[0].before == resource("web", "node2")
    assert [(c.kind, c.old) for c in diff(gone, view())] == [(K.RESOURCE_MOVED, "Stopped")]


def test_a_stopped_resource_that_goes_away_says_nothing() -> None:
    with_idle = view(p=placement(vip(), resource("web", "node2"), resource("idle", "")))
    assert diff(with_idle, view()) == [] and diff(view(), with_idle) == []


def test_a_resource_fails_and_recovers() -> None:
    failed = view(p=placement(vip(failed=True, fail_count=1, last_result="error"), resource("web", "node2")))
    changes = diff(view(), failed)
    assert [(c.kind, c.subject) for c in changes] == [(K.RESOURCE_FAILED, "vip")]
    assert "fail count 1" in changes[0].text and "error" in changes[0].text
    healed = view(p=placement(vip(fail_count=1), resource("web", "node2")))
    assert kinds(failed, healed) == [(K.RESOURCE_RECOVERED, "vip")]


def test_a_failure_recovered_in_place_is_told_failed_then_recovered() -> None:
    restarted = view(p=placement(vip(), resource("web", "node2", fail_count=1)))
    assert kinds(view(), restarted) == [(K.RESOURCE_FAILED, "web"), (K.RESOURCE_RECOVERED, "web")]


def test_a_failure_that_stops_the_resource_is_not_recovered() -> None:
    stopped = view(p=placement(vip(), resource("web", "", fail_count=1000000)))
    assert kinds(view(), stopped) == [(K.RESOURCE_MOVED, "web"), (K.RESOURCE_FAILED, "web")]


def test_a_cleanup_of_the_fail_count_changes_nothing_told() -> None:
    counted = view(p=placement(vip(fail_count=2), resource("web", "node2")))
    assert diff(counted, view()) == []


def test_the_order_is_membership_quorum_then_resources_by_id() -> None:
    new = view(membership(online=("node1", "node2"), quorate=True),
               placement(vip("node2"), resource("web", "")))
    assert kinds(view(), new) == [(K.NODE_LEFT, "node3"), (K.RESOURCE_MOVED, "vip"),
                                  (K.RESOURCE_MOVED, "web")]
    assert replace(new) == new


def test_transitional_roles_are_told_once_settled() -> None:
    stopping = view(p=placement(vip(role="Stopping"), resource("web", "node2")))
    starting = view(p=placement(vip("node2", role="Starting"), resource("web", "node2")))
    started = view(p=placement(vip("node2"), resource("web", "node2")))
    assert diff(view(), stopping) == [] and diff(stopping, starting) == []
    assert [(c.old, c.new) for c in diff(starting, started)] == [("Starting on node2", "Started on node2")]
