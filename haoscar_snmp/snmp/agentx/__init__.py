"""AgentX (RFC 2741): the protocol by which this daemon serves its MIB as a subagent of
the host's net-snmp snmpd.

`pdu` holds what travels (PDUs, varbinds, search ranges, the numbers RFC 2741 assigns,
the limits), `encoder` turns it into bytes, `decoder` turns bytes back into it, `stream`
cuts a connection's byte stream into PDUs, and `values` converts var-bind values to and
from the pysnmp types the rest of the SNMP layer uses.
No sockets and no asyncio here: the session that talks to snmpd sits on top.
"""
