"""The Grafana dashboard and the Prometheus alert rules in deploy/ name only metrics Lifeboat
exports: every PromQL expression (the dashboard's targets and template variable queries, the
rules' ``expr``) is read by a small tokenizer that skips strings, label matchers, ranges,
label lists (by, without, on, ignoring, group_left, group_right), functions and keywords;
every name left must be one the exporter produces from a full input (every optional part
present, the daemon's jobs too) — and a wrong name in a copied expression is caught."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.metrics_world import exported_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "lifeboat.json"
RULES = ROOT / "deploy" / "prometheus" / "lifeboat-rules.yml"
# Prometheus' own series a rule may use.
PROMETHEUS_OWN = {"up"}

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
      |(?P<number>\d[\w.]*)
      |(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<variable>\$\{[^}]*\}|\$\w+)
      |(?P<open>[({\[])|(?P<close>[)}\]])
      |(?P<other>\S)""",
    re.VERBOSE,
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values(metric, label)`` query) uses."""
    query = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr, re.S)
    if query:
        expr = query.group(1)
    elif re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", expr):
        return set()
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    found: set[str] = set()
    skip_until: list[str] = []  # the closing brackets of what is being skipped
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = next((t for t in tokens[i + 1 :]), (None, ""))
        if skip_until:
            if kind == "open":
                skip_until.append({"(": ")", "{": "}", "[": "]"}[text])
            elif kind == "close" and text == skip_until[-1]:
                skip_until.pop()
        elif kind == "open" and text in "{[":  # label matchers, ranges and subqueries
            skip_until.append("}" if text == "{" else "]")
        elif kind == "name":
            lowered = text.lower()
            if lowered in LABEL_LISTS and following[1] == "(":
                skip_until.append(")")
                i += 1  # the list's "(" is consumed here
            elif following[1] == "(" or lowered in AGGREGATIONS or lowered in KEYWORDS:
                pass  # a function, an aggregation or a keyword
            else:
                found.add(text)
        i += 1
    return found


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _rules() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return doc


def _panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) of every PromQL expression of the dashboard."""
    doc = _dashboard()
    found = [(f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in _panels(doc) for t in p.get("targets", [])]
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
            if variable.get("definition"):
                found.append((f"variable {variable['name']} definition", variable["definition"]))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    return [(f"rule {r['alert']}", r["expr"]) for g in _rules()["groups"] for r in g["rules"]]


def unknown_names(expr: str, exported: set[str]) -> set[str]:
    return metric_names(expr) - exported - PROMETHEUS_OWN


EXPORTED = exported_names()
EXPRESSIONS = dashboard_expressions() + rule_expressions()


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[w for w, _ in EXPRESSIONS])
def test_every_expression_names_exported_metrics(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    assert unknown_names(expr, EXPORTED) == set(), f"{where}: {expr!r}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("lifeboat_pg_up", {"lifeboat_pg_up"}),
        ('up{job="lifeboat_not_a_metric"} == 0', {"up"}),
        ("sum by (job_name) (increase(lifeboat_job_failures_total[1h]))", {"lifeboat_job_failures_total"}),
        ("sum(rate(a_total{x=~'b|c'}[$__rate_interval])) without (instance)", {"a_total"}),
        ("a > on(source, kind) group_left(rpo) b * 1e3 offset 5m", {"a", "b"}),
        ('time() - a{source=~"$source"} > 14 * 86400', {"a"}),
        ("absent(lifeboat_health_state)", {"lifeboat_health_state"}),
        ("max_over_time(a[1h:5m]) and bool b", {"a", "b"}),
        ("label_values(lifeboat_source_health_state, source)", {"lifeboat_source_health_state"}),
        ("label_values(source)", set()),
    ],
)
def test_the_tokenizer(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def _wrong(expressions: list[tuple[str, str]], right: str, wrong: str) -> str:
    """A real expression of ``expressions`` naming ``right``, with ``wrong`` in its place."""
    expr = next(e for _, e in expressions if right in metric_names(e))
    return re.sub(rf"\b{right}\b", wrong, expr, count=1)


@pytest.mark.parametrize(
    ("source", "right", "wrong"),
    [
        ("rules", "lifeboat_source_rpo_seconds", "lifeboat_source_rpo"),  # a unit forgotten
        ("rules", "lifeboat_pg_archiver_failed_total", "lifeboat_pg_archiver_failed"),  # a counter without _total
        ("rules", "lifeboat_last_drill_success", "lifeboat_drill_success"),
        ("dashboard", "lifeboat_backup_last_duration_seconds", "lifeboat_backup_duration_seconds"),
        ("dashboard", "lifeboat_repository_data_bytes", "lifeboat_repository_size_bytes"),  # the renamed metric
        ("dashboard", "lifeboat_source_health_state", "lifeboat_source_state"),  # the template variable too
    ],
)
def test_a_wrong_name_is_caught(source: str, right: str, wrong: str) -> None:
    expressions = rule_expressions() if source == "rules" else dashboard_expressions()
    copied = _wrong(expressions, right, wrong)
    assert unknown_names(copied, EXPORTED) == {wrong}, copied


def test_the_dashboard() -> None:
    doc = _dashboard()
    assert doc["schemaVersion"] >= 39 and doc["uid"] == "lifeboat" and doc["title"] == "Lifeboat"
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    source = variables["source"]
    assert source["query"]["query"] == "label_values(lifeboat_source_health_state, source)"
    assert source["multi"] and source["includeAll"]
    panels = [p for p in _panels(doc) if p["type"] != "row"]
    assert len(panels) >= 15
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and panel["description"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    every = " ".join(t["expr"] for p in panels for t in p["targets"])
    for wanted in (  # what the dashboard shows, as the issue lists it
        "lifeboat_source_health_state",
        "lifeboat_source_newest_restorable_timestamp_seconds",
        "lifeboat_source_rpo_seconds",
        "lifeboat_backup_last_duration_seconds",
        "lifeboat_backup_last_added_bytes",
        "lifeboat_backup_last_dedup_ratio",
        "lifeboat_backup_last_compression_ratio",
        "lifeboat_pg_archive_lag_seconds",
        "lifeboat_pg_archiver_failed_total",
        "lifeboat_source_oldest_restorable_timestamp_seconds",
        "lifeboat_last_drill_rto_seconds",
        "lifeboat_last_drill_rto_objective_seconds",
        "lifeboat_last_drill_achieved_rpo_seconds",
        "lifeboat_last_verify_success",
        "lifeboat_last_drill_success",
        "lifeboat_repository_data_bytes",
        "lifeboat_job_failures_total",
    ):
        assert wanted in every, wanted
    for panel in panels:
        for target in panel["targets"]:
            if "source" in target["expr"] and "lifeboat_job_" not in target["expr"]:
                assert 'source=~"$source"' in target["expr"], (panel["title"], target["expr"])


def test_the_rules() -> None:
    groups = _rules()["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert len(rules) == sum(len(g["rules"]) for g in groups)  # no name twice
    for wanted in (
        "LifeboatBackupTooOld",
        "LifeboatArchivingFailing",
        "LifeboatArchiveLagHigh",
        "LifeboatWalGap",
        "LifeboatDrillFailed",
        "LifeboatDrillOverRto",
        "LifeboatVerifyFailed",
        "LifeboatDown",
    ):
        assert wanted in rules, wanted
    for name, rule in rules.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        if "for" in rule:
            assert re.fullmatch(r"\d+[smhd]", rule["for"]), name
        per_source = any(
            n.startswith(("lifeboat_source_", "lifeboat_pg_", "lifeboat_last_")) for n in metric_names(rule["expr"])
        )
        if per_source:
            assert "$labels.source" in rule["annotations"]["summary"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
    assert "for" in rules["LifeboatBackupTooOld"] and "for" in rules["LifeboatArchivingFailing"]


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    """With Prometheus' own checker when the machine has it (Debian: the prometheus package)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt install prometheus); the rules' names and shape are checked above")
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
