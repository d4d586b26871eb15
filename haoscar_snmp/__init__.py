"""haoscar-snmp: HA-OSCAR high-availability management agent with an SNMP MIB."""

__version__ = "0.1.0"
