"""fcaps.configuration.store.ConfigStore.rejected: a refused SET is audited in the log and,
rate-limited, in the event history (setRefused), so the audit trail shows it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes import FakeClock

from fcaps.configuration.store import REFUSALS_BURST, REFUSALS_PERIOD_S, ConfigStore
from haoscar_snmp.core.events import Event, EventBus, EventType, Severity
from haoscar_snmp.core.state import State


def test_refused_sets_reach_the_history_rate_limited_and_the_log_always(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bus, clock, events = EventBus(), FakeClock(), []
    bus.subscribe("test", events.append)
    store = ConfigStore(None, tmp_path, State(), bus, clock)

    def refuse() -> None:
        store.rejected("v2c:public@192.0.2.9", "haoscarHeartbeatInterval.0 = 5", "wrongValue", 0,
                       "below the floor of 10 ms")

    with caplog.at_level(logging.WARNING, logger="haoscar_snmp.audit"):
        for _ in range(REFUSALS_BURST + 2):
            refuse()
    assert len([r for r in caplog.records if "refused with wrongValue" in r.getMessage()]) == REFUSALS_BURST + 2
    refused = [e for e in events if e.type == EventType.SET_REFUSED]
    assert len(refused) == REFUSALS_BURST
    first: Event = refused[0]
    assert (first.subject, first.severity) == ("v2c:public@192.0.2.9", Severity.WARNING)
    assert first.text == ("SET by v2c:public@192.0.2.9 refused with wrongValue at var-bind 1 "
                          "(below the floor of 10 ms): haoscarHeartbeatInterval.0 = 5")
    clock.advance(REFUSALS_PERIOD_S)
    refuse()
    refused = [e for e in events if e.type == EventType.SET_REFUSED]
    assert len(refused) == REFUSALS_BURST + 1
    assert refused[-1].text.endswith("; 2 more refused SET(s) before it only in the log")
