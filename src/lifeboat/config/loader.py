"""Reading the YAML configuration file into a validated :class:`LifeboatConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lifeboat.config.model import SOURCE_TYPES, LifeboatConfig
from lifeboat.errors import ConfigError


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not str(part).startswith("function-")]
    # pydantic names the union member (the source's type) after the source's name: drop it.
    if len(parts) > 2 and parts[0] == "sources" and parts[2] in SOURCE_TYPES:
        del parts[2]
    return ".".join(parts)


def parse_config(text: str, *, origin: str = "<config>") -> LifeboatConfig:
    import yaml
    from pydantic import ValidationError

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{origin}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys")
    try:
        return LifeboatConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (check its spelling)"
            where = _location(tuple(error["loc"]))
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigError(f"{origin}: " + "; ".join(problems)) from None


def load_config(path: str | Path) -> LifeboatConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} does not exist", hint="check --config / LIFEBOAT_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    return parse_config(text, origin=str(path))
