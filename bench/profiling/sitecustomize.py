"""cProfile for a whole process, for bench_flood.py --cprofile (never used otherwise).

bench_flood.py puts this directory on PYTHONPATH of one head's daemon, with
HAOSCAR_BENCH_CPROFILE=DIR; the heartbeat process inherits both. Each process then runs
its main thread under cProfile from HAOSCAR_BENCH_CPROFILE_SKIP seconds after it started
(so that start-up is left out) and writes DIR/<daemon|heartbeat>-<pid>.prof when it
exits normally. Without HAOSCAR_BENCH_CPROFILE this module does nothing.
"""

import os

_OUT = os.environ.get("HAOSCAR_BENCH_CPROFILE")
if _OUT:
    import atexit
    import cProfile
    import sys
    import time

    _PROF = cProfile.Profile()
    _FROM = time.monotonic() + float(os.environ.get("HAOSCAR_BENCH_CPROFILE_SKIP", "0"))
    _STATE = {"on": False, "t": 0.0}

    def _hook(frame, event, arg):  # noqa: ANN001 - sys.setprofile's signature
        """A light profile hook on the main thread until the skip is over; then cProfile
        takes its place (enable() sets the calling thread's profiler)."""
        if time.monotonic() >= _FROM:
            sys.setprofile(None)
            _STATE["on"], _STATE["t"] = True, time.monotonic()
            _PROF.enable()

    def _dump() -> None:
        if not _STATE["on"]:
            return
        _PROF.disable()
        kind = "heartbeat" if any("heartbeat.child" in a for a in sys.argv) else "daemon"
        seconds = time.monotonic() - _STATE["t"]
        _PROF.dump_stats(os.path.join(_OUT, f"{kind}-{os.getpid()}-{seconds:.1f}s.prof"))

    atexit.register(_dump)
    sys.setprofile(_hook)
