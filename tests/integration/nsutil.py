"""Small helpers for tests and benchmarks that make network namespaces of their own (root).

`sh` runs a command with a bound; `batch` feeds `ip -n NS -batch`; `remove` deletes
namespaces (missing ones are fine); `in_namespace` runs a function in a thread that has
entered a namespace, so that a socket it makes stays in that namespace while the rest of
the process stays where it is (setns acts on the calling thread only; Python 3.11 has no
os.setns, so libc's is called).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def sh(*args: str, stdin: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=check, timeout=timeout)


def batch(ns: str, commands: list[str]) -> None:
    sh("ip", "-n", ns, "-batch", "-", stdin="\n".join(commands) + "\n")


def remove(namespaces: Iterable[str]) -> None:
    for ns in namespaces:
        sh("ip", "netns", "del", ns, check=False)


def in_namespace(ns: str, make: Callable[[], T]) -> T:
    """Run `make` in a thread that has entered namespace `ns`; its result, or its exception."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: dict[str, Any] = {}

    def work() -> None:
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            result["value"] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc
        finally:
            os.close(fd)
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    if "error" in result:
        raise result["error"]
    if "value" not in result:
        raise TimeoutError(f"nothing made in namespace {ns} within 10 s")
    return result["value"]
