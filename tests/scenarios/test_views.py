"""`haoscar-snmp status` on both heads of a real pair: the standby's view, and the exit
code as the cluster loses its primary."""

from __future__ import annotations

import json
import subprocess
import sys

from .hapair import ALIAS, HaPair


def status(pair: HaPair, head: str) -> tuple[int, dict]:
    """The head's snapshot through its status socket (a unix socket: no namespace needed)."""
    p = subprocess.run([sys.executable, "-m", "haoscar_snmp", "status", "--json", "--state-dir",
                        str(pair.workdir / f"state-{head}")], capture_output=True, text=True, timeout=30)
    return p.returncode, json.loads(p.stdout) if p.stdout else {}


def test_status_on_both_heads_and_after_the_primary_dies(pair: HaPair) -> None:
    pair.start_both()
    pair.wait_for(lambda: status(pair, "head2")[0] == 0 and status(pair, "head1")[0] == 0, 15,
                  "both heads to report ok")
    code, standby = status(pair, "head2")
    assert standby["cluster"]["this_head_role"] == "standby"
    assert {h["name"]: h["role"] for h in standby["heads"]} == {"head1": "active", "head2": "standby"}
    assert [(a["address"], a["holder"]) for a in standby["aliases"]] == [(ALIAS, "head1")]   # from heartbeats
    assert {(p["lan"], p["state"]) for p in standby["heartbeat_paths"]} >= {("lanA", "up"), ("lanB", "up")}
    assert all(p["rtt_ms"] for p in standby["heartbeat_paths"] if p["lan"] in ("lanA", "lanB"))
    pair.kill9("head1")
    pair.wait_for(lambda: "head2" in pair.holders(), 10, "head2 to take the alias")
    # head2 serves, and says the cluster needs action: the head-down alarm is critical.
    pair.wait_for(lambda: status(pair, "head2")[0] == 2, 10, "head2 to report failed (critical)")
    code, taken = status(pair, "head2")
    assert taken["cluster"]["this_head_role"] == "active"
    assert [a["holder"] for a in taken["aliases"]] == ["head2"]
    texts = " | ".join(r["text"] for r in taken["health"]["reasons"])
    assert "critical alarm" in texts and "head1" in texts and "held by no head" not in texts, texts
    assert status(pair, "head1")[0] == 3          # its daemon is gone: nothing answers
