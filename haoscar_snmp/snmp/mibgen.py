"""Compile mibs/HAOSCAR-MIB.txt with pysmi into the JSON the agent loads at start-up.

The MIB text is the single source of truth. pysmi needs the standard SNMPv2 modules to
compile it; they are not in Debian main, so `scripts/fetch-std-mibs` fetches them into
`.cache/mibs`. The generated JSON is committed (so the daemon needs no MIB sources at run
time) and a unit test re-runs this compiler and fails on any drift.

    python -m haoscar_snmp.snmp.mibgen           # rewrite haoscar_snmp/snmp/mibdata/HAOSCAR-MIB.json
    python -m haoscar_snmp.snmp.mibgen --check   # exit 1 if the committed JSON is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB_NAME = "HAOSCAR-MIB"
MIB_DIR = REPO / "mibs"
STD_MIB_DIR = REPO / ".cache" / "mibs"
JSON_PATH = Path(__file__).resolve().parent / "mibdata" / f"{MIB_NAME}.json"


def compile_mib(mib_dir: Path = MIB_DIR, std_dir: Path = STD_MIB_DIR) -> str:
    """Return the pysmi JSON rendering of HAOSCAR-MIB, minus the volatile 'meta' block."""
    from pysmi.codegen import JsonCodeGen
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiStarParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher
    from pysmi.writer import CallbackWriter

    if not (std_dir / "SNMPv2-SMI.txt").exists():
        raise SystemExit(f"{std_dir} has no SNMPv2-SMI: run scripts/fetch-std-mibs first")
    out: dict[str, str] = {}
    compiler = MibCompiler(
        SmiStarParser(), JsonCodeGen(),
        CallbackWriter(lambda name, data, ctx: out.__setitem__(name, data)),
    )
    compiler.add_sources(FileReader(str(mib_dir)), FileReader(str(std_dir)))
    compiler.add_searchers(StubSearcher(*JsonCodeGen.baseMibs))
    status = compiler.compile(MIB_NAME, genTexts=True)
    if status.get(MIB_NAME) != "compiled":
        raise SystemExit(f"pysmi could not compile {MIB_NAME}: {status}")
    doc = json.loads(out[MIB_NAME])
    doc.pop("meta", None)  # timestamp, host and user: would make every build differ
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    text = compile_mib()
    if args.check:
        current = JSON_PATH.read_text() if JSON_PATH.exists() else ""
        if current != text:
            print(f"{JSON_PATH} is stale: run python -m haoscar_snmp.snmp.mibgen", file=sys.stderr)
            return 1
        print(f"{JSON_PATH.name} matches {MIB_NAME}.txt")
        return 0
    JSON_PATH.write_text(text)
    print(f"wrote {JSON_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
