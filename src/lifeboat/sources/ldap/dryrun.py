"""The deeper half of an ldap verify: ``slapadd -u`` (a dry run) of each stored database into a
scratch server built from the stored configuration — every entry checked against the schema
the configuration defines, nothing written anywhere but a temporary directory.

The scratch configuration is the stored one with each database's ``olcDbDirectory`` moved into
the temporary directory and the pid and args files left out, so nothing of a server on this
host is touched. It needs slapadd (and the modules the configuration loads) on the verifying
host; without them, or without the configuration in the snapshot, the dry run is skipped.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping

from lifeboat.core.protocols import BlobLoader
from lifeboat.core.tree import Node
from lifeboat.errors import MissingTool, SourceError
from lifeboat.sources.base import RestoreContext
from lifeboat.sources.command.restore import consume
from lifeboat.sources.command.spec import ProgramSpec
from lifeboat.sources.tools.program import Consumer
from lifeboat.sources.tools.slapd import SlapdConfig, find_tool

_DATABASE = re.compile(r"^olcDatabase::? *\{(-?\d+)\}", re.IGNORECASE)
_DIRECTORY = re.compile(r"^olcDbDirectory::? ", re.IGNORECASE)
_DROPPED = re.compile(r"^(olcPidFile|olcArgsFile)::? ", re.IGNORECASE)


def scratch_config(config_ldif: bytes, base: str) -> bytes:
    """The stored configuration with its databases' directories below ``base`` (each made)."""
    out: list[str] = []
    for entry in _entries(config_ldif.decode(errors="surrogateescape")):
        number = next((found.group(1) for line in entry if (found := _DATABASE.match(line))), None)
        for line in entry:
            if _DROPPED.match(line):
                continue
            if _DIRECTORY.match(line) and number is not None:
                directory = os.path.join(base, f"db-{number}")
                os.makedirs(directory, exist_ok=True)
                out.append(f"olcDbDirectory: {directory}")
            else:
                out.append(line)
        out.append("")
    return "\n".join(out).encode(errors="surrogateescape")


def _entries(text: str) -> list[list[str]]:
    """Entries as lists of unfolded lines (continuations joined)."""
    entries: list[list[str]] = [[]]
    for raw in text.splitlines():
        if not raw:
            if entries[-1]:
                entries.append([])
        elif raw.startswith(" ") and entries[-1]:
            entries[-1][-1] += raw[1:]
        else:
            entries[-1].append(raw)
    return [entry for entry in entries if entry]


def dry_run(ctx: RestoreContext, files: Mapping[int, Node], env: Mapping[str, str] | None) -> list[str] | None:
    """What ``slapadd -u`` finds wrong in each stored database (empty: nothing); None when the
    dry run cannot happen here (no slapadd, no configuration in the snapshot)."""
    try:
        find_tool("slapadd")
    except MissingTool:
        return None
    if 0 not in files:
        return None
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lifeboat-ldap-verify-") as base:
        config_dir = os.path.join(base, "slapd.d")
        os.mkdir(config_dir, 0o700)
        server = SlapdConfig(config_dir=config_dir)
        config = scratch_config(_content(ctx.loader, files[0]), base)
        try:
            with Consumer(server.slapadd(0), env=env, stdout_to_stderr=True) as loading:
                loading.write(config)
                loading.finish()
        except SourceError as exc:
            return [f"{files[0].name}: slapadd cannot build a server from it: {exc.message}"]
        for number, node in files.items():
            if number == 0:
                continue
            ctx.events.check()
            try:
                consume(
                    ctx.loader,
                    node,
                    ProgramSpec(tuple(server.slapadd(number, dry_run=True)), env),
                    progress=ctx.events.progress,
                    stdout_to_stderr=True,
                    cancel=ctx.events.check,
                )
            except SourceError as exc:
                problems.append(f"{node.name}: slapadd -u refuses it: {exc.message}")
    return problems


def _content(loader: BlobLoader, node: Node) -> bytes:
    return b"".join(loader.load_blobs(node.content))
