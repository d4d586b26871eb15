"""Text that came from the network, made safe to write into one log line or event.

A value in a SET (even a refused one), a heartbeat's sender name, anything a peer or a
manager chose: written as it is, a newline in it would start a line that looks like the
daemon's own (a forged audit record), and a megabyte of it would flood the log. So
control characters, line breaks and backslashes are escaped (as Python writes them in a
string literal), and an overlong value is cut with a marker saying how much is missing.
"""

from __future__ import annotations

DEFAULT_LIMIT = 120


def printable(value: object, limit: int = DEFAULT_LIMIT) -> str:
    text = value if isinstance(value, str) else str(value)
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    safe = "".join(out)
    if len(safe) > limit:
        safe = f"{safe[:limit]}...[{len(safe) - limit} more characters]"
    return safe
