"""Logical backups of databases and key-value stores (mariadb, redis, sqlite): real servers, real files."""
