"""Run the scheduler daemon: the configured jobs on their schedules, WAL archiving watched,
/healthz and /metrics on daemon.listen, JSON log lines on standard output (docs/daemon.md).

SIGTERM or SIGINT stops it (running jobs cancelled at a safe point within
daemon.shutdown_deadline, exit 0); SIGHUP reloads the configuration file."""

from __future__ import annotations

from typing import Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Exit, Option


def command(
    ctx: Context,
    listen: Annotated[
        str | None,
        Option(
            "--listen", metavar="HOST:PORT", help="Serve the API, /healthz and /metrics here [default: daemon.listen]."
        ),
    ] = None,
) -> None:
    import os
    import sys

    from lifeboat.app.daemon.service import Daemon, ServeOptions
    from lifeboat.app.observability.logging import configure, logger
    from lifeboat.errors import UsageError

    state: CliContext = ctx.obj
    if not state.config_path:
        raise UsageError(
            "the daemon runs the jobs of a configuration file", hint="pass --config FILE or set LIFEBOAT_CONFIG"
        )
    configure()
    options = ServeOptions(
        config_path=os.path.abspath(state.config_path),
        environment=state.environment(),
        state_dir=state.state_directory(),
        listen=listen,
    )
    daemon = Daemon(options, log=logger())
    code = daemon.run()
    if daemon.abandoned:
        # A run left at the shutdown deadline still holds its thread (and the upload pool's, which
        # the interpreter would join at exit): end now, as the deadline promises; it is recorded.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise Exit(code)
