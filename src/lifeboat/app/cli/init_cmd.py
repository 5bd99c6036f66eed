"""Create a new, empty repository (the passphrase is asked twice or read from the environment)."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.repository.crypto.keys import KdfParams

DEFAULT_KDF = KdfParams()
DEFAULT_MEMORY = f"{DEFAULT_KDF.memory_kib // 1024}MiB"


def command(
    ctx: Context,
    kdf: Annotated[str, Option(help="Key derivation: argon2id or scrypt.")] = "argon2id",
    kdf_memory: Annotated[str, Option(help="Argon2id memory per key derivation (e.g. 64MiB).")] = DEFAULT_MEMORY,
    kdf_iterations: Annotated[int, Option(help="Argon2id passes.", min=1, max=64)] = DEFAULT_KDF.time_cost,
) -> None:
    from lifeboat.core.units import parse_size
    from lifeboat.errors import UsageError
    from lifeboat.repository.repo import Repository
    from lifeboat.storage.registry import open_backend

    state: CliContext = ctx.obj
    if kdf not in ("argon2id", "scrypt"):
        raise UsageError(f"unknown --kdf {kdf!r}", hint="use argon2id or scrypt")
    try:
        memory_kib = parse_size(kdf_memory) // 1024
    except ValueError as exc:
        raise UsageError(f"--kdf-memory: {exc}") from None
    params = KdfParams(algorithm=kdf, time_cost=kdf_iterations, memory_kib=memory_kib)  # type: ignore[arg-type]
    problem = params.out_of_range()
    if problem is not None:
        option = "--kdf-memory" if "memory" in problem else "--kdf-iterations"
        default = f"{DEFAULT_MEMORY}, {DEFAULT_KDF.time_cost} passes"
        raise UsageError(f"{option}: {problem}", hint=f"the default ({default}) suits most hosts")
    url, repo_config = state.repository_target()
    backend = open_backend(url, env=state.environment(), options=repo_config.options if repo_config else None)
    repo = Repository.init(backend, state.passphrase(repo_config, confirm=True), kdf=params)
    if state.json:
        state.output.emit_json(
            {"repository_id": repo.header.repository_id, "location": backend.location, "key_id": repo.key_id}
        )
    else:
        state.output.line(f"created repository {repo.header.repository_id[:8]} at {backend.location}")
        state.output.line("keep the passphrase safe: without it the data cannot be read")
