"""The daemon's parts, built area by area (`haoscar_snmp/daemon.py` lists the areas in order).

One module per area of the FCAPS design, and `parts` for what an area hands to those
built after it. Each function builds one area from the parts it is given and registers
every teardown on the daemon's `AsyncExitStack` as the part comes up, so the daemon
tears down in the reverse order of the list. No part is given a collaborator after it
was built: a part that needs another is built after it and takes it as an argument;
where two parts would need each other, a small part both use is built first (the
settings channel and the peer agreement, in `configuration`).
"""
