"""The cluster past two heads: membership and quorum from Corosync, placement from Pacemaker.

With the `corosync` membership backend the heads' own heartbeat is off. This package
reads what the Linux HA stack knows (it never runs a membership protocol of its own) and
turns it into the records of `model`: what Corosync says of the members and the quorum,
what Pacemaker says of the nodes and the resources. The SNMP tables, the notifications
(from the difference between two successive views) and the consistency checks the stack
lacks are built from those records alone.
"""
