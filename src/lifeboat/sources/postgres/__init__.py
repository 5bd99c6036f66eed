"""PostgreSQL as a source: physical base backups, WAL archiving and recovery (docs/postgres.md).

Terms: the *data directory* (PGDATA) holds a cluster; *WAL* segments record every change
and are archived by ``archive_command`` (``wal-push``) and fetched back by
``restore_command`` (``wal-fetch``) through a *spool* of status files; a *base backup* is a
copy of the data directory taken in backup mode plus the WAL that makes it consistent;
*recovery* replays WAL onto a base backup up to a target, then *promotes* on a new timeline.
"""
