"""How fast ``lifeboat serve`` answers while a backup runs: the overview endpoint
(``GET /api/v1/overview``) under 20 concurrent clients for 60 s, and the dashboard's overview
page in headless Chromium (its HTML's size and the time until its data is on the screen).

The setup is real and local: a repository in /var/tmp with three backups, a verify and a drill
of a files source; a viewer token made with ``lifeboat token create``; ``lifeboat serve`` as a
process; the same load first without a backup (``--baseline`` seconds, the machine's own
noise), then while a backup started through the API (an operator's ``POST
/api/v1/jobs/backup:stream/run``) of a ``command`` source streams random data (32 MiB/s, so the
repository grows by about 2 GiB a minute) for the whole measurement — checked running before
and after. The load is 20 httpx async clients in
this process, each sending its next request when its answer is in (a closed loop, bounded
locally): p50/p90/p99/max latency and requests per second. Then Debian's chromium
(/usr/bin/chromium, /usr/bin/chromedriver, via selenium) loads the page with the token in
sessionStorage, cold (new profile) and then warm (revalidated assets): the Navigation Timing
entry of the page (transfer size of the HTML, DOMContentLoaded) and the dashboard's own
"data rendered" mark (``document.body.dataset.ready``, set when a page has drawn its data).

    python bench/api_bench.py [--seconds 60] [--clients 20] [--page-loads 5] [--quick] [--no-write]

``--quick`` is 10 s and 2 page loads, printed only. Targets (issue 13): p99 < 200 ms; the
page's HTML < 100 KB; interactive < 1 s. Results go to bench/results/api-<date>.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import dir_bytes, machine  # noqa: E402

STREAM_MIB_PER_S = 32
PASSPHRASE = "api-bench-passphrase"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Setup:
    root: Path
    port: int
    env: dict[str, str]
    token: str = ""  # a viewer's: the load's
    operator: str = ""  # starts the backup through the API
    run_id: str = ""  # the backup's run
    repo_bytes: int = 0  # the repository's size when the daemon started
    daemon: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "lifeboat.yaml"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "lifeboat", "-c", str(self.config), *args],
            env=self.env, capture_output=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"lifeboat {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()


def build(root: Path) -> Setup:
    data = root / "data"
    for d in range(10):
        (data / f"dir{d}").mkdir(parents=True)
        for f in range(50):
            (data / f"dir{d}" / f"file{f}.txt").write_text(f"{d}/{f}\n" * (100 + f))
    password = root / "passphrase"
    password.write_text(PASSPHRASE + "\n")
    password.chmod(0o600)
    stream = (
        "import os, sys, time\n"
        f"rate = {STREAM_MIB_PER_S}\n"
        "start = time.monotonic()\n"
        "sent = 0\n"
        "while True:\n"
        "    sys.stdout.buffer.write(os.urandom(1 << 20))\n"
        "    sent += 1\n"
        "    ahead = sent / rate - (time.monotonic() - start)\n"
        "    if ahead > 0:\n"
        "        time.sleep(ahead)\n"
    )
    (root / "stream.py").write_text(stream)
    port = free_port()
    env = {
        **os.environ,
        "LIFEBOAT_STATE_DIR": str(root / "state"),
        "PYTHONPATH": str(HERE.parent / "src"),
    }
    for name in ("LIFEBOAT_PASSWORD", "LIFEBOAT_PASSWORD_FILE", "LIFEBOAT_PASSWORD_COMMAND", "LIFEBOAT_REPO"):
        env.pop(name, None)
    setup = Setup(root, port, env)
    setup.config.write_text(
        f"""repositories:
  main:
    url: {root / "repo"}
    password_file: {password}
default_repository: main
daemon:
  listen: 127.0.0.1:{port}
  shutdown_deadline: 30s
sources:
  files:
    type: files
    paths: [{data}]
    rpo: 1d
    rto: 10min
  stream:
    type: command
    command: [{sys.executable}, {root / "stream.py"}]
    rpo: 1d
"""
    )
    setup.cli("init")
    for n in range(3):
        (data / "dir0" / "changing.txt").write_text(f"version {n}\n")
        setup.cli("backup", "--source", "files")
    setup.cli("verify", "--source", "files")
    setup.cli("drill", "--source", "files")
    setup.token = setup.cli("token", "create", "--name", "bench", "--role", "viewer").strip().splitlines()[-1]
    setup.operator = setup.cli("token", "create", "--name", "bench-op", "--role", "operator").strip().splitlines()[-1]
    return setup


def wait(condition: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def stream_run(setup: Setup) -> dict[str, Any] | None:
    """The stream source's backup run when it is running (GET /api/v1/runs/{id}), else None."""
    try:
        answer = httpx.get(f"{setup.base_url}/api/v1/runs/{setup.run_id}", headers=auth(setup), timeout=10)
    except httpx.HTTPError:
        return None
    run: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
    return run if run.get("status") == "running" else None


def auth(setup: Setup) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup.token}"}


def serve(setup: Setup) -> None:
    setup.repo_bytes = dir_bytes(setup.root / "repo")
    log = open(setup.root / "daemon.log", "wb")  # noqa: SIM115 - closed with the process
    setup.daemon = subprocess.Popen(
        [sys.executable, "-m", "lifeboat", "-c", str(setup.config), "serve"],
        env=setup.env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait(lambda: _ok(f"{setup.base_url}/api/v1/overview", auth(setup)), "the daemon to answer")


def _ok(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def start_backup(setup: Setup) -> dict[str, Any]:
    """Start the stream source's backup as an operator would (POST /api/v1/jobs/…/run)."""
    answer = httpx.post(
        f"{setup.base_url}/api/v1/jobs/backup:stream/run",
        headers={"Authorization": f"Bearer {setup.operator}"}, timeout=30,
    )  # fmt: skip
    if answer.status_code != 202:
        raise SystemExit(f"the backup did not start: {answer.status_code} {answer.text}")
    setup.run_id = answer.json()["run_id"]
    return dict(wait(lambda: stream_run(setup), "the stream backup to run"))


def measure(setup: Setup, seconds: float, clients: int) -> dict[str, Any]:
    assert setup.daemon is not None
    cpu_before, load_before = cpu_seconds(setup.daemon.pid), os.getloadavg()[0]
    load = asyncio.run(_load(setup, seconds, clients)).summary()
    load["daemon_cores_busy"] = round((cpu_seconds(setup.daemon.pid) - cpu_before) / load["seconds"], 2)
    load["load_average_1m"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return load


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the load ------------------------------------------------------------------------------------
@dataclass
class Load:
    seconds: float
    clients: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)

        return {
            "clients": self.clients,
            "seconds": round(self.wall_s, 1),
            "requests": len(ordered),
            "requests_per_s": round(len(ordered) / self.wall_s, 1),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(ordered[-1], 1),
            "mean_ms": round(statistics.fmean(ordered), 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
        }


async def _client(client: httpx.AsyncClient, url: str, until: float, load: Load) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = await client.get(url)
            await response.aread()
        except httpx.HTTPError:
            load.errors += 1
            continue
        load.latencies_ms.append((time.perf_counter() - started) * 1000)
        load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1


async def _load(setup: Setup, seconds: float, clients: int) -> Load:
    load = Load(seconds, clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=setup.base_url, headers=auth(setup), limits=limits, timeout=30) as client:
        for _ in range(10):  # warm: the connection pool, the daemon's first report
            (await client.get("/api/v1/overview")).raise_for_status()
        started = time.monotonic()
        until = started + seconds
        await asyncio.gather(*(_client(client, "/api/v1/overview", until, load) for _ in range(clients)))
        load.wall_s = time.monotonic() - started
    return load


# --- the page ------------------------------------------------------------------------------------
PAGE_TIMING = """
const nav = performance.getEntriesByType('navigation')[0].toJSON();
const resources = performance.getEntriesByType('resource').map(r => ({name: r.name, transferSize: r.transferSize,
  encodedBodySize: r.encodedBodySize, decodedBodySize: r.decodedBodySize, duration: r.duration}));
const ready = document.body.dataset.ready ? Number(document.body.dataset.ready) - performance.timeOrigin : null;
return {nav, resources, data_rendered_ms: ready, page: document.body.dataset.page || null};
"""


def page_loads(setup: Setup, loads: int) -> list[dict[str, Any]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    results: list[dict[str, Any]] = []
    try:
        driver.get(setup.base_url + "/")  # the sign-in page; the token goes where the page keeps it
        driver.execute_script("sessionStorage.setItem('lifeboat.token', arguments[0]);", setup.token)
        driver.execute_script("performance.clearResourceTimings();")
        for n in range(loads):
            if n == 0:  # a cold load: a new tab's cache is empty (cache disabled for this one load)
                driver.execute_cdp_cmd("Network.enable", {})
                driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
            else:
                driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
            driver.get(setup.base_url + "/?load=" + str(n) + "#/")
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script(
                    "return document.body.dataset.page === 'overview' && !!document.body.dataset.ready"
                )
            )
            timing = driver.execute_script(PAGE_TIMING)
            nav = timing["nav"]
            results.append(
                {
                    "load": "cold" if n == 0 else "warm",
                    "html_transfer_bytes": nav["transferSize"],
                    "html_body_bytes": nav["decodedBodySize"],
                    "all_transfer_bytes": nav["transferSize"] + sum(r["transferSize"] for r in timing["resources"]),
                    "all_body_bytes": nav["decodedBodySize"] + sum(r["decodedBodySize"] for r in timing["resources"]),
                    "requests": 1 + len(timing["resources"]),
                    "ttfb_ms": round(nav["responseStart"], 1),
                    "dom_interactive_ms": round(nav["domInteractive"], 1),
                    "dom_content_loaded_ms": round(nav["domContentLoadedEventEnd"], 1),
                    "load_event_ms": round(nav["loadEventEnd"], 1),
                    "data_rendered_ms": round(timing["data_rendered_ms"], 1),
                    "sources_shown": driver.execute_script(
                        "return document.querySelectorAll('main [data-source], main tbody tr, main .source').length"
                    ),
                }
            )
        driver.save_screenshot(str(setup.root / "overview.png"))
    finally:
        driver.quit()
    return results


def stop(setup: Setup) -> dict[str, Any]:
    """Stop the daemon (the backup is cancelled at a safe point); the stream run's record."""
    assert setup.daemon is not None
    setup.daemon.send_signal(signal.SIGTERM)
    setup.daemon.wait(120)
    from lifeboat.app.daemon.catalog import open_catalog

    catalog = open_catalog(None, state_dir=str(setup.root / "state"), host=socket.gethostname())
    try:
        runs = catalog.runs(job="backup:stream", limit=5)
    finally:
        catalog.close()
    run = runs[0]
    seconds = ((run.finished or run.started) - run.started).total_seconds()
    # a cancelled run records no byte counts: the repository's growth says what the backup stored
    grown = dir_bytes(setup.root / "repo") - setup.repo_bytes
    return {"status": run.status, "seconds": round(seconds, 1), "stored_bytes": grown,
            "stored_mib_per_s": round(grown / 1048576 / seconds, 1) if seconds else None}  # fmt: skip


def _row(name: str, load: dict[str, Any]) -> str:
    return (
        f"| {name} | {load['seconds']} | {load['requests']} | {load['requests_per_s']} | {load['p50_ms']} | "
        f"{load['p90_ms']} | {load['p99_ms']} | {load['max_ms']} | {load['mean_ms']} | {load['statuses']} | "
        f"{load['errors']} | {load['daemon_cores_busy']} | {load['load_average_1m']} |"
    )


def report(
    context: dict[str, Any],
    load: dict[str, Any],
    baseline: dict[str, Any] | None,
    pages: list[dict[str, Any]],
    backup: dict[str, Any],
) -> str:
    cold = pages[0]
    warm = pages[1:] or pages
    warm_rendered = sorted(p["data_rendered_ms"] for p in warm)
    warm_dcl = sorted(p["dom_content_loaded_ms"] for p in warm)
    verdict = {
        "p99 < 200 ms": load["p99_ms"] < 200,
        "HTML < 100 KB": cold["html_body_bytes"] < 100_000,
        "interactive < 1 s (cold, data rendered)": cold["data_rendered_ms"] < 1000,
    }
    rows = "\n".join(
        f"| {p['load']} | {p['html_transfer_bytes']} | {p['html_body_bytes']} | {p['all_transfer_bytes']} | "
        f"{p['requests']} | {p['ttfb_ms']} | {p['dom_content_loaded_ms']} | {p['data_rendered_ms']} |"
        for p in pages
    )
    return (
        f"# lifeboat serve: the overview under load, with a backup running ({context['date']})\n\n"
        f"Machine: {context['machine']}; load average before the run {context['load_average_1m']} (shared "
        "with other work).\n"
        f"The daemon (one process) served a repository of {context['snapshots']} snapshots; first without a "
        "backup (the baseline), then while a backup it was asked for through the API "
        f"(`POST /api/v1/jobs/backup:stream/run`) of a `command` source streamed {STREAM_MIB_PER_S} MiB/s of "
        "random data into the same repository, from before that load to after the page loads ("
        f"{backup['status']} by the "
        f"daemon's stop after {backup['seconds']} s, having stored {backup['stored_bytes'] / 1048576:.0f} MiB, "
        f"{backup['stored_mib_per_s']} MiB/s).\n\n"
        f"## `GET /api/v1/overview`, {load['clients']} concurrent clients\n\n"
        "| | s | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | mean ms | statuses | errors "
        "| daemon cores busy | load average (start, end) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        + (_row("no backup (baseline)", baseline) + "\n" if baseline else "")
        + _row("**a backup running**", load)
        + "\n\n"
        "A closed loop: each of the clients (httpx async, in the benchmark's process on the same two cores)\n"
        "sends its next request when the answer is in; a latency is the client's, from send to the last\n"
        "byte. The overview's answer is the one the dashboard's first page reads.\n\n"
        "## The overview page in headless Chromium\n\n"
        "| load | HTML transfer B | HTML body B | all transfer B | requests | TTFB ms | DOMContentLoaded ms "
        "| data rendered ms |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Times from the navigation's start (Navigation Timing). *data rendered* is the dashboard's own mark\n"
        "(`document.body.dataset.ready`, set when the overview has drawn its data from the API): the page is\n"
        "interactive then. The cold load has the browser's cache disabled; the warm ones revalidate the\n"
        f"assets (304). Warm data rendered: median {statistics.median(warm_rendered):.0f} ms, max "
        f"{warm_rendered[-1]:.0f} ms; warm DOMContentLoaded median {statistics.median(warm_dcl):.0f} ms.\n\n"
        "## Targets\n\n" + "\n".join(f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in verdict.items()) + "\n\n"
        "Run: `python bench/api_bench.py` (60 s; `--quick`: 10 s, printed only).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--page-loads", type=int, default=5)
    parser.add_argument("--baseline", type=float, default=20, help="seconds of the same load before the backup")
    parser.add_argument("--quick", action="store_true", help="10 s, 2 page loads, nothing written")
    parser.add_argument("--no-write", action="store_true", help="print, do not write bench/results")
    parser.add_argument("--keep", action="store_true", help="keep the directory (its path is printed)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.page_loads, args.baseline, args.no_write = 10, 2, 5, True
    for binary in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is missing: install the Debian packages chromium and chromium-driver")
    root = Path(tempfile.mkdtemp(prefix="lifeboat-api-bench-", dir="/var/tmp"))
    setup: Setup | None = None
    try:
        load_average = round(os.getloadavg()[0], 1)
        setup = build(root)
        snapshots = len(json.loads(setup.cli("--json", "snapshots")))
        serve(setup)
        baseline = measure(setup, args.baseline, args.clients) if args.baseline else None
        running_before = start_backup(setup)
        load = measure(setup, args.seconds, args.clients)
        running_after = stream_run(setup)
        if not running_after or running_after.get("id") != running_before.get("id"):
            raise SystemExit("the backup did not run for the whole measurement: make the stream longer")
        pages = page_loads(setup, args.page_loads)
        if stream_run(setup) is None:
            raise SystemExit("the backup ended before the page loads did")
        backup = stop(setup)
        context = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "load_average_1m": load_average,
            "snapshots": snapshots,
            "stream_mib_per_s": STREAM_MIB_PER_S,
        }
        text = report(context, load, baseline, pages, backup)
        print(text)
        if not args.no_write:
            out = HERE / "results"
            out.mkdir(exist_ok=True)
            stamp = time.strftime("%Y-%m-%d")
            (out / f"api-{stamp}.json").write_text(
                json.dumps(
                    {
                        "context": context,
                        "overview_load": load,
                        "baseline_no_backup": baseline,
                        "page_loads": pages,
                        "backup": backup,
                    },
                    indent=2,
                )
                + "\n"
            )
            (out / f"api-{stamp}.md").write_text(text)
            print(f"written: {out / f'api-{stamp}.md'}")
    finally:
        if setup is not None and setup.daemon is not None and setup.daemon.poll() is None:
            setup.daemon.kill()
            setup.daemon.wait(30)
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
