"""Alerting: rules decide which stories matter, channels deliver, the outbox makes it exactly once."""
