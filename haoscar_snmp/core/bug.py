"""The phrase that marks a bug in the logs.

Every catch-all (a job's cycle, an event consumer, the heartbeat process, an SNMP request
handler) logs what it caught with this phrase and the traceback, and goes on. Scenario
and integration tests fail if any daemon log holds it; operators can alert on it.
"""

BUG_MARKER = "please report it as a BUG"
