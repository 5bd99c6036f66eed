"""The mariadb source: a MariaDB (or MySQL) server, backed up logically or physically.

*Logical* (``method: logical``, the default): ``mariadb-dump --single-transaction`` of each
database, streamed into the repository as ``<database>.sql`` of one snapshot; restored
into a running server — a whole database (under its name or another) or one table — by the
``mariadb`` client. *Physical* (``method: physical``): ``mariabackup --backup
--stream=xbstream`` of the whole server, streamed as ``backup.xbstream``; restored by
``mbstream -x`` into an empty data directory and ``mariabackup --prepare``.

Either records the server's version and the binary log position the backup is consistent
with (or that the binary log is off), from which ``mariadb-binlog`` replays later changes
(docs/sources.md). Passwords reach the programs only in a private option file
(:mod:`lifeboat.sources.tools.mariadb`).
"""
