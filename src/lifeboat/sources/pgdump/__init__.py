"""The pg_dump source: every database of a PostgreSQL cluster as a ``pg_dump -Fc -Z0`` archive,
and its roles and tablespaces as ``pg_dumpall --globals-only`` SQL, in one snapshot.

The snapshot holds ``globals.sql`` and one ``<database>.dump`` per database, each streamed from
its program straight into the repository (nothing is copied to local disk). The archives are
uncompressed so that content-defined chunking finds the unchanged rows of yesterday's dump:
a daily dump of a mostly unchanged database costs little more than its changes.

A restore runs ``pg_restore`` (one database, under its own or a new name, whole or one schema
or some tables, or as SQL) and ``psql`` for the globals; ``verify`` reads every archive through
``pg_restore`` to its end.
"""
