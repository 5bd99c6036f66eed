"""``lifeboat schedule install``: the configuration's schedule as systemd units, a cron file or
Kubernetes CronJobs (docs/install.md). Printed, or written to ``--output-dir`` — where an
existing file with other content is never replaced without ``--force``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from lifeboat.app.cli.context import CliContext
from lifeboat.app.cli.framework import Context, Option
from lifeboat.errors import UsageError, option

if TYPE_CHECKING:
    from lifeboat.app.deploy.plan import Layout
    from lifeboat.config.model import LifeboatConfig


def _writable(config: LifeboatConfig) -> tuple[str, ...]:
    """What the jobs write on this host's file system besides the state directory: local
    repositories, and the drills' scratch directories (by default they use a private /tmp)."""
    from lifeboat.storage.registry import storage_url

    found = []
    for repo in config.repositories.values():
        parsed = storage_url(repo.url)  # a plain path, file:///path, file://localhost/path
        if parsed.scheme == "file" and os.path.isabs(parsed.path):
            found.append(parsed.path)
    for source in config.sources.values():
        drill = getattr(source, "drill", None)
        if drill is not None and drill.scratch_dir:
            found.append(drill.scratch_dir)
    return tuple(dict.fromkeys(found))


def _user_and_group(user: str | None, group: str | None) -> tuple[str, str]:
    """``user`` (default: postgres if it exists here, else whoever runs this) and ``group``
    (default: that user's primary group here, else a group named like the user)."""
    import grp
    import pwd

    if user is None:
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            user = pwd.getpwuid(os.geteuid()).pw_name
    if group is None:
        try:
            group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        except KeyError:
            group = user  # a user of another host (the files are for it)
    return user, group


def _write(files: dict[str, str], directory: Path, *, force: bool) -> list[tuple[Path, str]]:
    """Write ``files`` below ``directory``; refuse before writing anything if one exists with
    other content. Returns (path, "written" | "unchanged")."""
    directory.mkdir(parents=True, exist_ok=True)
    clashes = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and not force and path.read_text(encoding="utf-8", errors="replace") != text:
            clashes.append(str(path))
    if clashes:
        raise UsageError(
            f"{', '.join(clashes)} exist{'s' if len(clashes) == 1 else ''} with other content; nothing was written",
            hint="compare them with the output of this command without {option:output_dir}, then pass {option:force}",
        )
    done = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") == text:
            done.append((path, "unchanged"))
            continue
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o644)
        temporary.replace(path)
        done.append((path, "written"))
    return done


def _next_steps(kind: str, directory: Path, files: dict[str, str], layout: Layout) -> list[str]:
    from lifeboat.app.deploy.systemd import enable_commands

    if kind == "systemd":
        units = Path("/etc/systemd/system")
        steps = [] if directory == units else [f"install -m 0644 {directory}/* {units}/"]
        return [*steps, *enable_commands(files)]
    if kind == "cron":
        if directory == Path("/etc/cron.d"):
            return []  # cron reads /etc/cron.d itself
        return [f"install -m 0644 {directory}/lifeboat /etc/cron.d/lifeboat"]
    namespace = f" --namespace {layout.namespace}" if layout.namespace else ""
    return [
        f"kubectl create secret generic lifeboat{namespace} --from-file=passphrase=/etc/lifeboat/passphrase",
        f"kubectl apply{namespace} -f {directory}",
    ]


def install_command(
    ctx: Context,
    systemd: Annotated[bool, Option("--systemd", help="systemd units: a service for 'lifeboat serve'.")] = False,
    timers: Annotated[bool, Option("--timers", help="With --systemd: a service and a timer per job instead.")] = False,
    cron: Annotated[bool, Option("--cron", help="A file for /etc/cron.d, one line per job.")] = False,
    kubernetes: Annotated[bool, Option("--kubernetes", help="CronJob manifests, a ConfigMap and a Secret.")] = False,
    output_dir: Annotated[
        str | None, Option("--output-dir", "-o", metavar="DIR", help="Write the files into DIR (default: print).")
    ] = None,
    force: Annotated[bool, Option("--force", help="Replace files in DIR that have other content.")] = False,
    user: Annotated[
        str | None, Option("--user", metavar="USER", help="Run the jobs as USER [default: postgres if it exists].")
    ] = None,
    group: Annotated[str | None, Option("--group", metavar="GROUP", help="... and GROUP [default: USER's].")] = None,
    program: Annotated[
        str, Option("--program", metavar="PATH", help="The installed lifeboat [default: /usr/local/bin/lifeboat].")
    ] = "/usr/local/bin/lifeboat",
    password_file: Annotated[
        str | None,
        Option("--password-file", metavar="FILE", help="The passphrase file the jobs read."),
    ] = None,
    image: Annotated[
        str | None, Option("--image", metavar="IMAGE", help="With --kubernetes: the container image.")
    ] = None,
    namespace: Annotated[
        str | None, Option("--namespace", metavar="NS", help="With --kubernetes: the namespace of every object.")
    ] = None,
) -> None:
    """Write the schedule as systemd units, a cron file or Kubernetes CronJobs."""
    from lifeboat.app.deploy import cron as cron_gen
    from lifeboat.app.deploy import kubernetes as k8s_gen
    from lifeboat.app.deploy import systemd as systemd_gen
    from lifeboat.app.deploy.plan import Layout
    from lifeboat.app.timezone import host_zone as host_zone_of
    from lifeboat.config.jobs import scheduled_jobs
    from lifeboat.core.host import this_host
    from lifeboat.core.jobtiming import zone_name as zone_name_of
    from lifeboat.core.units import parse_duration

    state: CliContext = ctx.obj
    chosen = [name for name, on in (("systemd", systemd), ("cron", cron), ("kubernetes", kubernetes)) if on]
    if len(chosen) != 1:
        raise UsageError(
            "say which files to write" if not chosen else f"{' and '.join(chosen)} cannot be written at once",
            hint="pass one of {option:systemd}, {option:cron} or {option:kubernetes}",
        )
    kind = chosen[0]
    if timers and kind != "systemd":
        raise UsageError(f"{option('timers')} belongs to {option('systemd')}", hint="drop it, or write systemd units")
    if (image or namespace) and kind != "kubernetes":
        raise UsageError(f"{option('image')} and {option('namespace')} belong to {option('kubernetes')}")
    config = state.config()
    if config is None or state.config_path is None:
        raise UsageError(
            "the schedule comes from the configuration file", hint="pass {option:config} FILE (or set LIFEBOAT_CONFIG)"
        )
    if not os.path.isabs(program):
        raise UsageError(f"the program must be an absolute path, not {program!r}", hint="e.g. /usr/local/bin/lifeboat")
    run_as, run_group = _user_and_group(user, group)
    host_zone = host_zone_of(os.environ)
    zone_name = zone_name_of(host_zone)
    layout = Layout(
        program=program,
        config=os.path.abspath(state.config_path),
        user=run_as,
        group=run_group,
        state_dir=state.state_directory() if os.environ.get("LIFEBOAT_STATE_DIR") else "/var/lib/lifeboat",
        password_file=os.path.abspath(password_file) if password_file else None,
        writable=_writable(config),
        host=config.daemon.host or this_host(),
        host_zone=zone_name,
        shutdown_deadline_seconds=int(parse_duration(config.daemon.shutdown_deadline).total_seconds()),
        image=image,
        namespace=namespace,
        starts_postgres=frozenset(
            f"drill:{name}" for name, source in config.sources.items() if source.type in ("postgres", "pg_dump")
        ),
    )
    jobs = scheduled_jobs(config, local_zone=host_zone)
    if kind == "systemd":
        files = systemd_gen.timer_units(jobs, layout) if timers else systemd_gen.serve_unit(layout, jobs)
    elif kind == "cron":
        files = cron_gen.cron_file(jobs, layout)
    else:
        config_text = Path(state.config_path).read_text(encoding="utf-8")
        files = k8s_gen.manifests(jobs, layout, config_text)
    if output_dir is None:
        if state.json:
            state.output.emit_json({"files": files})
        elif kind == "kubernetes":
            state.output.raw(k8s_gen.one_stream(files).rstrip("\n"))
        else:
            shown = [text if len(files) == 1 else f"# --- {name} ---\n{text}" for name, text in files.items()]
            state.output.raw("\n".join(shown).rstrip("\n"))
        return
    directory = Path(output_dir).absolute()
    done = _write(files, directory, force=force)
    steps = _next_steps(kind, directory, files, layout)
    if state.json:
        state.output.emit_json({"files": {str(p): how for p, how in done}, "next": steps})
        return
    for path, how in done:
        state.output.line(f"{how} {path}")
    if steps:
        state.output.line("then run:")
        for step in steps:
            state.output.line(f"  {step}")
