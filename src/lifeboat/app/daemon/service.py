"""The daemon: ``lifeboat serve``'s process (docs/daemon.md).

The main thread runs the scheduler loop: it hands what is due to the runner, then sleeps on a
self-pipe until the earliest due time, a signal, a finished run or a heartbeat — no polling.
Signal handlers only set a flag and write one byte to the pipe:

- SIGTERM / SIGINT: stop scheduling, cancel the running jobs at a safe point, wait up to
  ``daemon.shutdown_deadline``, record them "cancelled", exit 0; a second one exits at once
  (code 130; its runs are recorded "interrupted" at the next start);
- SIGHUP: reload the configuration — validated first; an invalid file keeps the old one and
  the log says why.

Beside the loop: the runner's worker threads, the HTTP server's thread (/healthz, /metrics),
and short-lived threads for the archiving watch and the health check.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from lifeboat.app.daemon.actions import DaemonStopping, JobBusy, JobInfo, RunBrief, RunNotCancellable, RunNotFound
from lifeboat.app.daemon.archiving import ArchivingState, ArchivingWatch
from lifeboat.app.daemon.catalog import JobRun
from lifeboat.app.daemon.exposition import daemon_registry
from lifeboat.app.daemon.hooks import AlertsHook, AuditHook
from lifeboat.app.daemon.jobs import JobContext, run_job
from lifeboat.app.daemon.live import LiveRuns
from lifeboat.app.daemon.pidlock import DaemonLock
from lifeboat.app.daemon.recorder import Recorder
from lifeboat.app.daemon.runner import ALREADY_RUNNING, STOPPING, Runner, RunOutcome, RunRequest
from lifeboat.app.daemon.settings import DaemonSettings, split_listen
from lifeboat.app.daemon.timetable import Fire, Timetable
from lifeboat.errors import ExitCode, LifeboatError

HISTORY_PRUNE_EVERY = timedelta(days=1)  # runs older than daemon.keep_history leave the catalog
HEARTBEAT = 30.0  # seconds: the loop wakes at least this often, so /healthz knows it is alive
STALLED_AFTER = 3 * HEARTBEAT
_SIGNAL_POLL = 0.1  # seconds: how often the shutdown wait lets the main thread run a signal's handler


def utc_now() -> datetime:
    return datetime.now(UTC)


class Waker:
    """A self-pipe: :meth:`wait` sleeps until :meth:`wake` (safe in a signal handler), a signal
    (:meth:`receive_signals`) or a timeout."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._signals = False

    def receive_signals(self) -> None:
        """Wake :meth:`wait` on any signal (main thread only).

        The kernel delivers a signal sent to the process to any of its threads. Python runs
        the handler in the main thread, but only once that thread is back in the interpreter:
        a main thread asleep in ``select`` is not interrupted when another thread took the
        signal, and would stop only at its timeout (the heartbeat, 30 s). The C-level handler
        writes every signal to this pipe, whichever thread took it.
        """
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._signals = True

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            os.write(self._write, b"!")

    def wait(self, timeout: float) -> None:
        readable, _, _ = select.select([self._read], [], [], max(0.0, timeout))
        if readable:
            try:
                while os.read(self._read, 512):
                    pass
            except (BlockingIOError, OSError):
                pass

    def close(self) -> None:
        if self._signals:
            signal.set_wakeup_fd(-1)
            self._signals = False
        os.close(self._read)
        os.close(self._write)


@dataclass(frozen=True)
class ServeOptions:
    """How ``lifeboat serve`` was started."""

    config_path: str
    environment: Mapping[str, str]
    state_dir: str
    listen: str | None = None


class Daemon:
    """One run of the daemon, from :meth:`run` to its exit code."""

    def __init__(self, options: ServeOptions, *, log: Any, clock: Callable[[], datetime] = utc_now) -> None:
        self._options = options
        self._log = log
        self._clock = clock
        self._waker = Waker()
        self._lock = threading.RLock()
        self._stop_signal: str | None = None
        self._reload_requested = False
        self._last_tick = time.monotonic()
        self._started = time.time()
        self._health: Any = None
        self._catalog: Any = None
        self._alerts: AlertsHook | None = None
        self._registry: Any = None
        self.abandoned = False  # a run was left running at the shutdown deadline (serve_cmd exits at once)
        self._tokens: Any = None
        self._audit: AuditHook | None = None

    # --- signals --------------------------------------------------------------------------------
    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self._stop_signal is not None:  # the second one: no more waiting
            os.write(
                1,
                b'{"event": "forced stop", "level": "error", "signal": "%s"}\n' % signal.Signals(signum).name.encode(),
            )
            _stop_children()
            os._exit(int(ExitCode.INTERRUPTED))
        self._stop_signal = signal.Signals(signum).name
        self._waker.wake()

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self._reload_requested = True
        self._waker.wake()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        self._waker.receive_signals()

    # --- start --------------------------------------------------------------------------------
    def _load(self) -> tuple[Any, list[Any]]:
        """The configuration and its scheduled jobs (raises a LifeboatError for a bad file)."""
        from lifeboat.app.timezone import host_zone
        from lifeboat.config.jobs import scheduled_jobs
        from lifeboat.config.loader import load_config

        config = load_config(self._options.config_path)
        return config, scheduled_jobs(config, local_zone=host_zone(self._options.environment))

    def _context(self, config: Any) -> JobContext:
        return JobContext(config, self._options.config_path, self._options.environment, self._options.state_dir)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit code (0 after a graceful stop)."""
        from lifeboat.app.api.app import create_app
        from lifeboat.app.api.server import HttpServer, bind
        from lifeboat.app.daemon.catalog import open_catalog
        from lifeboat.operations.health_pg import probe_source

        config, jobs = self._load()
        settings = DaemonSettings.of(config, listen=self._options.listen)
        self._settings = settings
        self._install_signals()
        lock = DaemonLock(self._options.state_dir)
        lock.acquire()
        try:
            sock = bind(*split_listen(settings.listen))
            catalog = self._catalog = open_catalog(
                settings.catalog, state_dir=self._options.state_dir, host=settings.host
            )
        except BaseException:
            lock.release()
            raise
        now = self._clock()
        for run in catalog.interrupt_unfinished(finished=now):
            self._log.warning("run interrupted", job=run.job, run=run.id, started=run.started.isoformat(),
                              reason="the daemon ended while it ran (killed or crashed)")  # fmt: skip
        self._context_now = self._context(config)
        self._recorder = Recorder(catalog, self._log, host=settings.host, clock=self._clock)
        self._recorder.live = self.live
        self._runner = Runner(
            lambda request, events: run_job(self._context_now, request, events),
            self._recorder,
            max_parallel=settings.max_parallel_jobs,
            clock=self._clock,
            on_finished=self._finished,
        )
        self._timetable = Timetable(jobs, host=settings.host, now=now, last_fire=catalog.last_fire)
        self._archiving = ArchivingWatch(
            config.sources, probe=probe_source, clock=self._clock, on_change=self._archiving_changed
        )
        self._config = config
        self._recorder.seed(jobs)
        self._hooks(config)
        self._registry = daemon_registry(self._metrics_input, self._archiving.states)
        try:
            http = HttpServer(create_app(self), sock, tls=settings.tls)
        except BaseException:
            sock.close()
            catalog.close()
            lock.release()
            raise
        http.start()
        host, port = http.address
        self._log.info(
            "daemon started", version=_version(), pid=os.getpid(), config=self._options.config_path,
            listen=f"{host}:{port}", tls=settings.tls is not None, host=settings.host, catalog=catalog.location,
            jobs=len(jobs), max_parallel_jobs=settings.max_parallel_jobs,
        )  # fmt: skip
        self._log_schedule()
        try:
            self._loop()
        finally:
            code = self._shutdown()
            http.stop()
            catalog.close()
            self._waker.close()
            lock.release()
        return code

    def _hooks(self, config: Any) -> None:
        """Alerts and the audit log hear of each finished run (docs/alerts.md, docs/audit.md);
        called again at a reload, it replaces them when their sections changed."""
        state_dir = self._options.state_dir
        before = getattr(self, "_hooked", None)
        if before is not None and (before.alerts, before.audit) == (config.alerts, config.audit):
            return
        old = self._alerts
        try:
            self._alerts = AlertsHook(
                config, state_dir=state_dir, environ=self._options.environment,
                log=lambda text: self._log.warning("alerts", message=text), host=self._settings.host,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the daemon runs its jobs without alerts
            self._alerts = None
            self._log.error("alerts not available", error=_line(exc))
        if old is not None:
            old.close(5.0)
        try:
            context = self._context(config)
            self._audit = AuditHook(
                config,
                state_dir=state_dir,
                open_repository=lambda ref: context.repository(ref)[0],
                warn=lambda text: self._log.warning("audit", message=text),
            )
        except Exception as exc:  # noqa: BLE001 - as above
            self._audit = None
            self._log.error("audit log not available", error=_line(exc))
        self._hooked = config
        if before is None:
            self._recorder.on_finished.append(self._run_finished)

    def _run_finished(self, outcome: RunOutcome) -> None:
        if (alerts := self._alerts) is not None:
            alerts.run_finished(outcome)
        if (audit := self._audit) is not None:
            audit.run_finished(outcome)

    def _log_schedule(self) -> None:
        for name, when in sorted(self._timetable.next_times().items()):
            self._log.info("job scheduled", job=name, next_run=when.isoformat())

    # --- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        self._next_archiving = self._clock()
        self._next_health = self._clock()
        self._next_history = self._clock()
        while self._stop_signal is None:
            self._last_tick = time.monotonic()
            try:
                wake = self._turn()
            except Exception as exc:  # noqa: BLE001 - a fault of one turn never ends the daemon
                self._log.error("scheduler error", error=_line(exc), retry_seconds=HEARTBEAT)
                wake = self._clock() + timedelta(seconds=HEARTBEAT)
            self._waker.wait((wake - self._clock()).total_seconds())

    def _turn(self) -> datetime:
        """One turn of the loop: a pending reload, what is due, the checks; when to wake next."""
        if self._reload_requested:
            self._reload_requested = False
            self._reload()
        now = self._clock()
        with self._lock:
            fires = self._timetable.due(now)
            handled = self._timetable.take_handled()
        for job, fire_time in handled.items():
            try:
                self._catalog.set_last_fire(job, fire_time)
            except Exception as exc:  # noqa: BLE001 - logged; the schedule goes on
                self._log.error("catalog write failed", action="set_last_fire", error=_line(exc))
        for fire in fires:
            self._fire(fire)
        if now >= self._next_archiving:
            self._next_archiving = now + timedelta(seconds=self._settings.archiving_check)
            if self._archiving.watched:
                _background("archiving", self._archiving.check)
        if now >= self._next_health:
            self._next_health = now + timedelta(seconds=self._settings.health_check)
            _background("health", self._check_health)
        if now >= self._next_history:
            self._next_history = now + HISTORY_PRUNE_EVERY
            _background("history", self._prune_history)
        with self._lock:
            wake = self._timetable.wake_at()
        times = [self._next_archiving, self._next_health, now + timedelta(seconds=HEARTBEAT)]
        return min([*times, wake] if wake is not None else times)

    def _fire(self, fire: Fire) -> None:
        timing = fire.job.timing
        timeout = timing.timeout.total_seconds() if timing.timeout else None
        if fire.missed:
            self._log.info("missed runs", job=fire.job.name, missed=fire.missed, scheduled=fire.fire.isoformat(),
                           trigger=fire.trigger)  # fmt: skip
        self._runner.submit(RunRequest(fire.job, fire.trigger, fire.attempt, fire.fire, timeout))

    def _finished(self, outcome: RunOutcome) -> None:
        """A run ended (on its worker thread): schedule its retry, wake the loop."""
        name = outcome.request.job.name
        _release_memory()
        try:
            with self._lock:
                if outcome.status == "succeeded":
                    self._timetable.clear_retry(name)
                elif outcome.status in ("failed", "timed-out") and self._stop_signal is None:
                    at = self._timetable.retry(
                        name, attempt=outcome.request.attempt, exit_code=outcome.exit_code, now=self._clock()
                    )
                    if at is not None:
                        self._log.info(
                            "retry scheduled", job=name, attempt=outcome.request.attempt + 1, at=at.isoformat()
                        )
        except Exception as exc:  # noqa: BLE001 - the runner only knows it failed: say what and where
            self._log.error("retry scheduling failed", job=name, error=_line(exc))
        finally:
            self._waker.wake()

    # --- reload --------------------------------------------------------------------------------
    def _reload(self) -> None:
        try:
            config, jobs = self._load()
            settings = DaemonSettings.of(config, listen=self._options.listen)
        except LifeboatError as exc:
            self._log.error("reload failed", error=exc.message, hint=exc.hint, kept="the previous configuration")
            return
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the daemon keeps running
            self._log.error("reload failed", error=f"{type(exc).__name__}: {exc}", kept="the previous configuration")
            return
        try:
            with self._lock:
                before = {job.name: job for job in self._timetable.jobs}
                self._timetable.replace(jobs, now=self._clock(), last_fire=self._catalog.last_fire)
        except Exception as exc:  # noqa: BLE001 - the catalog could not say when jobs last ran
            self._log.error("reload failed", error=_line(exc), kept="the previous configuration")
            return
        after = {job.name: job for job in jobs}
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(name for name in set(after) & set(before) if after[name].timing != before[name].timing)
        self._config = config
        self._context_now = self._context(config)
        self._hooks(config)
        self._runner.set_max_parallel(settings.max_parallel_jobs)
        self._archiving.configure(config.sources)
        restart = [
            key
            for key in ("listen", "catalog", "host", "tls")
            if getattr(settings, key) != getattr(self._settings, key)
        ]
        self._settings = replace(settings, listen=self._settings.listen, catalog=self._settings.catalog,
                                 host=self._settings.host, tls=self._settings.tls)  # fmt: skip
        self._log.info("configuration reloaded", jobs=len(jobs), added=added, removed=removed, rescheduled=changed,
                       needs_restart=restart)  # fmt: skip
        self._log_schedule()

    # --- supervision ------------------------------------------------------------------------------
    def _archiving_changed(self, state: ArchivingState, before: ArchivingState | None) -> None:
        (self._log.info if state.healthy else self._log.warning)(
            "archiving state changed", source=state.source, state=state.state.name,
            previous=before.state.name if before is not None else None, summary=state.summary, hint=state.hint,
        )  # fmt: skip
        if self._alerts is not None:
            self._alerts.archiving_changed(state)

    def _prune_history(self) -> None:
        """Runs older than ``daemon.keep_history`` (this host's, finished) leave the catalog."""
        keep = self._settings.keep_history
        if keep is None:
            return
        try:
            removed = self._catalog.prune_history(self._clock() - timedelta(seconds=keep))
        except Exception as exc:  # noqa: BLE001 - logged; tried again the next day
            self._log.error("catalog write failed", action="prune_history", error=_line(exc))
            return
        if removed:
            self._log.info("history pruned", runs=removed, older_than_days=round(keep / 86400, 1))

    def _check_health(self) -> None:
        """The health report /metrics serves (the checks of 'lifeboat health'); never raises."""
        from lifeboat.app.access import open_repository
        from lifeboat.config.resolve import repository_target
        from lifeboat.operations.health import HealthRequest, check_health
        from lifeboat.operations.health_pg import probe_source
        from lifeboat.operations.health_records import latest_results

        context = self._context_now
        target = repository_target(context.config, None)
        if target is None:
            return
        url, repo_config = target
        directory = context.state_dir
        request = HealthRequest(
            configs=dict(context.config.sources),
            state_directory=directory,
            probe=probe_source,
            results=lambda repo: latest_results(repo, directory),
        )
        try:
            self._health = check_health(
                lambda: open_repository(
                    url, repo_config, context.passphrase(), environment=context.environment, read_only=True
                ),
                request,
            )
        except Exception as exc:  # noqa: BLE001
            self._log.error("health check failed", error=_line(exc))
        else:
            if (alerts := self._alerts) is not None:
                alerts.health_checked(self._health)
        _release_memory()

    # --- stop -------------------------------------------------------------------------------------
    def _shutdown(self) -> int:
        deadline = self._settings.shutdown_deadline
        running = [name for name, _ in self._runner.running()]
        self._log.info("daemon stopping", signal=self._stop_signal, running=running, deadline_seconds=deadline)
        self._runner.stop()
        if not self._wait_idle(deadline):
            for outcome in self._runner.abandon(
                f"did not reach a safe point within shutdown_deadline ({deadline:g} s)"
            ):
                self._log.warning("run abandoned", job=outcome.request.job.name, run=outcome.run_id)
            self.abandoned = True
            _stop_children()
        if self._alerts is not None:
            self._alerts.close(5.0)
        self._log.info("daemon stopped", signal=self._stop_signal)
        return int(ExitCode.OK)

    def _wait_idle(self, deadline: float) -> bool:
        """Wait up to ``deadline`` seconds for the runs to end, in slices of a tenth of a second.

        A signal the kernel hands to another thread (any thread may take one sent to the process)
        runs its Python handler only once the main thread runs Python again: one wait of the whole
        deadline held a second SIGTERM, the forced stop, until the runs ended."""
        end = time.monotonic() + deadline
        while not self._runner.wait_idle(min(_SIGNAL_POLL, max(0.0, end - time.monotonic()))):
            if time.monotonic() >= end:
                return False
        return True

    # --- what the HTTP interface reads ------------------------------------------------------------
    def liveness(self) -> tuple[bool, dict[str, Any]]:
        age = time.monotonic() - self._last_tick
        return age < STALLED_AFTER, {
            "loop_age_seconds": round(age, 3),
            "running": [name for name, _ in self._runner.running()],
            "stopping": self._stop_signal is not None,
        }

    # === issue 13: jobs and actions through the API (app/api/routes/jobs.py, docs/api.md) ========
    @functools.cached_property
    def live(self) -> LiveRuns:
        """The live events of the runs in progress (the API's server-sent run log)."""
        return LiveRuns()

    @property
    def host(self) -> str:
        return str(self._settings.host)

    def jobs(self) -> list[JobInfo]:
        """The scheduled jobs: timing, next run, this host's last run, the run in progress."""
        with self._lock:
            scheduled = list(self._timetable.jobs)
            next_times = self._timetable.next_times()
        current = {name: RunBrief(run_id, "running", None, None, "") for name, run_id in self._runner.running()}
        for request in self._runner.waiting():
            current.setdefault(request.job.name, _waiting_brief(request))
        infos = []
        for job in scheduled:
            found = self._catalog.runs(job=job.name, host=self.host, limit=2)  # the newest may be running
            last = next((run for run in found if run.status != "running"), None)
            now = current.get(job.name)
            if now is not None and now.status == "running":  # its start and trigger from the catalog
                now = next((_brief(run) for run in found if run.id == now.id), now)
            timeout = job.timing.timeout
            infos.append(
                JobInfo(
                    name=job.name, kind=job.kind, target=job.target, schedule=job.timing.text,
                    time_zone=job.timing.zone_name, priority=job.priority,
                    timeout_seconds=timeout.total_seconds() if timeout else None, next_run=next_times.get(job.name),
                    last_run=_brief(last) if last is not None else None,
                    current=now,
                )
            )  # fmt: skip
        return infos

    def runs(
        self, *, job: str | None = None, status: str | None = None, host: str | None = None, limit: int = 100
    ) -> list[Any]:
        """Runs of every host from the catalog (newest first), after the runs waiting here for a slot."""
        waiting = [
            _waiting_run(request, self.host)
            for request in self._runner.waiting()
            if request.run_id and (job is None or request.job.name == job) and host in (None, self.host)
        ]
        if status is not None and status != WAITING:
            waiting = []
        recorded = [] if status == WAITING else self._catalog.runs(job=job, status=status, host=host, limit=limit)
        return (waiting + recorded)[:limit]

    def find_run(self, run_id: str) -> Any:
        """The run ``run_id`` (a catalog row, or one waiting here for a slot); raises RunNotFound."""
        for request in self._runner.waiting():
            if request.run_id == run_id:
                return _waiting_run(request, self.host)
        found = self._catalog.run(run_id)
        if found is None:
            raise RunNotFound(f"no run {run_id!r}")
        return found

    def run_events(self, run_id: str) -> list[Any]:
        return list(self._catalog.events(run_id))

    def trigger(self, job: str, *, actor: str | None, trigger: str = "api") -> str:
        """Run ``job`` now (a scheduled job, or any job of the configuration: ``drill:db``) through
        the runner — its priority, no overlap, its timeout; the id of the run. Raises UnknownJob,
        JobBusy (it runs or waits already) or DaemonStopping."""
        from lifeboat.config.jobs import on_demand_job

        with self._lock:
            scheduled = {spec.name: spec for spec in self._timetable.jobs}
        spec: Any = scheduled.get(job) or on_demand_job(self._config, job)
        timing = getattr(spec, "timing", None)
        timeout = timing.timeout.total_seconds() if timing is not None and timing.timeout else None
        stopping = DaemonStopping("the daemon is stopping: it starts no more runs")
        if self._stop_signal is not None:
            raise stopping
        run_id = str(uuid.uuid4())
        reason = self._runner.offer(RunRequest(spec, trigger, 1, None, timeout, run_id=run_id, actor=actor))
        if reason == STOPPING:
            raise stopping
        if reason is not None:
            current = dict(self._runner.running()).get(job) or next(
                (r.run_id for r in self._runner.waiting() if r.job.name == job), None
            )
            state = "already running" if reason == ALREADY_RUNNING else "already waiting for a slot"
            raise JobBusy(f"job {job} is {state}" + (f" (run {current})" if current else ""), run_id=current)
        return run_id

    def cancel(self, run_id: str, *, actor: str | None) -> str:
        """Cancel the run ``run_id``: "running" (it stops at its next safe point and is recorded
        cancelled) or "waiting" (taken off the queue, recorded cancelled). Raises RunNotFound, or
        RunNotCancellable for a run that ended or runs on another host."""
        how = self._runner.cancel_run(run_id, f"by API token {actor}" if actor else "through the API")
        if how is not None:
            self._log.info("run cancel requested", run=run_id, by=actor, was=how)
            return how
        found = self._catalog.run(run_id)
        if found is None:
            raise RunNotFound(f"no run {run_id!r}")
        if found.status != "running":
            raise RunNotCancellable(f"run {run_id} already ended: {found.status}")
        if found.host == self.host:  # between its last safe point and its record
            raise RunNotCancellable(f"run {run_id} is ending", hint="its end is recorded in a moment")
        raise RunNotCancellable(
            f"run {run_id} runs on host {found.host!r}, not on this daemon's host {self.host!r}",
            hint=f"cancel it through the daemon of {found.host}",
        )

    def restore_plan(self, *, snapshot: str, target: str, source: str | None) -> dict[str, Any]:
        """What restoring ``snapshot`` into the directory ``target`` would do; nothing written."""
        from lifeboat.app.daemon.plans import directory_plan

        return directory_plan(self._context_now, snapshot=snapshot, target=target, source=source)

    # === end of issue 13's section ================================================================

    def _metrics_input(self) -> Any:
        from lifeboat.app.observability.metrics import MetricsInput

        return MetricsInput(health=self._health, jobs=self._recorder.stats())

    def metrics(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._registry)

    def api_tokens(self) -> Any:
        """The API's tokens, read again from the state directory when the file changes."""
        from lifeboat.app.api.tokens import TokenStore, tokens_path

        if self._tokens is None:
            self._tokens = TokenStore(tokens_path(self._options.state_dir))
        return self._tokens

    def audit_api_call(self, token: str, action: str, arguments: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """A mutating API call as an audit entry: the daemon's OS user and the token's name."""
        from lifeboat.app.observability.audit import Actor, os_user

        audit = self._audit
        if audit is None:
            from lifeboat.app.observability.audit import AuditError

            raise AuditError("the audit log is not available (the daemon's log said why at start)")
        audit.log.append(actor=Actor(os_user(), token=token), action=action, arguments=arguments, result=result)

    def audit_ready(self) -> None:
        """With ``audit.required``: raise AuditError unless an API call's entry could be written now."""
        from lifeboat.app.observability.audit import AuditError

        config = getattr(self, "_config", None)
        if config is None or not config.audit.required:
            return
        if self._audit is None:
            raise AuditError("the audit log is not available (the daemon's log said why at start)")
        self._audit.log.check_writable()

    def api_error(self, message: str, error: Exception) -> None:
        self._log.error("api error", message=message, error=_line(error))

    # --- what the API's read resources read (docs/api.md "Resources"; app/daemon/readview.py) -----
    def reads(self) -> Any:
        """The :class:`~lifeboat.app.api.reads.ReadView` of this daemon (made on first use): the
        configuration in use, one shared read-only repository, a health report refreshed in the
        background (each one is /metrics' too), the jobs' counters, the audit log."""
        made = getattr(self, "_reads", None)
        if made is not None:
            return made
        from lifeboat.app.daemon.readview import DaemonReads
        from lifeboat.operations.health_pg import probe_source

        with self._lock:  # the first requests come on several threads at once
            if getattr(self, "_reads", None) is None:
                self._reads = DaemonReads(
                    lambda: self._context_now,
                    jobs=self._recorder.stats,
                    probe=probe_source,
                    on_health=lambda report: setattr(self, "_health", report),
                    on_error=self.api_error,
                )
        return self._reads

    # --- end of the API's read resources ---------------------------------------------------------


WAITING = "waiting"


def _waiting_brief(request: RunRequest) -> RunBrief:
    return RunBrief(request.run_id or "", WAITING, None, None, request.trigger)


def _waiting_run(request: RunRequest, host: str) -> JobRun:
    """A run asked for and waiting for a slot, as a catalog row (not yet in the catalog)."""
    job = request.job
    fields: dict[str, Any] = {"started": None}  # not started yet
    return JobRun(
        id=request.run_id or "", host=host, job=job.name, kind=job.kind, target=job.target, trigger=request.trigger,
        attempt=request.attempt, finished=None, status=WAITING, exit_code=None, error=None,
        bytes_read=None, bytes_added=None, **fields,
    )  # fmt: skip


def _brief(run: JobRun) -> RunBrief:
    return RunBrief(run.id, run.status, run.started, run.finished, run.trigger)


def _stop_children() -> None:
    """SIGTERM to the programs this process started (a producer a run still waits on): runs
    abandoned at the shutdown deadline must not leave them behind, orphaned."""
    me = str(os.getpid())
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                parent = stat.read().rsplit(")", 1)[1].split()[1]
            if parent == me:
                os.kill(int(entry.name), signal.SIGTERM)
        except (OSError, IndexError):
            continue


def _background(name: str, work: Callable[[], None]) -> None:
    """Run ``work`` on its own short-lived thread, unless one of that name still runs."""
    if any(thread.name == name for thread in threading.enumerate()):
        return
    threading.Thread(target=work, name=name, daemon=True).start()


def _release_memory() -> None:
    from lifeboat.app.runtime import release_memory

    release_memory()


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version() -> str:
    from lifeboat import __version__

    return __version__
