"""The managed domain, organised by FCAPS area: fault, configuration, accounting, performance, security."""
