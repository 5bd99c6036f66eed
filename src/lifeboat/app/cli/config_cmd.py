"""Work with the configuration file."""

from __future__ import annotations

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context


def validate(ctx: Context) -> None:
    """Check the configuration file; errors name the bad key (exit code 2)."""
    from lifeboat.errors import ConfigError

    state: CliContext = ctx.obj
    if not state.config_path:
        raise ConfigError("no configuration file given", hint="pass --config or set LIFEBOAT_CONFIG")
    config = state.config()
    assert config is not None
    summary = {
        "file": state.config_path,
        "repositories": sorted(config.repositories),
        "sources": sorted(config.sources),
        "retention": config.retention is not None or any(s.retention for s in config.sources.values()),
    }
    if state.json:
        state.output.emit_json({"valid": True, **summary})
        return
    state.output.line(
        f"{state.config_path}: valid ({len(config.repositories)} repositories, {len(config.sources)} sources)"
    )


COMMANDS = {"validate": validate}
