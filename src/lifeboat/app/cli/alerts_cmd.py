"""Notifications (docs/alerts.md): 'alerts test' sends a test message through each configured channel."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option

ChannelOpt = Annotated[
    str | None, Option("--channel", metavar="NAME", help="Only this channel of alerts.channels [default: every one].")
]


def test(ctx: Context, channel: ChannelOpt = None) -> None:
    """Send a test message through each alert channel now, synchronously; prints ok or the one-line
    failure per channel (exit 1 if any failed)."""
    from lifeboat.app.observability.alerts import send_test_messages
    from lifeboat.core.host import this_host
    from lifeboat.errors import ConfigError, LifeboatError

    state: CliContext = ctx.obj
    config = state.config()
    if config is None or config.alerts is None or not config.alerts.channels:
        raise ConfigError(
            "no alert channel is configured",
            hint="add alerts.channels to the configuration file (docs/alerts.md) and pass --config",
        )
    checks = send_test_messages(config.alerts, state.environment(), only=channel, host=this_host())
    failed = [check for check in checks if check.error is not None]
    if state.json:
        state.output.emit_json(
            {"channels": [{"name": c.name, "type": c.kind, "ok": c.error is None, "error": c.error} for c in checks]}
        )
    else:
        state.output.table(
            ["Channel", "Type", "Result"], [[c.name, c.kind, "ok" if c.error is None else c.error] for c in checks]
        )
    if failed:
        names = ", ".join(c.name for c in failed)
        raise LifeboatError(
            f"{len(failed)} of {len(checks)} alert channels failed: {names}",
            hint="the table above says why; check the receiver, its URL or password (file or variable) and the network",
        )


COMMANDS = {"test": test}
