"""pysnmp's notification originator, loaded without pysnmp's MIB compiler.

`pysnmp.entity.rfc3413.ntforg` imports `pysnmp.smi.rfc1902`, which imports
`pysnmp.smi.compiler`, which loads pysmi when it is installed: pysmi's parser (lark),
code generators (jinja2) and URL readers (requests, urllib3), about 240 modules and
11 MiB of resident memory (bench/bench_memory.py). The daemon never compiles a MIB at
run time: HAOSCAR-MIB is compiled once, by mibgen.py, into mibdata/*.json, and every
OID the agent sends or answers is numeric. pysnmp's compiler module is written to do
without pysmi ("MIB compiler not available"), so it is imported here with pysmi hidden,
and pysmi stays importable afterwards for mibgen.py and the tests.

Rule: import `ntforg` from here, not from pysnmp, in any module the daemon loads.
"""

from __future__ import annotations

import sys


def _compiler_without_pysmi() -> None:
    """Import pysnmp.smi.compiler while `import pysmi` fails; a no-op once either is loaded."""
    if "pysnmp.smi.compiler" in sys.modules or "pysmi" in sys.modules:
        return
    sys.modules["pysmi"] = None     # type: ignore[assignment]  # makes `import pysmi.x` raise ImportError
    try:
        import pysnmp.smi.compiler  # noqa: F401
    finally:
        del sys.modules["pysmi"]


_compiler_without_pysmi()

from pysnmp.entity.rfc3413 import ntforg  # noqa: E402  (after the compiler above)

__all__ = ["ntforg"]
