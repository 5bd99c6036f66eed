"""Lifeboat: backup and disaster recovery for PostgreSQL-centred stacks."""

__version__ = "0.1.0"

START_CODE = "from lifeboat.app.cli.entry import main; main()"
"""What ``python -c`` runs to start Lifeboat's command line (``python -c START_CODE wal-push %p``).

A server runs ``wal-push`` once per WAL file and waits for each: unlike ``python -m lifeboat``,
this imports no ``runpy`` (and, with it, ``importlib.util``, ``contextlib``, ``collections``
and ``functools``), a third of what a call answered from the spool costs besides Python itself.
"""
