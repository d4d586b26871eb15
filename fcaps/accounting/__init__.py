"""Accounting: the outage ledger (who was down, when, for how long, why) and the
availability, MTTR and MTBF it yields per subject and window."""
