"""The ldap source: an OpenLDAP server's databases as LDIF, by ``slapcat``, loaded back by ``slapadd``.

Each *database* is named by its number in slapd's configuration: 0 is the configuration
itself (``cn=config``), 1… the directories of entries (``dc=example,dc=org``). A backup
stores each database as the file ``db-<N>.ldif``, with its suffix and its count of entries
in the snapshot's record. A restore loads them into a *stopped* slapd, configuration first:
the configuration (0) into an empty ``-F`` directory rebuilds a whole server.
"""
