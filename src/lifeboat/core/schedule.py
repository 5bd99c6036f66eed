"""How far apart the runs of a cron schedule can be: what "overdue" means for a drill.

A drill scheduled ``0 3 * * *`` should have run within a day; health warns when the last
one is older than twice the longest wait between two scheduled runs. Only that wait is
needed, so this reads the standard five fields (minute, hour, day of month, month, day of
week: numbers, ``*``, ``a-b``, ``*/n``, ``a-b/n``, lists; ``@daily`` and friends) and answers
from the sets they name, without walking the calendar minute by minute. Day of month and day
of week restricted together match when either does (cron's rule). Anything else — names of
months or days, ``L``, ``W``, ``#`` — is not understood: the caller falls back to its default.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from lifeboat.core.jobtiming import expand

_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _field(text: str, low: int, high: int) -> tuple[set[int], bool]:
    """The values a field names, and whether it is unrestricted (``*``)."""
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r}")
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = int(spec)
            last = high if step_text else first
        if not (low <= first <= last <= high):
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return values, text == "*"


def longest_interval(expression: str) -> timedelta | None:
    """The longest time between two consecutive runs of ``expression`` (None: not understood)."""
    text = expand(expression)
    fields = text.split()
    if len(fields) != 5:
        return None
    try:
        parsed = [_field(f, low, high) for f, (low, high) in zip(fields, _FIELDS, strict=True)]
    except ValueError:
        return None
    (minutes, _), (hours, _), (days, any_day), (months, _), (weekdays, any_weekday) = parsed
    weekdays = {d % 7 for d in weekdays}  # 7 is Sunday too
    times = sorted(h * 60 + m for h in hours for m in minutes)  # minutes after midnight, every run day

    def runs_on(day: date) -> bool:
        if day.month not in months:
            return False
        by_date, by_weekday = day.day in days, (day.isoweekday() % 7) in weekdays
        if any_day or any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    start = date(2024, 1, 1)  # four years cover leap days and every weekday of every date
    run_days = [n for n in range(4 * 366 + 7) if runs_on(start + timedelta(days=n))]
    if not run_days or not times:
        return None
    within = max((b - a for a, b in pairwise(times)), default=0)
    across = max(((b - a) * 1440 - (times[-1] - times[0]) for a, b in pairwise(run_days)), default=0)
    longest = max(within, across)
    return timedelta(minutes=longest) if longest > 0 else None


__all__ = ["longest_interval"]
