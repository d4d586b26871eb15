"""The collector seen from inside a daemon, for bench/bench_gc.py (never used otherwise).

bench_gc.py puts this directory on the PYTHONPATH of a daemon with HAOSCAR_BENCH_GCLOG=FILE.
In the daemon process only (the heartbeat process, which inherits both, is left alone) it
then appends one JSON line to FILE:

* per collection (`gc.callbacks`): {"t", "gen", "ms", "collected", "uncollectable"}
  (t on the monotonic clock; ms from the "start" to the "stop" callback, cpu_ms the
  thread's CPU time over the same span: what the collection cost, whatever the load);
* every HAOSCAR_BENCH_GCLOG_EVERY seconds (10), from a thread of its own, if
  HAOSCAR_BENCH_GCLOG_HEAP=1 (it holds the GIL for a while, so leave it off when the loop
  lag is measured): {"t", "kind": "heap", "gen2": len(gc.get_objects(2)), "frozen": gc.get_freeze_count(),
  "counts": gc.get_count(), "rss_kib", "types": the 15 commonest types in generation 2,
  "new": the commonest types among the generation-2 objects not there at the last sample,
  "where": for a few of those, the types of their referrers, "big": the largest
  containers (each container's traversal visits every item)}; without it only
  {"t", "kind": "count", "counts", "rss_kib"}.

Lines are written from a buffer by that thread, never from the callback. Without
HAOSCAR_BENCH_GCLOG this module does nothing.
"""

import os
import sys

_OUT = os.environ.get("HAOSCAR_BENCH_GCLOG")
if _OUT and "haoscar_snmp" in sys.orig_argv and "run" in sys.orig_argv:
    import collections
    from collections import deque
    import gc
    import json
    import threading
    import time

    _EVERY = float(os.environ.get("HAOSCAR_BENCH_GCLOG_EVERY", "10"))
    _HEAP = os.environ.get("HAOSCAR_BENCH_GCLOG_HEAP") == "1"
    _PENDING: list = []
    _START = [0.0, 0.0]

    def _callback(phase, info):  # noqa: ANN001 - gc.callbacks' signature
        if phase == "start":
            _START[0], _START[1] = time.perf_counter(), time.thread_time()
            return
        _PENDING.append({"t": round(time.monotonic(), 3), "gen": info["generation"],
                         "ms": round((time.perf_counter() - _START[0]) * 1000, 3),
                         "cpu_ms": round((time.thread_time() - _START[1]) * 1000, 3),
                         "collected": info["collected"], "uncollectable": info["uncollectable"]})

    def _name(obj) -> str:  # noqa: ANN001
        t = type(obj)
        return f"{t.__module__}.{t.__qualname__}"

    def _rss() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    def _heap(seen: set) -> dict:
        objs = gc.get_objects(2)
        ids = {id(o) for o in objs}
        types = collections.Counter(_name(o) for o in objs)
        new = [o for o in objs if id(o) not in seen]
        new_types = collections.Counter(_name(o) for o in new)
        where = collections.Counter()
        shapes = collections.Counter(
            "(" + ",".join(type(x).__name__ for x in o[:4]) + ")"
            for o in new if type(o) is tuple)
        for o in new[:: max(1, len(new) // 40)][:40]:          # a sample of the new ones
            refs = [r for r in gc.get_referrers(o) if r is not objs and r is not new]
            where[f"{_name(o)} <- " + (",".join(sorted({_name(r) for r in refs[:3]})) or "-")] += 1
        sized = sorted((o for o in objs if type(o) in (list, dict, set, tuple, deque)),
                       key=len, reverse=True)[:8]
        big = [[_name(o), len(o), ",".join(sorted({_name(r) for r in gc.get_referrers(o)
                                                   if r is not objs and r is not sized}))[:200]]
               for o in sized]
        del objs, new, sized
        seen.clear()
        seen.update(ids)
        return {"t": round(time.monotonic(), 3), "kind": "heap", "gen2": len(ids),
                "frozen": gc.get_freeze_count(), "counts": gc.get_count(), "rss_kib": _rss(),
                "types": types.most_common(15), "new": new_types.most_common(15),
                "where": where.most_common(15), "tuples": shapes.most_common(8), "big": big}

    def _writer() -> None:
        seen: set = set()
        with open(_OUT, "a", buffering=1) as f:
            while True:
                time.sleep(_EVERY)
                lines = []
                while _PENDING:
                    lines.append(_PENDING.pop(0))
                lines.append(_heap(seen) if _HEAP else
                             {"t": round(time.monotonic(), 3), "kind": "count", "counts": gc.get_count(),
                              "rss_kib": _rss()})
                for line in lines:
                    f.write(json.dumps(line) + "\n")

    gc.callbacks.append(_callback)
    threading.Thread(target=_writer, name="bench-gclog", daemon=True).start()
