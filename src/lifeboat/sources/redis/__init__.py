"""The redis source: a Redis server's RDB snapshot, fetched with ``redis-cli --rdb -``.

The *RDB* is the server's whole dataset in one file (what it loads at start-up from
``dir``/``dbfilename``). ``redis-cli --rdb`` asks the server for it as a replica would, so it
works against a remote server without access to its files, and it is a full snapshot whether
or not the server also keeps an append-only file (AOF). The RDB is streamed into the
repository as the snapshot's one file, ``dump.rdb``; a restore writes it into the directory of
a *stopped* server, which loads it when it starts.
"""
