"""The configuration schema (docs/configuration.md is its reference)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lifeboat.core.retention import RetentionPolicy
from lifeboat.core.units import parse_duration

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepositoryConfig(_Strict):
    """Where a repository lives and how to unlock it (never the passphrase itself)."""

    url: str = Field(min_length=1)
    password_file: str | None = None
    password_command: str | None = None
    lock_wait: str = "0s"

    @field_validator("lock_wait")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> RepositoryConfig:
        if self.password_file and self.password_command:
            raise ValueError("give password_file or password_command, not both")
        return self


class RetentionConfig(_Strict):
    keep_last: int = Field(0, ge=-1)
    keep_hourly: int = Field(0, ge=-1)
    keep_daily: int = Field(0, ge=-1)
    keep_weekly: int = Field(0, ge=-1)
    keep_monthly: int = Field(0, ge=-1)
    keep_yearly: int = Field(0, ge=-1)
    keep_within: str | None = None
    keep_tags: list[str] = Field(default_factory=list)

    @field_validator("keep_within")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def policy(self) -> RetentionPolicy:
        within: timedelta | None = parse_duration(self.keep_within) if self.keep_within else None
        return RetentionPolicy(
            keep_last=self.keep_last,
            keep_hourly=self.keep_hourly,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
            keep_yearly=self.keep_yearly,
            keep_within=within,
            keep_tags=tuple(self.keep_tags),
        )


class FilesSourceConfig(_Strict):
    type: Literal["files"] = "files"
    paths: list[str] = Field(min_length=1)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    one_file_system: bool = False
    tags: list[str] = Field(default_factory=list)
    repository: Name | None = None
    retention: RetentionConfig | None = None

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} must be absolute")
        return paths


class LifeboatConfig(_Strict):
    version: Literal[1] = 1
    repositories: dict[Name, RepositoryConfig] = Field(default_factory=dict)
    default_repository: Name | None = None
    sources: dict[Name, FilesSourceConfig] = Field(default_factory=dict)
    retention: RetentionConfig | None = None

    @model_validator(mode="after")
    def _references(self) -> LifeboatConfig:
        if self.default_repository and self.default_repository not in self.repositories:
            raise ValueError(f"default_repository names {self.default_repository!r}, which is not in repositories")
        for name, source in self.sources.items():
            if source.repository and source.repository not in self.repositories:
                raise ValueError(f"sources.{name}.repository names {source.repository!r}, which is not in repositories")
        return self

    def repository(self, name: str | None) -> tuple[str, RepositoryConfig] | None:
        """The named repository, else the default, else the only one."""
        if name and name in self.repositories:
            return name, self.repositories[name]
        if name:
            return None
        if self.default_repository:
            return self.default_repository, self.repositories[self.default_repository]
        if len(self.repositories) == 1:
            return next(iter(self.repositories.items()))
        return None

    def retention_for(self, source: str) -> RetentionPolicy | None:
        configured = self.sources.get(source)
        if configured is not None and configured.retention is not None:
            return configured.retention.policy()
        return self.retention.policy() if self.retention is not None else None
