"""Kubernetes manifests: a CronJob (batch/v1) per job, a ConfigMap holding lifeboat.yaml, and
the Secret the jobs read the passphrase from — without its value, which never belongs in a
manifest: ``kubectl create secret`` puts it there (the comment above the Secret says how).

A CronJob never runs two of its Jobs at once (``concurrencyPolicy: Forbid``); after the
controller was down it starts one late run at most (``missed: once``), within
``startingDeadlineSeconds``; ``activeDeadlineSeconds`` is the job's timeout and
``backoffLimit`` its retries, except for exit codes a retry does not fix
(``podFailurePolicy``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import yaml

from lifeboat.app.deploy.calendar import Untranslatable, cron_fields, interval_as_cron
from lifeboat.app.deploy.plan import Layout, no_jobs, unique_slugs
from lifeboat.config.jobs import ScheduledJob
from lifeboat.core.jobtiming import FINAL_EXIT_CODES
from lifeboat.errors import UsageError

SECRET = "lifeboat"  # noqa: S105 - a name, not a value; key 'passphrase': mounted as a file
ENV_SECRET = "lifeboat-env"  # noqa: S105 - optional: storage credentials as environment variables (AWS_ACCESS_KEY_ID, …)
CONFIG_MAP = "lifeboat-config"
CONFIG_PATH = "/etc/lifeboat/lifeboat.yaml"
SECRET_DIR = "/etc/lifeboat/secret"  # noqa: S105 - a mount point
LATE_ONCE = timedelta(hours=6)  # missed: once — a late start still allowed this long after its time
LATE_SKIP = timedelta(minutes=5)  # missed: skip — only a start delayed by the controller itself


def _labels(job: ScheduledJob | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": "lifeboat", "app.kubernetes.io/managed-by": "lifeboat-schedule-install"}
    if job is not None:
        labels["app.kubernetes.io/component"] = job.kind
    return labels


def _metadata(name: str, layout: Layout, job: ScheduledJob | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": _labels(job)}
    if layout.namespace:
        meta["namespace"] = layout.namespace
    return meta


def _schedule(job: ScheduledJob) -> str:
    timing = job.timing
    try:
        if timing.cron is not None:
            cron_fields(timing.cron)
            return " ".join(timing.cron.split())
        assert timing.every is not None
        return interval_as_cron(timing.every)
    except Untranslatable as exc:
        raise UsageError(
            f"job {job.name}: a Kubernetes CronJob cannot express {exc}",
            hint="give the job a cron expression in five numeric fields",
        ) from None


def _cron_job(name: str, job: ScheduledJob, layout: Layout) -> dict[str, Any]:
    timing = job.timing
    late = LATE_ONCE if timing.missed == "once" else LATE_SKIP
    container: dict[str, Any] = {
        "name": "lifeboat",
        "image": layout.image,
        "command": ["lifeboat"],
        "args": ["-c", CONFIG_PATH, *job.argv],
        "env": [
            {"name": "LIFEBOAT_PASSWORD_FILE", "value": f"{SECRET_DIR}/passphrase"},
            {"name": "LIFEBOAT_STATE_DIR", "value": "/var/lib/lifeboat"},
            *({"name": k, "value": v} for k, v in sorted(layout.extra_env.items())),
        ],
        "envFrom": [{"secretRef": {"name": ENV_SECRET, "optional": True}}],
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_PATH, "subPath": "lifeboat.yaml", "readOnly": True},
            {"name": "secret", "mountPath": SECRET_DIR, "readOnly": True},
            {"name": "state", "mountPath": "/var/lib/lifeboat"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": timing.retries,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "lifeboat", "operator": "In", "values": list(FINAL_EXIT_CODES)},
                }
            ]
        },
        "template": {
            "metadata": {"labels": _labels(job)},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container],
                "volumes": [
                    {"name": "config", "configMap": {"name": CONFIG_MAP}},
                    {"name": "secret", "secret": {"secretName": SECRET, "defaultMode": 0o400}},
                    {"name": "state", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                ],
            },
        },
    }
    if timing.timeout is not None:
        job_spec["activeDeadlineSeconds"] = int(timing.timeout.total_seconds())
    spec: dict[str, Any] = {"schedule": _schedule(job)}
    if timing.zone_name != "localtime":  # a zone without an IANA name: the controller's own
        spec["timeZone"] = timing.zone_name
    spec |= {
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": int(late.total_seconds()),
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": _labels(job)}, "spec": job_spec},
    }
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _metadata(name, layout, job), "spec": spec}


class _Dumper(yaml.SafeDumper):
    """Multi-line text (lifeboat.yaml in the ConfigMap) as a literal block, readable as a file."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def manifests(jobs: list[ScheduledJob], layout: Layout, config_text: str) -> dict[str, str]:
    """The manifests by file name: ``configmap.yaml``, ``secret.yaml``, ``cronjob-<job>.yaml``."""
    if not jobs:
        raise no_jobs("Kubernetes")
    if not layout.image:
        raise UsageError("Kubernetes manifests need the container image the jobs run", hint="pass {option:image}")
    namespace = f" --namespace {layout.namespace}" if layout.namespace else ""
    files = {
        "configmap.yaml": "# lifeboat.yaml, as the jobs read it. Keep secrets out of it: passphrases come from the\n"
        "# Secret below, storage credentials from the optional Secret 'lifeboat-env' (environment variables).\n"
        + _dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": _metadata(CONFIG_MAP, layout),
                "data": {"lifeboat.yaml": config_text},
            }
        ),
        "secret.yaml": "# The repository passphrase, mounted as a file. Its value is never written here: create or\n"
        "# update the Secret from the passphrase file, e.g.\n"
        f"#   kubectl create secret generic {SECRET}{namespace} --from-file=passphrase=/etc/lifeboat/passphrase \\\n"
        "#     --dry-run=client -o yaml | kubectl apply -f -\n"
        "# and storage credentials (optional) as environment variables:\n"
        f"#   kubectl create secret generic {ENV_SECRET}{namespace} --from-env-file=storage.env\n"
        + _dump({"apiVersion": "v1", "kind": "Secret", "metadata": _metadata(SECRET, layout), "type": "Opaque"}),
    }
    for name, job in unique_slugs(jobs, lower=True).items():
        if len(name) > 52:
            raise UsageError(
                f"job {job.name}: the CronJob name {name} is longer than the 52 characters Kubernetes allows",
                hint="give the source or repository a shorter name",
            )
        header = f"# lifeboat {job.name}: {job.timing.text} ({job.timing.zone_name})\n"
        if job.timing.jitter.total_seconds() >= 1:
            header += "# (its jitter is not applied: a CronJob starts at the scheduled minute)\n"
        files[f"cronjob-{name.removeprefix('lifeboat-')}.yaml"] = header + _dump(_cron_job(name, job, layout))
    return files


def one_stream(files: dict[str, str]) -> str:
    """The manifests as one YAML stream (``kubectl apply -f -``)."""
    return "---\n".join(text if text.endswith("\n") else text + "\n" for text in files.values())
