"""The sqlite source: SQLite database files, each copied online with SQLite's backup API.

A *database* is one SQLite file named in the source's ``paths``. The *copy* is what
``sqlite3.Connection.backup`` makes of it in one step under a read lock: a consistent database
as of one committed transaction, even while other processes write (WAL or rollback journal).
The copy lands in a private temporary file, passes ``PRAGMA integrity_check``, and is stored
under the database's own path, so a snapshot looks like a files snapshot of the databases.
"""
