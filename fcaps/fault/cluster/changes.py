"""What changed between two successive views of the cluster, as an NMS should hear it.

Pure: `diff(old, new)` compares two `ClusterView`s and returns the changes, in a fixed
order (membership first, then quorum, then resources by id). Nothing is returned when
nothing an NMS could be told changed; the tables may still change (a node's standby
flag, a fail count of a resource that did not fail anew), and the watch counts those.

The kinds:

* **membership unknown / recovered**: Corosync (subject "corosync") or Pacemaker
  (subject "pacemaker") could be read and no longer can, or the reverse. While a side
  is unknown nothing else is said about it; when it is known again, only that is said
  (what happened meanwhile is in the tables, which an NMS re-reads then).
* **node joined / left**: a node of Corosync's nodelist entered or left the membership
  (a node that appears in or disappears from the nodelist counts as joining or leaving
  only if it is online).
* **quorum lost / regained**: the local partition's quorate flag.
* **resource moved**: a resource's node or role changed, including a start (from no
  node) and a stop (to no node); a resource that disappears while it ran is told
  stopped, one that appears running is told started. Pacemaker's transitional roles
  (Starting, Stopping, Promoting, Demoting, Migrating: an action under way) are shown in
  the tables but told only when the resource settles, as one move from where the view
  before had it; the watch names the last settled place instead, and tells nothing
  when the resource settled where it was (a restart in place).
* **resource failed**: Pacemaker marks it failed, or its fail count grew.
* **resource recovered**: it is no longer marked failed and runs; a resource whose fail
  count grew and that runs again unmarked in the same view (recovered in place, as a
  restart after a failed monitor) is told failed, then recovered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .model import ClusterView, Member, Membership, Placement, Resource


class ChangeKind(enum.Enum):
    MEMBERSHIP_UNKNOWN = "membership unknown"
    MEMBERSHIP_RECOVERED = "membership recovered"
    NODE_JOINED = "node joined"
    NODE_LEFT = "node left"
    QUORUM_LOST = "quorum lost"
    QUORUM_REGAINED = "quorum regained"
    RESOURCE_MOVED = "resource moved"
    RESOURCE_FAILED = "resource failed"
    RESOURCE_RECOVERED = "resource recovered"


# Roles crm_mon shows while an action is under way.
PENDING = frozenset({"Starting", "Stopping", "Promoting", "Demoting", "Migrating"})

COROSYNC = "corosync"
PACEMAKER = "pacemaker"


@dataclass(frozen=True)
class Change:
    """One change. `subject` is a node's name, a resource's id, "corosync" or
    "pacemaker" (membership), or "" (quorum: the cluster). For a node, `node_id`; for a
    resource, the row before (`before`, None if it is new) and after (`after`, None if
    it is gone). `old` and `new` say what changed, in words ("node1", "Started")."""

    kind: ChangeKind
    subject: str
    text: str
    old: str = ""
    new: str = ""
    node_id: int = 0
    before: Resource | None = None
    after: Resource | None = None


def diff(old: ClusterView, new: ClusterView) -> list[Change]:
    changes: list[Change] = []
    changes += _known(COROSYNC, old.membership, new.membership)
    if old.membership is not None and new.membership is not None:
        changes += _members(old.membership, new.membership)
        changes += _quorum(old.membership, new.membership)
    changes += _known(PACEMAKER, old.placement, new.placement)
    if old.placement is not None and new.placement is not None:
        changes += _resources(old.placement, new.placement)
    return changes


def _known(side: str, old: object | None, new: object | None) -> list[Change]:
    if old is not None and new is None:
        return [Change(ChangeKind.MEMBERSHIP_UNKNOWN, side, f"{side} cannot be read: its view is unknown")]
    if old is None and new is not None:
        return [Change(ChangeKind.MEMBERSHIP_RECOVERED, side, f"{side} can be read again")]
    return []


def _members(old: Membership, new: Membership) -> list[Change]:
    before: dict[int, Member] = {m.node_id: m for m in old.members}
    after: dict[int, Member] = {m.node_id: m for m in new.members}
    out = []
    for node_id in sorted(before.keys() | after.keys()):
        was, now = before.get(node_id), after.get(node_id)
        was_on, now_on = bool(was and was.online), bool(now and now.online)
        member = now or was
        assert member is not None
        if now_on and not was_on:
            out.append(Change(ChangeKind.NODE_JOINED, member.name, f"node {member.name} joined the membership",
                              node_id=node_id))
        elif was_on and not now_on:
            out.append(Change(ChangeKind.NODE_LEFT, member.name, f"node {member.name} left the membership",
                              node_id=node_id))
    return out


def _quorum(old: Membership, new: Membership) -> list[Change]:
    q = new.quorum
    votes = f"{q.total_votes} of {q.expected_votes} expected votes, ring {q.ring_id}"
    if old.quorum.quorate and not q.quorate:
        return [Change(ChangeKind.QUORUM_LOST, "", f"quorum lost: {votes}")]
    if q.quorate and not old.quorum.quorate:
        return [Change(ChangeKind.QUORUM_REGAINED, "", f"quorum regained: {votes}")]
    return []


def where(row: Resource | None) -> str:
    """A resource's place in words: "Started on node1", "Stopped"."""
    if row is None or not row.node:
        return row.role if row is not None and row.role else "Stopped"
    return f"{row.role} on {row.node}"


def _resources(old: Placement, new: Placement) -> list[Change]:
    before = {r.resource_id: r for r in old.resources}
    after = {r.resource_id: r for r in new.resources}
    out = []
    for rid in sorted(before.keys() | after.keys()):
        was, now = before.get(rid), after.get(rid)
        settled = now is None or now.role not in PENDING
        if settled and ((was.node if was else "") != (now.node if now else "") or
                        (was and now and (was.node or now.node) and was.role != now.role)):
            text = f"resource {rid}: {where(was)} -> {where(now)}"
            out.append(Change(ChangeKind.RESOURCE_MOVED, rid, text, where(was), where(now),
                              before=was, after=now))
        if now is None:
            continue
        grew = was is not None and now.fail_count > was.fail_count
        if (now.failed and not (was and was.failed)) or grew:
            text = f"resource {rid} failed on {now.node or 'no node'}: fail count {now.fail_count}, " \
                   f"last result {now.last_result or 'none'}"
            out.append(Change(ChangeKind.RESOURCE_FAILED, rid, text, before=was, after=now))
        if not now.failed and now.node and ((was is not None and was.failed) or grew):
            out.append(Change(ChangeKind.RESOURCE_RECOVERED, rid, f"resource {rid} recovered: {where(now)}",
                              before=was, after=now))
    return out
