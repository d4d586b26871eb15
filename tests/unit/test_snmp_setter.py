"""snmp.setter.SetHandler: phase one of SET, against a fake configuration source.

Each refused SET must name the RFC 3416 error status and the 0-based position of the
var-bind at fault, and must change nothing; an accepted one yields a plan listing every
change as old -> new. Row creation follows RFC 2579 RowStatus.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from fakes import FakeConfigSource, FakeProblem
from pysnmp.entity import engine
from pysnmp.entity.rfc3413 import context
from pysnmp.proto.rfc1902 import Integer32, OctetString, Unsigned32

from fcaps.configuration.mibmap import CONFIG_MAP
from haoscar_snmp.config.errors import CommitRefused
from haoscar_snmp.config.schema import Config
from haoscar_snmp.core.state import ControlAction, RowStatus, SecurityCounters
from haoscar_snmp.snmp.mib import OID, MibModel
from haoscar_snmp.snmp.responders import SetResponder
from haoscar_snmp.snmp.setter import SetError, SetHandler

CREATE_AND_GO, CREATE_AND_WAIT, DESTROY = Integer32(4), Integer32(5), Integer32(6)
ACTIVE, NOT_IN_SERVICE, NOT_READY = Integer32(1), Integer32(2), Integer32(3)


@pytest.fixture
def source(cfg: Config) -> FakeConfigSource:
    return FakeConfigSource(cfg)


@pytest.fixture
def handler(mib: MibModel, source: FakeConfigSource) -> SetHandler:
    return SetHandler(mib, source, CONFIG_MAP)


@pytest.fixture
def o(mib: MibModel):
    def oid(name: str, *instance: int) -> OID:
        return mib[name].oid + (instance or (0,))
    return oid


def refuse(handler: SetHandler, varbinds: list[tuple[OID, Any]]) -> SetError:
    with pytest.raises(SetError) as info:
        handler.prepare(varbinds)
    return info.value


# -- one bad var-bind, alone and between two good ones ---------------------------------

BAD = {
    # wrongType: the ASN.1 tag must be the object's
    "octets into Unsigned32": ("haoscarHeartbeatInterval", (0,), OctetString("1000"), "wrongType"),
    "Integer32 into Unsigned32": ("haoscarHeartbeatInterval", (0,), Integer32(1000), "wrongType"),
    "Unsigned32 into DisplayString": ("haoscarNotifyEmail", (0,), Unsigned32(1), "wrongType"),
    "Unsigned32 into an enum": ("haoscarControlAction", (0,), Unsigned32(2), "wrongType"),
    "octets into RowStatus": ("haoscarServiceRowStatus", (1,), OctetString("active"), "wrongType"),
    # wrongValue: range, enumeration, printable text, RowStatus notReady
    "below the range": ("haoscarHeartbeatInterval", (0,), Unsigned32(9), "wrongValue"),
    "above the range": ("haoscarHeartbeatInterval", (0,), Unsigned32(60001), "wrongValue"),
    "column range": ("haoscarServiceRetryThreshold", (1,), Unsigned32(101), "wrongValue"),
    "not in the enum": ("haoscarControlAction", (0,), Integer32(9), "wrongValue"),
    "TruthValue 3": ("haoscarAutoFailback", (0,), Integer32(3), "wrongValue"),
    "column enum": ("haoscarServiceRecovery", (1,), Integer32(0), "wrongValue"),
    "control character": ("haoscarNotifyEmail", (0,), OctetString(b"ops\x01@example.org"), "wrongValue"),
    "non-ASCII byte": ("haoscarServiceName", (1,), OctetString(b"caf\xe9"), "wrongValue"),
    "not an e-mail address": ("haoscarNotifyEmail", (0,), OctetString("nobody"), "wrongValue"),
    "not an IP address": ("haoscarAliasAddress", (1,), OctetString("10.0.0.300"), "wrongValue"),
    "interval the schema refuses": ("haoscarServiceInterval", (1,), Unsigned32(50), "wrongValue"),
    "RowStatus notReady": ("haoscarServiceRowStatus", (1,), NOT_READY, "wrongValue"),
    "RowStatus 7": ("haoscarServiceRowStatus", (1,), Integer32(7), "wrongValue"),
    # wrongLength: the DisplayString SIZE
    "name too long": ("haoscarServiceName", (1,), OctetString("x" * 33), "wrongLength"),
    "name empty": ("haoscarServiceName", (1,), OctetString(""), "wrongLength"),
    "email too long": ("haoscarNotifyEmail", (0,), OctetString("a" * 256), "wrongLength"),
    "interface too long": ("haoscarAliasInterface", (1,), OctetString("e" * 16), "wrongLength"),
    # notWritable: read-only or not an object at all
    "read-only scalar": ("haoscarClusterName", (0,), OctetString("x"), "notWritable"),
    "read-only column": ("haoscarServiceState", (1,), Integer32(2), "notWritable"),
    "read-only counter": ("haoscarFailoverCount", (0,), Unsigned32(0), "notWritable"),
    "index column": ("haoscarServiceIndex", (1,), Unsigned32(1), "notWritable"),
    "notify-only object": ("haoscarNotifyReason", (0,), OctetString("x"), "notWritable"),
    # noCreation: instances that can never exist
    "scalar .1": ("haoscarHeartbeatInterval", (1,), Unsigned32(1000), "noCreation"),
    "scalar .0.0": ("haoscarHeartbeatInterval", (0, 0), Unsigned32(1000), "noCreation"),
    "column of a missing row": ("haoscarServiceName", (9,), OctetString("web"), "noCreation"),
    "index 0": ("haoscarServiceName", (0,), OctetString("web"), "noCreation"),
    "index 65536": ("haoscarServiceRowStatus", (65536,), CREATE_AND_GO, "noCreation"),
    "two-part index": ("haoscarServiceName", (1, 1), OctetString("web"), "noCreation"),
    # inconsistentValue: RowStatus rules
    "createAndGo on an existing row": ("haoscarServiceRowStatus", (1,), CREATE_AND_GO, "inconsistentValue"),
    "createAndWait on an existing row": ("haoscarServiceRowStatus", (2,), CREATE_AND_WAIT, "inconsistentValue"),
    "createAndGo without mandatory columns": ("haoscarServiceRowStatus", (9,), CREATE_AND_GO, "inconsistentValue"),
    "active on a missing row": ("haoscarServiceRowStatus", (9,), ACTIVE, "inconsistentValue"),
    "alias without address": ("haoscarAliasRowStatus", (3,), CREATE_AND_GO, "inconsistentValue"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_bad_var_bind_alone_is_refused_at_position_0(case: str, handler: SetHandler,
                                                        source: FakeConfigSource, o) -> None:
    name, instance, value, status = BAD[case]
    err = refuse(handler, [(o(name, *instance), value)])
    assert (err.status, err.index) == (status, 0), err.why
    assert source.overrides() == {} and source.pending() == {}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_a_bad_var_bind_is_blamed_by_its_position(case: str, handler: SetHandler, o) -> None:
    name, instance, value, status = BAD[case]
    err = refuse(handler, [(o("haoscarGarpCount"), Unsigned32(7)),
                           (o(name, *instance), value),
                           (o("haoscarFailbackDelay"), Unsigned32(30))])
    assert (err.status, err.index) == (status, 1), err.why


def test_an_oid_in_our_subtree_that_names_nothing_is_not_writable(handler: SetHandler, mib: MibModel) -> None:
    for oid in (mib.root + (1, 99, 0), mib.root + (0, 1), mib.root, mib["haoscarServiceEntry"].oid):
        err = refuse(handler, [(oid, Integer32(1))])
        assert (err.status, err.index) == ("notWritable", 0), oid


def test_the_first_bad_var_bind_is_the_one_reported(handler: SetHandler, o) -> None:
    err = refuse(handler, [(o("haoscarGarpCount"), Unsigned32(7)),
                           (o("haoscarHeartbeatInterval"), OctetString("x")),
                           (o("haoscarClusterName"), OctetString("x"))])
    assert (err.status, err.index) == ("wrongType", 1)


def test_a_row_status_set_twice_for_one_row_is_inconsistent(handler: SetHandler, o) -> None:
    err = refuse(handler, [(o("haoscarServiceRowStatus", 1), NOT_IN_SERVICE),
                           (o("haoscarServiceRowStatus", 1), ACTIVE)])
    assert (err.status, err.index) == ("inconsistentValue", 1)


def test_missing_mandatory_columns_are_blamed_on_the_row_status(handler: SetHandler, o) -> None:
    err = refuse(handler, [(o("haoscarServiceName", 9), OctetString("web")),
                           (o("haoscarServiceRowStatus", 9), CREATE_AND_GO)])
    assert (err.status, err.index) == ("inconsistentValue", 1)
    assert "check" in err.why


# -- the configuration's own cross-field rules ----------------------------------------

def test_problems_from_check_make_the_set_inconsistent(handler: SetHandler, source: FakeConfigSource,
                                                       o) -> None:
    source.problems = [FakeProblem("overrides.timing.heartbeat_dead_time_ms",
                                   "must be >= 3 x heartbeat_interval_ms")]
    err = refuse(handler, [(o("haoscarNotifyEmail"), OctetString("ops@example.org")),
                           (o("haoscarHeartbeatInterval"), Unsigned32(1000)),
                           (o("haoscarHeartbeatDeadTime"), Unsigned32(2000))])
    assert err.status == "inconsistentValue"
    assert err.index == 2  # the var-bind the problem is about
    assert "heartbeat_dead_time_ms: must be >= 3" in err.why
    assert source.checked == [{"notify_email": "ops@example.org",
                               "timing": {"heartbeat_interval_ms": 1000,
                                          "heartbeat_dead_time_ms": 2000}}]


def test_a_problem_about_no_var_bind_in_particular_blames_the_first(handler: SetHandler,
                                                                    source: FakeConfigSource, o) -> None:
    source.problems = [FakeProblem("x", "y")]
    err = refuse(handler, [(o("haoscarGarpCount"), Unsigned32(7)),
                           (o("haoscarServiceRowStatus", 9), CREATE_AND_GO),
                           (o("haoscarServiceName", 9), OctetString("always-healthy")),
                           (o("haoscarServiceCheck", 9), OctetString("true"))])
    assert (err.status, err.index) == ("inconsistentValue", 0)
    assert "x: y" in err.why


def test_a_problem_blames_the_var_bind_that_set_the_value_it_names(handler: SetHandler,
                                                                   source: FakeConfigSource, o) -> None:
    varbinds = [(o("haoscarGarpCount"), Unsigned32(7)),
                (o("haoscarServiceRowStatus", 9), CREATE_AND_GO),
                (o("haoscarServiceName", 9), OctetString("always-healthy")),
                (o("haoscarServiceCheck", 9), OctetString("true"))]
    source.problems = [FakeProblem("overrides.services.9.name", "duplicate"), FakeProblem("x", "y")]
    err = refuse(handler, varbinds)
    assert (err.status, err.index) == ("inconsistentValue", 2)
    assert "overrides.services.9.name: duplicate" in err.why and "x: y" in err.why
    # A value of the row that no var-bind set: a var-bind of the same row.
    source.problems = [FakeProblem("overrides.services.9.interval_ms", "too short for the timeout")]
    assert refuse(handler, varbinds).index == 1
    # A whole-table check names the row by its place: the var-bind that set that column.
    source.problems = [FakeProblem("services.0.check", "duplicate")]
    assert refuse(handler, varbinds).index == 3


def test_a_column_value_no_row_could_take_is_wrongvalue_at_its_var_bind(handler: SetHandler,
                                                                        source: FakeConfigSource, o) -> None:
    err = refuse(handler, [(o("haoscarAliasRowStatus", 3), CREATE_AND_GO),
                           (o("haoscarAliasInterface", 3), OctetString("eth0")),
                           (o("haoscarAliasAddress", 3), OctetString("10.0.0.300"))])
    assert (err.status, err.index) == ("wrongValue", 2)
    assert "not an IPv4 or IPv6 address" in err.why
    assert source.checked == []     # refused before the configuration rules run


def test_operator_actions_are_not_configuration(handler: SetHandler, source: FakeConfigSource, o) -> None:
    plan = handler.prepare([(o("haoscarControlAction"), Integer32(2))])
    assert plan.actions == [ControlAction.SWITCHOVER]
    assert not plan.config_changed
    assert plan.overrides == {}
    assert source.checked == []  # nothing for the configuration rules to check


# -- accepted SETs ----------------------------------------------------------------------

def test_a_valid_multi_var_bind_set_plans_every_change(handler: SetHandler, source: FakeConfigSource,
                                                       o) -> None:
    plan = handler.prepare([(o("haoscarHeartbeatInterval"), Unsigned32(1000)),
                            (o("haoscarHeartbeatDeadTime"), Unsigned32(3000)),
                            (o("haoscarNotifyEmail"), OctetString("ops@example.org")),
                            (o("haoscarServiceRetryThreshold", 2), Unsigned32(5))])
    assert plan.config_changed
    assert plan.overrides["timing"] == {"heartbeat_interval_ms": 1000, "heartbeat_dead_time_ms": 3000}
    assert plan.overrides["notify_email"] == "ops@example.org"
    assert plan.overrides["services"]["2"]["retry_threshold"] == 5
    assert plan.overrides["services"]["2"]["name"] == "tmp-writable"  # the rest of the row is kept
    assert [(c.name, c.old, c.new) for c in plan.changes] == [
        ("haoscarHeartbeatInterval", "5000", "1000"),
        ("haoscarHeartbeatDeadTime", "15000", "3000"),
        ("haoscarNotifyEmail", "", "ops@example.org"),
        ("haoscarServiceRetryThreshold", "2", "5"),
    ]
    assert [c.oid for c in plan.changes] == [o("haoscarHeartbeatInterval"), o("haoscarHeartbeatDeadTime"),
                                             o("haoscarNotifyEmail"), o("haoscarServiceRetryThreshold", 2)]
    assert source.checked == [plan.overrides]


def test_prepare_changes_nothing_until_committed(handler: SetHandler, source: FakeConfigSource, o) -> None:
    plan = handler.prepare([(o("haoscarGarpCount"), Unsigned32(7))])
    assert plan.overrides == {"timing": {"garp_count": 7}}
    assert source.overrides() == {}
    assert source.current().timing.garp_count == 5
    source.commit(plan)
    assert source.current().timing.garp_count == 7


def test_truth_values_and_enums_are_stored_as_the_config_spells_them(handler: SetHandler, o) -> None:
    plan = handler.prepare([(o("haoscarAutoFailback"), Integer32(2)),
                            (o("haoscarServiceAdminStatus", 1), Integer32(2)),
                            (o("haoscarServiceActiveOnly", 1), Integer32(1)),
                            (o("haoscarServiceRecovery", 1), Integer32(3))])
    assert plan.overrides["timing"] == {"auto_failback": False}
    row = plan.overrides["services"]["1"]
    assert (row["enabled"], row["active_only"], row["recovery"]) == (False, True, "notify-only")


# -- RowStatus (RFC 2579) -----------------------------------------------------------------

CREATE_WEB = [("haoscarServiceName", OctetString("web")),
              ("haoscarServiceCheck", OctetString("curl -fs http://localhost/")),
              ("haoscarServiceRowStatus", CREATE_AND_GO)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))),
                         ids=lambda p: "-".join(CREATE_WEB[i][0][13:] for i in p))
def test_create_and_go_accepts_the_columns_in_any_order(order: tuple[int, ...], handler: SetHandler,
                                                       source: FakeConfigSource, o) -> None:
    plan = handler.prepare([(o(CREATE_WEB[i][0], 9), CREATE_WEB[i][1]) for i in order])
    row = plan.overrides["services"]["9"]
    assert row["name"] == "web" and row["check"] == "curl -fs http://localhost/"
    assert row["row_status"] == "active"
    assert plan.pending == {}
    assert plan.config_changed
    source.commit(plan)
    created = {s.index: s for s in source.current().services}[9]
    assert created.name == "web" and created.row_status is RowStatus.ACTIVE


def test_create_and_go_of_an_alias(handler: SetHandler, o) -> None:
    plan = handler.prepare([(o("haoscarAliasRowStatus", 3), CREATE_AND_GO),
                            (o("haoscarAliasAddress", 3), OctetString("192.0.2.10")),
                            (o("haoscarAliasInterface", 3), OctetString("eth0"))])
    assert plan.overrides["aliases"]["3"] == {"address": "192.0.2.10", "interface": "eth0",
                                              "prefix_length": 24, "row_status": "active"}


def test_create_and_wait_then_columns_then_active(handler: SetHandler, source: FakeConfigSource, o) -> None:
    # createAndWait without the mandatory columns: notReady, kept out of the configuration
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), CREATE_AND_WAIT)])
    assert plan.pending["services"][9]["row_status"] == "notReady"
    assert "9" not in plan.overrides.get("services", {})
    assert not plan.config_changed
    source.commit(plan)

    # one mandatory column: still notReady
    plan = handler.prepare([(o("haoscarServiceName", 9), OctetString("web"))])
    assert plan.pending["services"][9]["row_status"] == "notReady"
    assert plan.pending["services"][9]["name"] == "web"
    source.commit(plan)

    # active while notReady is refused
    err = refuse(handler, [(o("haoscarServiceRowStatus", 9), ACTIVE)])
    assert (err.status, err.index) == ("inconsistentValue", 0)

    # the last mandatory column: notInService, now part of the configuration
    plan = handler.prepare([(o("haoscarServiceCheck", 9), OctetString("true"))])
    assert plan.pending.get("services", {}) == {}
    assert plan.overrides["services"]["9"]["row_status"] == "notInService"
    assert plan.config_changed
    source.commit(plan)
    assert {s.index: s.row_status for s in source.current().services}[9] is RowStatus.NOT_IN_SERVICE

    # active
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), ACTIVE)])
    assert plan.overrides["services"]["9"]["row_status"] == "active"
    source.commit(plan)
    assert {s.index: s.row_status for s in source.current().services}[9] is RowStatus.ACTIVE


def test_create_and_wait_with_every_mandatory_column_is_not_in_service(handler: SetHandler, o) -> None:
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), CREATE_AND_WAIT),
                            (o("haoscarServiceCheck", 9), OctetString("true")),
                            (o("haoscarServiceName", 9), OctetString("web"))])
    assert plan.overrides["services"]["9"]["row_status"] == "notInService"
    assert plan.pending == {}


def test_not_in_service_on_a_not_ready_row_is_refused(handler: SetHandler, source: FakeConfigSource,
                                                      o) -> None:
    source.commit(handler.prepare([(o("haoscarServiceRowStatus", 9), CREATE_AND_WAIT)]))
    err = refuse(handler, [(o("haoscarServiceRowStatus", 9), NOT_IN_SERVICE)])
    assert (err.status, err.index) == ("inconsistentValue", 0)


def test_an_active_row_can_be_taken_out_of_service_and_back(handler: SetHandler,
                                                             source: FakeConfigSource, o) -> None:
    plan = handler.prepare([(o("haoscarServiceRowStatus", 1), NOT_IN_SERVICE)])
    assert plan.overrides["services"]["1"]["row_status"] == "notInService"
    source.commit(plan)
    plan = handler.prepare([(o("haoscarServiceRowStatus", 1), ACTIVE)])
    assert plan.overrides["services"]["1"]["row_status"] == "active"


def test_destroy_of_a_file_row_leaves_a_deleted_marker(handler: SetHandler, source: FakeConfigSource,
                                                       o) -> None:
    plan = handler.prepare([(o("haoscarServiceRowStatus", 1), DESTROY)])
    assert plan.overrides == {"services": {"1": {"deleted": True}}}
    assert plan.config_changed
    source.commit(plan)
    assert [s.index for s in source.current().services] == [2]
    # the row is gone: its columns cannot be set any more
    err = refuse(handler, [(o("haoscarServiceName", 1), OctetString("back"))])
    assert err.status == "noCreation"


def test_destroy_of_a_set_created_row_removes_it(handler: SetHandler, source: FakeConfigSource, o) -> None:
    source.commit(handler.prepare([(o(name, 9), value) for name, value in CREATE_WEB]))
    assert "9" in source.overrides()["services"]
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), DESTROY)])
    assert "9" not in plan.overrides.get("services", {})
    source.commit(plan)
    assert [s.index for s in source.current().services] == [1, 2]


def test_destroy_of_a_not_ready_row_drops_the_draft(handler: SetHandler, source: FakeConfigSource, o) -> None:
    source.commit(handler.prepare([(o("haoscarServiceRowStatus", 9), CREATE_AND_WAIT)]))
    assert 9 in source.pending()["services"]
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), DESTROY)])
    assert plan.pending.get("services", {}) == {}
    assert "9" not in plan.overrides.get("services", {})


# -- bugs ---------------------------------------------------------------------------------

def test_destroy_of_a_row_that_does_not_exist_is_accepted(handler: SetHandler, o) -> None:
    plan = handler.prepare([(o("haoscarServiceRowStatus", 9), DESTROY)])
    assert "9" not in plan.overrides.get("services", {})
    assert plan.pending.get("services", {}) == {}


@pytest.mark.parametrize("index,value,old", [(1, DESTROY, "active"), (9, CREATE_AND_GO, "absent")],
                         ids=["destroy", "createAndGo"])
def test_a_row_status_change_reports_the_status_before_the_set(handler: SetHandler, o, index: int,
                                                               value: Integer32, old: str) -> None:
    varbinds = [(o("haoscarServiceRowStatus", index), value)]
    if index == 9:
        varbinds += [(o("haoscarServiceName", 9), OctetString("web")),
                     (o("haoscarServiceCheck", 9), OctetString("true"))]
    plan = handler.prepare(varbinds)
    status = [c for c in plan.changes if c.name == "haoscarServiceRowStatus"]
    assert [c.old for c in status] == [old]


@pytest.mark.parametrize("name,index,value,old", [
    ("haoscarAutoFailback", 0, Integer32(2), "true"),
    ("haoscarServiceAdminStatus", 1, Integer32(2), "enabled"),
    ("haoscarServiceActiveOnly", 1, Integer32(1), "false"),
    ("haoscarServiceRecovery", 1, Integer32(2), "notifyOnly"),
    ("haoscarServiceRetryThreshold", 1, Unsigned32(5), "3"),
], ids=["AutoFailback", "ServiceAdminStatus", "ServiceActiveOnly", "ServiceRecovery",
        "ServiceRetryThreshold-inherited"])
def test_old_values_are_reported_as_the_mib_shows_them(handler: SetHandler, o, name: str, index: int,
                                                       value: Any, old: str) -> None:
    plan = handler.prepare([(o(name, index), value)])
    assert [c.old for c in plan.changes] == [old]


def test_a_recreated_row_does_not_inherit_the_destroyed_rows_columns(handler: SetHandler,
                                                                     source: FakeConfigSource, o) -> None:
    source.commit(handler.prepare([(o("haoscarServiceRowStatus", 2), DESTROY)]))
    source.commit(handler.prepare([(o("haoscarServiceRowStatus", 2), CREATE_AND_GO),
                                   (o("haoscarServiceName", 2), OctetString("fresh")),
                                   (o("haoscarServiceCheck", 2), OctetString("true"))]))
    row = {s.index: s for s in source.current().services}[2]
    assert row.name == "fresh"
    assert row.retry_threshold is None  # the destroyed row had 2


# -- the responder: a commit the peer head refuses ---------------------------------------


def test_a_set_the_peer_head_refuses_at_commit_is_answered_with_its_status(
        mib: MibModel, handler: SetHandler, o: Any) -> None:
    """The standalone agent answers the committer's CommitRefused with its status
    (inconsistentValue), var-bind 1, counts and audits it, and nothing is committed."""
    class RefusingCommitter:
        def __init__(self) -> None:
            self.rejected_with: list[tuple[str, int, str]] = []

        async def commit(self, plan: Any, principal: str) -> None:
            raise CommitRefused("the peer head refused it: its settings are newer")

        def rejected(self, principal: str, request: str, status: str, index: int, why: str) -> None:
            self.rejected_with.append((status, index, why))

    async def scenario() -> tuple[list[tuple[Any, int]], RefusingCommitter, SecurityCounters]:
        snmp_engine = engine.SnmpEngine()
        committer, counters = RefusingCommitter(), SecurityCounters()
        responder = SetResponder(snmp_engine, context.SnmpContext(snmp_engine), handler, committer, counters,
                                 mib.root)
        answers: list[tuple[Any, int]] = []
        responder._answer = lambda eng, ref, status, index, varbinds: answers.append((status, index))  # type: ignore[method-assign]
        await responder._process(snmp_engine, 1, [(o("haoscarGarpCount"), Unsigned32(7))], "v3:admin@127.0.0.1")
        return answers, committer, counters

    answers, committer, counters = asyncio.run(scenario())
    assert answers == [("inconsistentValue", 1)]
    assert committer.rejected_with == [("inconsistentValue", 0, "the peer head refused it: its settings are newer")]
    assert counters.snmp_set_rejected == 1 and counters.snmp_set_accepted == 0
