"""Operator views on the daemon's state, beside the SNMP agent: no new daemon, no network.

    snapshot.py   `snapshot(state, config, clock)`: the state as one plain, JSON-able dict
                  with a schema version; every other view starts from it or from `State`
    health.py     ok / degraded / failed, with the reasons, from the state
    server.py     the local status socket: `GET /status` on `<state_dir>/status.sock`
    console.py    `haoscar-snmp status`: the snapshot as text, read through that socket
    metrics.py    the state in the OpenMetrics text format (a handler for a web listener)
    slices.py     rendering in pieces that give the loop back; one render per kind at a time
    source.py     the snapshot for the loop: JSON in slices, and the live feed's change marker
    web/          the web panel: monitoring and configuration pages on the daemon's loop

Rules: views only read, except the web panel's writes, which go through the
configuration store the daemon hands it (the same checks, proposal, persistence and
audit as an SNMP SET; `web/writes.py`). They import the state model, the configuration, the event and
alarm enumerations, and (metrics) the MIB's descriptions; nothing in `fcaps` or
`haoscar_snmp.snmp` imports a view. Building a view never blocks the event loop: it is a
pass over tables held in memory, with no file or network access, served in slices of a
millisecond or so of work (slices.py).
"""
