"""Logical dumps of database servers (pg_dump, mariadb-dump) and the other dump-based kinds."""
