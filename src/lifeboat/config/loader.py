"""Reading the YAML configuration file into a validated :class:`LifeboatConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lifeboat.config.model import ALERT_CHANNEL_TYPES, LifeboatConfig
from lifeboat.errors import ConfigError
from lifeboat.sources.registry import kind_names


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not str(part).startswith("function-")]
    # pydantic names the union member (the source's type) after the source's name: drop it.
    if len(parts) > 2 and parts[0] == "sources" and parts[2] in kind_names():
        del parts[2]
    if len(parts) > 3 and parts[:2] == ["alerts", "channels"] and parts[3] in ALERT_CHANNEL_TYPES:
        del parts[3]  # the same for an alert channel's type
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
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply to be a Lifeboat configuration", hint=_SHAPE) from None
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors fail with plain errors (!!int "x", 2020-13-01)
        raise ConfigError(f"{origin}: not valid YAML: a value cannot be read ({exc})", hint=_SHAPE) from None
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
            where = _location(tuple(error["loc"]))
            if error["type"] == "extra_forbidden":
                message = "unknown key (check its spelling)"
            elif error["type"] == "union_tag_invalid":  # a source's type that no kind has
                where = f"{where}.type"
                tag = (error.get("ctx") or {}).get("tag", "")
                message = f"unknown source type {tag!r} (known: {', '.join(kind_names())})"
                if where.startswith("alerts.channels."):
                    message = f"unknown channel type {tag!r} (known: {', '.join(ALERT_CHANNEL_TYPES)})"
            elif error["type"] == "union_tag_not_found":  # an alert channel without its type
                where = f"{where}.type"
                message = f"missing (one of: {', '.join(ALERT_CHANNEL_TYPES)})"
            problems.append(f"{where}: {message}" if where else message)
        shown = "; ".join(problems[:MAX_PROBLEMS])
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise ConfigError(f"{origin}: {shown}{more}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: nested too deeply to be a Lifeboat configuration", hint=_SHAPE) from None


_SHAPE = "docs/configuration.md shows the file's keys and their shape; 'lifeboat config validate' checks it"
# A message stays one readable line: the first problems, then how many more.
MAX_PROBLEMS = 5
# A configuration is a few kilobytes; this bounds what a wrong --config (/dev/zero) can cost.
MAX_CONFIG_BYTES = 4 << 20


def load_config(path: str | Path) -> LifeboatConfig:
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} does not exist", hint="check {option:config} / LIFEBOAT_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read configuration file {path}: {exc.strerror}",
            hint="check {option:config} / LIFEBOAT_CONFIG and that this user may read the file",
        ) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"configuration file {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a Lifeboat configuration",
            hint="check {option:config} / LIFEBOAT_CONFIG",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (byte {exc.start} is not)",
            hint="a configuration file is YAML text (docs/configuration.md); check {option:config} / LIFEBOAT_CONFIG",
        ) from None
    return parse_config(text, origin=str(path))
