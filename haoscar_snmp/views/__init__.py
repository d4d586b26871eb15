"""Operator views on the daemon's state, beside the SNMP agent: no new daemon, no network.

    snapshot.py   `snapshot(state, config, clock)`: the state as one plain, JSON-able dict
                  with a schema version; every other view starts from it or from `State`
    health.py     ok / degraded / failed, with the reasons, from the state
    server.py     the local status socket: `GET /status` on `<state_dir>/status.sock`
    console.py    `haoscar-snmp status`: the snapshot as text, read through that socket
    metrics.py    the state in the OpenMetrics text format (a handler for a web listener)

Rules: views only read. They import the state model, the configuration, the event and
alarm enumerations, and (metrics) the MIB's descriptions; nothing in `fcaps` or
`haoscar_snmp.snmp` imports a view. Building a view never blocks the event loop: it is a
pass over tables held in memory, with no file or network access.
"""
