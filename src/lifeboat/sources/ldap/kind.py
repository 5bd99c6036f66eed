"""The ``ldap`` kind: slapd's databases dumped by slapcat, loaded back by slapadd (see the package's docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lifeboat.core.snapshot import Snapshot
from lifeboat.core.tree import Node, NodeType
from lifeboat.errors import IntegrityError, UsageError, option
from lifeboat.sources.base import (
    BackupContext,
    BackupOptions,
    IntoServer,
    Produced,
    RestoreContext,
    RestoreDestination,
    RestoreInto,
    SourceKind,
    Verification,
    describe_into,
)
from lifeboat.sources.command.spec import program_environment

if TYPE_CHECKING:
    from lifeboat.config.model import LdapSourceConfig
    from lifeboat.sources.ldap.restore import LdapLoad, LdapRestore
    from lifeboat.sources.plan import RestorePlan
    from lifeboat.sources.tools.slapd import SlapdConfig

SNAPSHOT_KIND = "ldap"
DEFAULT_CONFIG_DIR = "/etc/ldap/slapd.d"
# Clients' settings (/etc/ldap/ldap.conf, ~/.ldaprc) have no business in a backup.
_TOOL_ENV = {"LDAPNOINIT": "1"}


@dataclass(frozen=True)
class LdapRequest:
    """Dump ``databases`` (None: the configuration and every data database) of ``server``."""

    server: SlapdConfig
    databases: tuple[int, ...] | None = None
    source: str = ""
    env: Mapping[str, str] | None = field(default=None, repr=False)


def slapd_config(config_dir: str | None, config_file: str | None, run_as: str | None) -> SlapdConfig:
    """Where slapd's configuration is (the Debian directory when none is named) and who its tools run as."""
    from lifeboat.sources.tools.slapd import SlapdConfig, default_user

    if not config_dir and not config_file:
        config_dir = DEFAULT_CONFIG_DIR
    return SlapdConfig(
        config_dir or None, None if config_dir else config_file, default_user(config_dir, config_file, run_as)
    )


class LdapSource(SourceKind):
    name = "ldap"
    config_model = "lifeboat.config.model:LdapSourceConfig"
    snapshot_kinds = (SNAPSHOT_KIND,)
    restores_into = frozenset({RestoreInto.SERVER})
    runs_programs = True

    def label(self, request: LdapRequest) -> str:
        return f"backing up slapd ({request.server.where})"

    def request(self, config: LdapSourceConfig | None, options: BackupOptions) -> LdapRequest:
        settings = options.settings
        config_dir = settings.get("config_dir") or (config.config_dir if config is not None else None)
        config_file = settings.get("config_file") or (config.config_file if config is not None else None)
        run_as = settings.get("run_as") or (config.run_as if config is not None else None)
        databases = settings.get("databases") or (config.databases if config is not None else None)
        return LdapRequest(
            server=slapd_config(config_dir, config_file, run_as),
            databases=tuple(databases) if databases else None,
            source=options.source or "ldap",
            env=program_environment(options.environment, _TOOL_ENV),
        )

    def backup(self, ctx: BackupContext, request: LdapRequest) -> Produced:
        """slapcat each database into its own file; any slapcat that fails saves nothing (exit 16)."""
        from lifeboat.core.tree import Tree
        from lifeboat.sources.files.archiver import ArchiveResult
        from lifeboat.sources.ldap.backup import choose, dump, server_layout

        server = request.server
        layout = server_layout(server, request.env)
        dumped = [dump(ctx, server, database, request.env) for database in choose(layout, server, request.databases)]
        tree = ctx.saver.save_tree(Tree(tuple(d.node() for d in dumped)))
        record = {
            "config_dir": server.config_dir,
            "config_file": server.config_file,
            "run_as": server.run_as,
            "pid_file": layout.pid_file,
            "databases": [d.to_json() for d in dumped],
        }
        return Produced(
            tree=tree,
            source=request.source,
            kind=SNAPSHOT_KIND,
            paths=(server.where,),
            archive=ArchiveResult(tree=tree, files_new=len(dumped), bytes_total=sum(d.stored.size for d in dumped)),
            extra={"ldap": record},
            summary={"entries": sum(d.entries for d in dumped)},
        )

    def restore(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> LdapRestore:
        """Load the snapshot's databases (``databases``, default all; configuration first) with
        slapadd into a stopped slapd (``config_dir``, default the one backed up)."""
        from lifeboat.sources.ldap.restore import load

        files, request = self._load_request(ctx, snapshot, into)
        return load(ctx, snapshot, files, request)

    def plan(self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination) -> RestorePlan:
        """Each database slapadd would load, and where; refused as the load refuses before it writes."""
        from lifeboat.sources.ldap.restore import preflight
        from lifeboat.sources.plan import PlannedWrite, new_plan

        files, request = self._load_request(ctx, snapshot, into)
        plan = new_plan(self.name, snapshot, describe_into(into))
        recorded = {d.get("number"): d for d in snapshot.extra.get("ldap", {}).get("databases", [])}
        for number in request.databases:
            suffix = str(recorded.get(number, {}).get("suffix", "")) or "cn=config"
            entries = recorded.get(number, {}).get("entries", "?")
            plan.writes.append(
                PlannedWrite(
                    f"database {number} ({suffix}, {entries} entries) by slapadd",
                    request.server.where,
                    files[number].size,
                    1,
                    on_disk=False,
                )
            )
        plan.attempt(lambda: preflight(ctx, files, request), "slapd is not running")
        if any(number != 0 for number in request.databases):
            plan.unchecked.append(
                f"whether a data database already holds entries (the restore refuses it without {option('force')})"
            )
        return plan

    def _load_request(
        self, ctx: RestoreContext, snapshot: Snapshot, into: RestoreDestination
    ) -> tuple[dict[int, Node], LdapLoad]:
        """The snapshot's database files and what to load of them into which server."""
        from lifeboat.sources.ldap.restore import LdapLoad

        self.check_restore(into)
        assert isinstance(into, IntoServer)
        if snapshot.kind != SNAPSHOT_KIND:
            raise UsageError(
                f"snapshot {snapshot.short_id} is a {snapshot.kind} backup, not an ldap one",
                hint=f"name the ldap source with {option('source')}, or an ldap snapshot's id",
            )
        settings = into.settings
        config: LdapSourceConfig | None = ctx.config
        record = snapshot.extra.get("ldap", {})
        files = stored_files(ctx, snapshot)
        config_dir = settings.get("config_dir") or (config.config_dir if config is not None else None)
        config_file = None if config_dir else (config.config_file if config is not None else None)
        if not config_dir and not config_file:
            config_dir, config_file = record.get("config_dir"), record.get("config_file")
        # The server's user: given, configured, the configuration's owner, else the one the backup
        # ran as (a new host's directory, missing or root's, has no owner to go by).
        run_as = settings.get("run_as") or (config.run_as if config is not None else None)
        if run_as is None:
            from lifeboat.sources.tools.slapd import default_user

            run_as = default_user(config_dir, config_file, None) or record.get("run_as")
        wanted = tuple(sorted(set(settings.get("databases") or files)))
        missing = [n for n in wanted if n not in files]
        if missing:
            raise UsageError(
                f"snapshot {snapshot.short_id} holds no database {missing[0]} (it holds {', '.join(map(str, files))})",
                hint=f"choose among them with {option('database')}",
            )
        request = LdapLoad(
            server=slapd_config(config_dir, config_file, run_as),
            databases=wanted,
            force=bool(settings.get("force")),
            quick=bool(settings.get("quick")),
            env=program_environment(ctx.environment, _TOOL_ENV),
        )
        return dict(files), request

    def verify(self, ctx: RestoreContext, snapshot: Snapshot) -> Verification:
        """Each database's file is LDIF — entries separated by blank lines, each starting with
        its dn — with as many entries as the backup counted; then, where slapadd is installed,
        ``slapadd -u`` of each into a scratch server built from the stored configuration."""
        from lifeboat.sources.ldap.dryrun import dry_run
        from lifeboat.sources.ldap.ldif import EntryCounter

        problems: list[str] = []
        recorded = snapshot.extra.get("ldap", {}).get("databases", [])
        files = {n.name: n for n in ctx.loader.load_tree(snapshot.tree).nodes if n.type is NodeType.FILE}
        if not recorded:
            problems.append("the snapshot records no databases")
        for database in recorded:
            name = str(database.get("file", ""))
            node = files.get(name)
            if node is None:
                problems.append(f"{name}: missing from the snapshot")
                continue
            counter = EntryCounter()
            for data in ctx.loader.load_blobs(node.content):
                ctx.events.check()
                counter.feed(data)
            counter.finish()
            if not counter.ok:
                problems.append(f"{name}: not LDIF at {counter.problems[0]}")
            elif counter.entries != database.get("entries"):
                problems.append(f"{name}: {counter.entries} entries, the backup counted {database.get('entries')}")
        checked = "each database's LDIF and its count of entries"
        if problems:
            return Verification(checked=checked, problems=tuple(problems))
        found = dry_run(ctx, stored_files(ctx, snapshot), program_environment(ctx.environment, _TOOL_ENV))
        if found is None:
            return Verification(checked=checked + " (no slapadd -u here: slapadd or the configuration is missing)")
        return Verification(
            checked=checked + ", and slapadd -u of each into the stored configuration", problems=tuple(found)
        )

    def describe(self, snapshot: Snapshot) -> list[str]:
        return [
            f"database {d.get('number')} ({d.get('suffix') or 'cn=config'}): "
            f"{d.get('entries')} entries in {d.get('file')}"
            for d in snapshot.extra.get("ldap", {}).get("databases", [])
            if isinstance(d, dict)
        ]


def stored_files(ctx: RestoreContext, snapshot: Snapshot) -> dict[int, Node]:
    """The snapshot's ``db-<N>.ldif`` files by database number, in order."""
    found: dict[int, Node] = {}
    for node in ctx.loader.load_tree(snapshot.tree).nodes:
        stem = node.name.removeprefix("db-").removesuffix(".ldif")
        if node.type is NodeType.FILE and node.name.startswith("db-") and stem.lstrip("-").isdigit():
            found[int(stem)] = node
    if not found:
        raise IntegrityError(f"snapshot {snapshot.short_id} holds no db-<N>.ldif file: it is not an ldap backup")
    return dict(sorted(found.items()))
