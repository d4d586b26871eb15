"""The cluster past two heads (`membership.backend = "corosync"`): Corosync's membership,
Pacemaker's placement, the alert socket, the cluster watch and the head rows.

Built instead of the heartbeat process, the role state machine, the alias guard and the
public reach (the daemon moves no address in this mode). Every membership from the
Corosync source goes to the watch and asks Pacemaker for a read; every placement goes to
the watch; after either, the head, summary and alias rows follow the watch's view
(fcaps/fault/role/placed.py). At shutdown the alert socket closes first, then the
Pacemaker reader, the Corosync source and the watch stop, and the netlink socket of the
stale-address check closes last.

Start errors: Corosync's client libraries missing (the message names the Debian
package), `pacemaker = "on"` without crm_mon, an alert socket that cannot be bound.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from fcaps.fault.alarms import Alarms
from fcaps.fault.cluster import corolib
from fcaps.fault.cluster.alerts import AlertListener, AlertReads
from fcaps.fault.cluster.corosync import CorosyncSource
from fcaps.fault.cluster.model import Membership, Placement
from fcaps.fault.cluster.pacemaker import PacemakerSource
from fcaps.fault.cluster.stale import NetlinkAddresses
from fcaps.fault.cluster.watch import ClusterWatch
from fcaps.fault.role.placed import PlacedRoles
from haoscar_snmp.config.schema import PacemakerUse

from .parts import Core, StartFailed

log = logging.getLogger("haoscar_snmp")

LIBRARIES = ("quorum", "votequorum", "cmap")
ALERT_DIR_MODE = 0o711          # hacluster (the alert agent's user) passes, lists nothing


def _check_libraries() -> None:
    try:
        for kind in LIBRARIES:
            corolib.library(kind)
    except corolib.LibraryMissing as exc:
        raise StartFailed(f'membership.backend = "corosync": {exc}') from None


def _reads_pacemaker(use: PacemakerUse) -> bool:
    found = shutil.which("crm_mon") is not None
    if use is PacemakerUse.ON and not found:
        raise StartFailed('membership.pacemaker = "on", but crm_mon is not installed '
                          "(install Debian's pacemaker-cli-utils)")
    if use is PacemakerUse.AUTO and not found:
        log.warning("Pacemaker: crm_mon is not installed; the placement stays unknown "
                    "(membership.pacemaker = \"auto\")")
    return use is not PacemakerUse.OFF and found


def _socket_dir(directory: Path) -> None:
    """Make the alert socket's directory (and its parents) if missing, passable by
    hacluster; an existing one is left as it is, with a warning if others cannot pass."""
    if directory.is_dir():
        if not directory.stat().st_mode & 0o001:
            log.warning("Pacemaker alerts: %s does not let other users pass: the alert agent "
                        "(user hacluster) cannot reach the socket", directory)
        return
    directory.mkdir(parents=True, mode=ALERT_DIR_MODE)
    os.chmod(directory, ALERT_DIR_MODE)          # whatever the umask


async def corosync(core: Core, alarms: Alarms) -> Callable[[], str]:
    """Returns what the accounting asks: the resource carrying the cluster's address."""
    config = core.store.effective
    settings = config.membership
    _check_libraries()
    pacemaker = _reads_pacemaker(settings.pacemaker)
    addresses = NetlinkAddresses()
    core.stack.callback(addresses.close)
    watch = ClusterWatch(core.state, core.bus, core.clock, alarms, addresses, config.cluster.local_head)
    core.stack.push_async_callback(watch.stop)
    rows = PlacedRoles(core.state, core.store.current, core.bus, core.clock)
    core.store.on_change.append(lambda _config: rows.update())      # the aliases are live keys

    def on_placement(placement: Placement | None) -> None:
        watch.set_placement(placement)
        rows.update(watch.view)

    reader = PacemakerSource(on_placement, core.clock, interval=settings.refresh_s,
                             timeout=settings.crm_mon_timeout_s) if pacemaker else None

    def on_membership(membership: Membership | None) -> None:
        watch.set_membership(membership)
        rows.update(watch.view)
        if reader is not None:
            reader.refresh()

    source = CorosyncSource(core.clock, on_membership)
    source.start()
    core.stack.push_async_callback(source.stop)
    if reader is None:
        log.info("corosync backend: membership from Corosync; Pacemaker is not read")
        return rows.service_resource
    reader.start()
    core.stack.push_async_callback(reader.stop)
    alert_reads = AlertReads(reader.refresh, core.clock)      # now, and once the transition is over
    core.stack.callback(alert_reads.close)
    listener = AlertListener(settings.alert_socket, alert_reads)
    try:
        _socket_dir(settings.alert_socket.parent)
        await listener.start()
    except OSError as exc:
        raise StartFailed(f"cannot listen for Pacemaker's alerts at {settings.alert_socket}: {exc}") from None
    core.stack.callback(listener.close)
    log.info("corosync backend: membership from Corosync, placement from Pacemaker (alerts at %s)",
             settings.alert_socket)
    return rows.service_resource
