"""Who decides membership and placement: [membership] (model re-exported by `schema.py`).

`backend = "own"` (the default) is the two heads' own heartbeat, alias takeover and role
state machine. `backend = "corosync"` hands membership and quorum to the local Corosync
and the placement of the service addresses to Pacemaker: the heartbeat process, the
role state machine, the alias guard and the public reach are not built, this daemon
moves no address, and it reads both (fcaps/fault/cluster/, docs/corosync.md).

Every key here needs a restart: the backend decides which parts are built at all, and
the readers take their periods, time limits and socket when they are built. The backend
and the Pacemaker reads are cluster-wide (every head must be run by the same stack);
the alert socket is a path on this head.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from haoscar_snmp.config.keys import CLUSTER_RESTART, PER_HEAD_RESTART
from haoscar_snmp.config.values import FrozenModel

SOCKET_PATH_MAX = 107           # sun_path holds 108 bytes, the last one a NUL
DEFAULT_ALERT_SOCKET = Path("/run/haoscar-snmp/pacemaker-alert.sock")


class Backend(enum.StrEnum):
    OWN = "own"                 # the heads' own heartbeat and alias takeover
    COROSYNC = "corosync"       # Corosync's membership, Pacemaker's placement


class PacemakerUse(enum.StrEnum):
    AUTO = "auto"               # read Pacemaker when crm_mon is installed
    ON = "on"                   # read it; crm_mon missing is a start error
    OFF = "off"                 # Corosync's membership only: no placement, no alert socket


def _socket_path(value: Path) -> Path:
    if not value.is_absolute():
        raise ValueError("must be an absolute path (Pacemaker's alert agent is given it as is)")
    if len(str(value).encode()) > SOCKET_PATH_MAX:
        raise ValueError(f"must be at most {SOCKET_PATH_MAX} bytes (a unix socket's path)")
    return value


SocketPath = Annotated[Path, AfterValidator(_socket_path)]


class MembershipConfig(FrozenModel):
    backend: Annotated[Backend, CLUSTER_RESTART] = Backend.OWN
    pacemaker: Annotated[PacemakerUse, CLUSTER_RESTART] = PacemakerUse.AUTO
    # The unix datagram socket Pacemaker's alert agent writes to (the recipient's value
    # in the CIB's alert). Its directory is created, mode 0711, so that hacluster can
    # reach the socket.
    alert_socket: Annotated[SocketPath, PER_HEAD_RESTART] = DEFAULT_ALERT_SOCKET
    # The placement is read again this long after the last read began, alerts or not.
    refresh_s: Annotated[int, Field(ge=5, le=3600), CLUSTER_RESTART] = 30
    # Each read (crm_mon, cibadmin) is killed past this; the placement is then unknown.
    crm_mon_timeout_s: Annotated[int, Field(ge=1, le=120), CLUSTER_RESTART] = 10
