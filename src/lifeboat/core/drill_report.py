"""``drill report``: the drill history as text, JSON, Markdown or one self-contained HTML page.

Pure: given the drill results (newest first), each renderer returns a string. The HTML page
carries its style inline and draws each source's RTO trend as an inline SVG, so it is one file
that opens anywhere — mailed, attached to an audit, read on a phone — with no external asset.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from lifeboat.core.drill import PASSED, DrillResult, seconds_text

FORMATS = ("text", "json", "markdown", "html")


def render(results: Sequence[DrillResult], fmt: str, *, now: datetime | None = None) -> str:
    """The history in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps({"drills": [r.to_json() for r in results]}, indent=2) + "\n"
    if fmt == "markdown":
        return markdown(results)
    if fmt == "html":
        return page(results, now=now)
    return text(results)


def _rows(results: Sequence[DrillResult]) -> list[list[str]]:
    return [
        [
            r.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            r.source,
            r.kind,
            r.status,
            _maybe(r.rto),
            _maybe(r.rto_objective),
            _maybe(r.achieved_rpo),
            _maybe(r.rpo_objective),
            r.snapshot[:8],
            "; ".join(r.reasons),
        ]
        for r in results
    ]


HEADERS = ["when (UTC)", "source", "kind", "status", "RTO", "RTO objective", "achieved RPO", "RPO objective",
           "snapshot", "reasons"]  # fmt: skip


def _maybe(seconds: float | None) -> str:
    return "-" if seconds is None else seconds_text(seconds)


def _phases(result: DrillResult) -> str:
    return ", ".join(f"{p.name} {seconds_text(p.seconds)}" for p in result.phases)


def text(results: Sequence[DrillResult]) -> str:
    """A table, then the newest drill of each source phase by phase."""
    if not results:
        return "no drills recorded\n"
    rows = _rows(results)
    widths = [max(len(c) for c in col) for col in zip(HEADERS, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip()]
    lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    for result in newest_per_source(results):
        lines.append(f"{result.source}: {result.status}, phases: {_phases(result) or 'none'}")
        for query in result.queries:
            lines.append(f"  query {query.name}: {query.value} {'ok' if query.ok else 'FAILED: ' + query.problem}")
    return "\n".join(lines) + "\n"


def markdown(results: Sequence[DrillResult]) -> str:
    out = ["# Restore drills", ""]
    if not results:
        return "\n".join([*out, "No drills recorded.", ""])
    out.append("| " + " | ".join(HEADERS) + " |")
    out.append("|" + "---|" * len(HEADERS))
    for row in _rows(results):
        out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    out.append("")
    for result in newest_per_source(results):
        out.append(f"## {_md_cell(result.source)}: {result.status}")
        out.append("")
        out.append(f"- target: {_md_cell(result.target)}, snapshot `{result.snapshot[:8]}`")
        out.append(f"- phases: {_phases(result) or 'none'}")
        for query in result.queries:
            verdict = "ok" if query.ok else f"**failed**: {_md_cell(query.problem)}"
            out.append(f"- query `{_md_cell(query.name)}`: {_md_cell(str(query.value))} — {verdict}")
        out.append("")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def newest_per_source(results: Sequence[DrillResult]) -> list[DrillResult]:
    seen: dict[str, DrillResult] = {}
    for result in sorted(results, key=lambda r: r.started, reverse=True):
        seen.setdefault(result.source, result)
    return sorted(seen.values(), key=lambda r: r.source)


# --- HTML ----------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1b1f24}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.35rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
.scroll{overflow-x:auto}
.passed{color:#1a7f37;font-weight:600}.failed{color:#cf222e;font-weight:600}.missed{color:#9a6700;font-weight:600}
svg{max-width:100%;height:auto;background:#f6f8fa;border-radius:6px}
.note{color:#57606a;font-size:.85rem}
"""


def page(results: Sequence[DrillResult], *, now: datetime | None = None) -> str:
    """One self-contained HTML page: per source the newest result, the RTO trend, the history."""
    now = now or datetime.now(UTC)
    e = html.escape
    body = [f"<h1>Restore drills</h1><p class='note'>generated {e(now.astimezone(UTC).isoformat())}</p>"]
    if not results:
        body.append("<p>No drills recorded.</p>")
    for newest in newest_per_source(results):
        history = sorted((r for r in results if r.source == newest.source), key=lambda r: r.started)
        body.append(f"<section><h2>{e(newest.source)} <small>({e(newest.kind)})</small></h2>")
        body.append(
            f"<p>Newest: <span class='{e(newest.status)}'>{e(newest.status)}</span>, "
            f"RTO {e(_maybe(newest.rto))} (objective {e(_maybe(newest.rto_objective))}), "
            f"achieved RPO {e(_maybe(newest.achieved_rpo))} (objective {e(_maybe(newest.rpo_objective))})</p>"
        )
        if newest.reasons:
            body.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in newest.reasons) + "</ul>")
        body.append(trend_svg(history, objective=newest.rto_objective))
        rows = "".join(
            "<tr>"
            + f"<td>{e(r.started.astimezone(UTC).strftime('%Y-%m-%d %H:%M'))}</td>"
            + f"<td class='{e(r.status)}'>{e(r.status)}</td>"
            + f"<td>{e(_maybe(r.rto))}</td><td>{e(_maybe(r.achieved_rpo))}</td>"
            + f"<td>{e(_phases(r))}</td><td>{e('; '.join(r.reasons))}</td></tr>"
            for r in reversed(history)
        )
        body.append(
            "<div class='scroll'><table><tr><th>when (UTC)</th><th>status</th><th>RTO</th><th>achieved RPO</th>"
            f"<th>phases</th><th>reasons</th></tr>{rows}</table></div></section>"
        )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Lifeboat restore drills</title><style>{STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def trend_svg(history: Sequence[DrillResult], *, objective: float | None, width: int = 600, height: int = 160) -> str:
    """The RTO of each drill (oldest left) as a line with dots (red: not passed), and the
    objective as a dashed line. Drills that never served have no RTO and no dot."""
    points = [(i, r.rto, r.status) for i, r in enumerate(history) if r.rto is not None]
    values = [seconds for _, seconds, _ in points if seconds is not None]
    pad = 28
    top = max([*values, objective or 0.0, 1e-9]) * 1.15
    count = max(len(history) - 1, 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / count if len(history) > 1 else 0.5)

    def y(seconds: float) -> float:
        return height - pad - (height - 2 * pad) * (seconds / top)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='RTO trend'><title>RTO trend</title>",
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' stroke='#8c959f'/>",
        f"<text x='4' y='{pad - 10}' font-size='11' fill='#57606a'>RTO (max {html.escape(seconds_text(top))})</text>",
    ]
    if objective is not None:
        parts.append(
            f"<line x1='{pad}' y1='{y(objective):.1f}' x2='{width - pad}' y2='{y(objective):.1f}' "
            "stroke='#cf222e' stroke-dasharray='6 4'/>"
            f"<text x='{width - pad}' y='{y(objective) - 4:.1f}' font-size='11' text-anchor='end' "
            f"fill='#cf222e'>objective {html.escape(seconds_text(objective))}</text>"
        )
    if len(points) > 1:
        line = " ".join(f"{x(i):.1f},{y(s):.1f}" for i, s, _ in points if s is not None)
        parts.append(f"<polyline fill='none' stroke='#0969da' stroke-width='2' points='{line}'/>")
    for i, rto, status in points:
        seconds = rto or 0.0
        color = "#1a7f37" if status == PASSED else "#cf222e"
        parts.append(
            f"<circle cx='{x(i):.1f}' cy='{y(seconds):.1f}' r='4' fill='{color}'>"
            f"<title>{html.escape(seconds_text(seconds))} ({html.escape(status)})</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


__all__ = ["FORMATS", "markdown", "newest_per_source", "page", "render", "text", "trend_svg"]
