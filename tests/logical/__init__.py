"""Logical backups of databases and key-value stores (redis, sqlite): real servers, real files."""
