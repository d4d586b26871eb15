#!/usr/bin/python3 -IS
"""Pacemaker's alert agent for haoscar-snmp: tells the daemon that something happened.

Pacemaker runs an alert agent for every event it is configured for (a node, a
resource operation, a fencing action, an attribute), as the user hacluster, with the
event in `CRM_alert_*` environment variables. This one does no work: it sends one
datagram to the daemon's alert socket, whose path is the alert's recipient
(`CRM_alert_recipient`), and the daemon reads Pacemaker's status again (coalescing a
burst of events into one or two reads). The datagram says which kind of event it was
(`kind=resource node=node1 rsc=vip task=start rc=0`), for the daemon's debug log only.

It exits 0 at once, quietly, whatever happens: no daemon listening, a full socket
queue, a missing or wrong path. It uses only the standard library and starts Python
isolated (-I, -S), so it runs in a few milliseconds and reads nothing from the
environment but its own variables.

Configure it once in the CIB (`docs/corosync.md`), for example:

    <alerts>
      <alert id="haoscar-snmp" path="/path/to/fcaps/fault/cluster/alert_agent.py">
        <recipient id="haoscar-snmp-socket" value="/run/haoscar-snmp/pacemaker-alert.sock"/>
      </alert>
    </alerts>
"""

import os
import socket
import sys

DEFAULT_SOCKET = "/run/haoscar-snmp/pacemaker-alert.sock"
FIELDS = (("kind", "CRM_alert_kind"), ("node", "CRM_alert_node"), ("rsc", "CRM_alert_rsc"),
          ("task", "CRM_alert_task"), ("rc", "CRM_alert_rc"))
DATAGRAM_MAX = 512


def message(environ: "dict[str, str]") -> bytes:
    words = [f"{name}={environ[var]}" for name, var in FIELDS if environ.get(var)]
    return " ".join(words).encode("utf-8", "replace")[:DATAGRAM_MAX] or b"kind=unknown"


def main(environ: "dict[str, str]") -> int:
    path = environ.get("CRM_alert_recipient") or DEFAULT_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(message(environ), path)
    except (OSError, ValueError):
        pass        # no daemon, a full queue, a bad path: the daemon's slow timer reads anyway
    return 0


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
