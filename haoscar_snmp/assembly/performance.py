"""Performance: takeover durations from events; the rest from the measurement channel
that the agent, the AgentX subagent, the scheduler and the heartbeat feed."""

from __future__ import annotations

from fcaps.performance.collector import PerfCollector
from fcaps.performance.figures import DurationFigures
from fcaps.performance.looplag import LoopLag
from haoscar_snmp.core.measure import Measurements

from .parts import Core, Meters


def performance(core: Core) -> Meters:
    core.bus.subscribe("performance", DurationFigures(core.state))
    channel = Measurements()
    collector = PerfCollector(core.state, channel, core.clock)
    core.bus.subscribe("perf-counters", collector.on_event)
    loop_lag = LoopLag(core.state)
    core.bus.subscribe("loop-lag", loop_lag.on_event)
    loop_lag.start()
    core.stack.callback(loop_lag.stop)
    return Meters(channel, collector)


def start_collector(core: Core, meters: Meters) -> None:
    """Started once the SNMP front ends have their meters: their rows show from the start."""
    meters.collector.start()
    core.stack.callback(meters.collector.stop)
