"""Lifeboat: backup and disaster recovery for PostgreSQL-centred stacks."""

__version__ = "0.1.0"
