"""Availability, MTTR and MTBF of one subject over one window: pure arithmetic on spans.

Times are ledger times (seconds, `timeline.py`). A subject's *monitored* spans are when
this head could see it (the agent's runs, from when the subject was first seen; for this
head itself, all the time since it was first seen, since its own downtime is what is
counted). Its *outages* are spans within them, the open one ending now.

Per window [now - length, now]:

* outages: the outages that began in the window;
* downtime: the part of every outage that lies in the window, an open one up to now;
* availability: 1,000,000 x (monitored - downtime) / monitored, rounded down, so that
  any downtime at all shows below 1,000,000; 1,000,000 while nothing was monitored;
* MTTR: the mean whole duration of the outages that ended in the window;
* MTBF: the time in service in the window divided by the outages that began in it
  (the usual operational MTBF: uptime per failure); 0 when none began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

PPM = 1_000_000


@dataclass(frozen=True)
class Figures:
    outages: int = 0
    downtime_s: float = 0.0
    monitored_s: float = 0.0
    availability_ppm: int = PPM
    mttr_s: float = 0.0
    mtbf_s: float = 0.0


def overlap(lo: float, hi: float, start: float, end: float) -> float:
    return max(0.0, min(hi, end) - max(lo, start))


def window_figures(now: float, length: float, monitored: Iterable[tuple[float, float]],
                   outages: Iterable[tuple[float, float | None]]) -> Figures:
    """`monitored`: (start, end) spans; `outages`: (start, end or None while open)."""
    return range_figures(now - length, now, now, monitored, outages)


def range_figures(lo: float, hi: float, now: float, monitored: Iterable[tuple[float, float]],
                  outages: Iterable[tuple[float, float | None]],
                  unrepaired: Iterable[tuple[float, float]] = ()) -> Figures:
    """The same over any range [lo, hi]; `now` ends the open outage. `unrepaired`: outages
    known up to an end that is not their repair (the record stops there: the report's
    view of an outage still open), counted as downtime but not in MTTR."""
    seen = sum(overlap(lo, hi, start, end) for start, end in monitored)
    down = 0.0
    began = 0
    repaired: list[float] = []
    for (start, end), was_repaired in [*((o, True) for o in outages), *((o, False) for o in unrepaired)]:
        finish = now if end is None else end
        down += overlap(lo, hi, start, finish)
        if lo <= start < hi:
            began += 1
        if was_repaired and end is not None and lo <= end <= hi:
            repaired.append(end - start)
    down = min(down, seen)
    up = seen - down
    ppm = PPM if seen <= 0 else int(up * PPM // seen)
    return Figures(began, down, seen, ppm, sum(repaired) / len(repaired) if repaired else 0.0,
                   up / began if began else 0.0)


def monitored_spans(first_seen: float, continuous: bool, runs: Iterable[tuple[float, float]],
                    now: float) -> list[tuple[float, float]]:
    """When a subject was watched: from its first sight, all the time (`continuous`: this
    head, whose downtime is what is counted) or during the agent's runs."""
    if continuous:
        return [(first_seen, now)]
    return [(max(start, first_seen), end) for start, end in runs if end > first_seen]
