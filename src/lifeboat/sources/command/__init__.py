"""The command source: a program whose standard output is the backup, stored as one file.

The *producer* is the program a backup runs (``pg_dump -Fc appdb``); its output is the
*stream*, stored as the snapshot's single file, and the backup is saved only if the
producer exited 0. The *consumer* is the program a restore runs (``pg_restore -d appdb``):
the stored file is written to its standard input, and the restore succeeds only if every
byte was read back, verified and taken, and the consumer exited 0.
"""
