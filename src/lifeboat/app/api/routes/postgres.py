"""``GET /api/v1/postgres/{source}/window``: what ``lifeboat --json pg info --source SOURCE``
shows — base backups, archived WAL per timeline (ranges, gaps, parents and switch points),
the recoverable window and the one retention guarantees."""

from __future__ import annotations

from fastapi import APIRouter

from lifeboat.app.api.auth import Viewer
from lifeboat.app.api.read_models import ClusterOut, PostgresWindow
from lifeboat.app.api.routes.readkit import NOT_FOUND, Reads
from lifeboat.errors import ObjectNotFound

router = APIRouter(prefix="/api/v1", tags=["read"])


@router.get(
    "/postgres/{source}/window",
    summary="A PostgreSQL source's recoverable window, base backups, WAL ranges, gaps and timelines",
    responses=NOT_FOUND,
)
def window(source: str, view: Reads, _: Viewer) -> PostgresWindow:
    from lifeboat.core.basebackup import KIND as POSTGRES_KIND
    from lifeboat.errors import cli_flag

    config = view.config().sources.get(source)
    if config is not None and getattr(config, "type", None) != POSTGRES_KIND:
        raise ObjectNotFound(
            f"source {source!r} is a {config.type} source, not postgres", hint="GET /api/v1/sources lists them"
        )
    clusters = view.postgres(source)
    if config is None and not clusters:
        raise ObjectNotFound(
            f"no postgres source {source!r}: not configured, and the repository holds no base backups of it",
            hint="GET /api/v1/sources lists them",
        )
    return PostgresWindow(source=source, clusters=[ClusterOut.model_validate(c.to_json(cli_flag)) for c in clusters])
