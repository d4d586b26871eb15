"""Text from the network is escaped and bounded before it reaches a log line or an event."""

from __future__ import annotations

from haoscar_snmp.core.text import printable


def test_line_breaks_and_control_characters_cannot_start_a_new_log_line() -> None:
    forged = "5000\n2026-11-28 10:00:00,000 INFO haoscar_snmp.audit: SET by v3:admin@10.0.0.1: ok"
    out = printable(forged, limit=500)
    assert "\n" not in out and out.startswith("5000\\n2026-11-28")
    assert printable("a\rb\x1b[31mc\x00d\u2028e") == "a\\rb\\x1b[31mc\\x00d\\u2028e"
    assert printable("back\\slash") == "back\\\\slash"      # an escape cannot be faked either


def test_overlong_values_are_cut_with_a_marker() -> None:
    out = printable("x" * 1000, limit=120)
    assert out == "x" * 120 + "...[880 more characters]"


def test_plain_text_is_left_alone() -> None:
    assert printable("head1/lanA 10.71.0.50 é ü") == "head1/lanA 10.71.0.50 é ü"
    assert printable(42) == "42"
