"""Security: authentication failures (SNMP, heartbeat, settings exchange) made visible
without letting a flood of forged packets flood the history or the NMS, and the audit
of credentials changed by a reload."""
