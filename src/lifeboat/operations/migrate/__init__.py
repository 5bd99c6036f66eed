"""Moving data out of and into PostgreSQL: the ``migrate`` use cases (docs/migrate.md).

The nouns: an :class:`~lifeboat.operations.migrate.endpoint.Endpoint` is a database to
connect to; an *origin* (:mod:`.origin`) yields one — a live server, or a scratch cluster
recovered from a backup to a point in time (later: a logical dump restored into a scratch
database); a :class:`~lifeboat.operations.migrate.catalog.Table` is a table and its
columns; a *package* (:mod:`.package`) is a ``tar.zst`` of the schema, one CSV file per
table and a manifest with row counts and checksums, which :mod:`.importer` loads back.
"""
