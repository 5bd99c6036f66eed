"""The config source: configuration files (``/etc/…``, ``.env`` files, TLS keys) stored exactly
like the files kind stores a tree, plus an *inventory* (see :mod:`.inventory`) and the paths
that are *secrets*: content that no front end ever shows, not even in a comparison.

``lifeboat diff --live SOURCE`` (operations/live_diff.py) compares the host's files with the
newest snapshot before a restore lays them down again.
"""
