"""Load an ldap snapshot's databases into a stopped slapd with slapadd, configuration first:
'lifeboat restore ldap SNAPSHOT --source NAME [--database N] [--config-dir DIR] [--force]'."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Argument, Context, Option
from lifeboat.app.cli.options import HostOpt, NoLockOpt, PlanOpt, TagOpt


def command(
    ctx: Context,
    snapshot: Annotated[str, Argument(help="Snapshot id prefix, or 'latest' (of --source).")],
    source: Annotated[
        list[str] | None, Option("--source", "-s", metavar="SOURCE", help="The configured ldap source (repeatable).")
    ] = None,
    database: Annotated[
        list[int] | None,
        Option("--database", "-n", metavar="N", min=0, help="Only this database (repeatable; 0 is cn=config)."),
    ] = None,
    config_dir: Annotated[
        str | None,
        Option("--config-dir", "-F", metavar="DIR", help="slapd's cn=config directory (default: the source's)."),
    ] = None,
    run_as: Annotated[
        str | None, Option("--run-as", metavar="USER", help="Run slapadd as this user (default: the source's).")
    ] = None,
    quick: Annotated[bool, Option("--quick", help="slapadd -q: faster, fewer checks while loading.")] = False,
    force: Annotated[
        bool,
        Option(
            "--force",
            help="Empty a database that holds entries (its data.mdb) or a non-empty --config-dir first.",
        ),
    ] = False,
    host: HostOpt = None,
    tag: TagOpt = None,
    no_lock: NoLockOpt = False,
    plan: PlanOpt = False,
) -> None:
    import os

    from lifeboat.app.cli.restore_cmd import restore_through
    from lifeboat.config.resolve import configured_source
    from lifeboat.sources.base import IntoServer

    state: CliContext = ctx.obj
    only = source[0] if source and len(source) == 1 else None
    entry = configured_source(state.config(), only)
    configured = entry if entry is not None and entry.type == "ldap" else None
    settings = {
        "config_dir": os.path.abspath(config_dir) if config_dir else None,
        "databases": tuple(database or ()),
        "run_as": run_as,
        "quick": quick,
        "force": force,
    }
    into = IntoServer(settings={key: value for key, value in settings.items() if value})
    done = restore_through(
        state,
        "ldap",
        snapshot,
        into,
        source=source,
        host=host,
        tag=tag,
        no_lock=no_lock,
        plan=plan,
        configured=configured,
    )
    if state.json:
        state.output.emit_json(done.to_json())
        return
    state.output.line(done.result.describe())
