"""The on-storage repository format (v1): keys, packs, index, snapshots, locks, and the
write session that stores them in the order packs → index → snapshot.

Terms: a *blob* is one chunk of file data or one tree, named by the keyed BLAKE3 of its
plaintext; a *pack* is one storage object holding many encrypted blobs; the *index*
maps blobs to packs; a *snapshot* names the root tree of one backup.
"""
