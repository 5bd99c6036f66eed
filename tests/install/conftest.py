"""The PostgreSQL fixtures (real clusters archiving into a repository) for the install tests."""

from tests.postgres.conftest import server_lifeboat, worlds

__all__ = ["server_lifeboat", "worlds"]
