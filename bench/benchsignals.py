"""How every benchmark ends on a signal: through its `finally` blocks, so that what it
made (namespaces, daemons, temporary directories) is torn down on SIGTERM, SIGHUP and
Ctrl-C as on a normal end."""

from __future__ import annotations

import os
import signal
from typing import Any


def unwind_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit(128 + signal) in the process that called this;
    SIGINT raises KeyboardInterrupt even if the bench was started with it ignored.

    A process forked from it (pyroute2 makes one per namespace socket and may SIGTERM
    it) exits at once instead: unwinding there would run the parent's teardown (atexit,
    `finally`) a second time, killing every process in the namespaces."""
    main_pid = os.getpid()

    def terminate(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:
            os._exit(128 + signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
