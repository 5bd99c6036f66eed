"""Showing a restore plan (``restore … --plan``): a readable block, or its JSON document;
the command then exits 0 when the plan is feasible, else with its first refusal's code."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeboat.app.cli.framework import Exit
from lifeboat.core.units import format_bytes, format_duration
from lifeboat.errors import cli_flag, spell_options

if TYPE_CHECKING:
    from lifeboat.app.cli.context import CliContext
    from lifeboat.sources.plan import RestorePlan


def render_plan(plan: RestorePlan) -> list[str]:
    """The plan as text lines, options spelled as flags."""
    lines = [
        f"restore plan: {plan.kind} snapshot {plan.snapshot[:8]} ({plan.snapshot_time}) into {plan.destination}",
        *(f"  {line}" for line in plan.lines),
        "  writes:",
    ]
    for write in plan.writes:
        files = f", {write.files} file{'' if write.files == 1 else 's'}" if write.files else ""
        state = f" [{write.state}]" if write.state else ""
        peak = f" (at most {format_bytes(write.space)} at once)" if write.on_disk and write.space < write.bytes else ""
        lines.append(f"    {write.what}: {write.where}{state}: {format_bytes(write.bytes)}{files}{peak}")
    lines.append(f"  bytes to write: {format_bytes(plan.bytes)} ({plan.bytes} bytes)")
    for space in plan.space:
        verdict = "fits" if space.fits else "DOES NOT FIT"
        lines.append(
            f"  free space at {space.path}: {format_bytes(space.free)}, needed {format_bytes(space.needed)}: {verdict}"
        )
    estimate = plan.estimate
    if estimate.seconds is None:
        lines.append(f"  estimated time: {estimate.basis}")
    else:
        lines.append(f"  estimated time: {format_duration(estimate.seconds)} (from {estimate.basis})")
    lines += [f"  checked: {check}" for check in plan.checks]
    lines += [f"  not checked: {what}" for what in plan.unchecked]
    lines += [f"  warning: {spell_options(warning, cli_flag)}" for warning in plan.warnings]
    for refusal in plan.refusals:
        message, _hint = refusal.spelled(cli_flag)
        lines.append(f"  refused: {message}")
    lines.append(
        "feasible: nothing was written"
        if plan.feasible
        else "not feasible: the restore would stop (nothing was written)"
    )
    return lines


def show_plan(state: CliContext, plan: RestorePlan) -> None:
    """Print ``plan`` and end the command: exit 0 when feasible, else report the first
    refusal (the restore's own error) and exit with its code."""
    out = state.output
    if state.json:
        out.emit_json(plan.to_json(cli_flag))
    else:
        for line in render_plan(plan):
            out.line(line)
    if plan.refusals:
        first = plan.refusals[0]
        out.error(first)
        raise Exit(int(first.exit_code))
    raise Exit(0)
