"""The web panel: monitoring and configuration pages served by the daemon itself.

One aiohttp listener (`server.py`), off unless `[web] enabled`; users from a users file
(`users.py`), server-side sessions (`sessions.py`), login throttling (`throttle.py`),
the security headers, CSRF and Origin checks (`guard.py`), the pages (`pages.py`,
`static/`), live updates over server-sent events (`live.py`), and every write through
the configuration store's SET path (`writes.py`).
"""
