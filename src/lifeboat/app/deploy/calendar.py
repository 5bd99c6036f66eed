"""Cron expressions as systemd calendar events and cron lines; intervals as time spans.

A cron expression's five fields (minute, hour, day of month, month, day of week; numbers,
``*``, ranges, steps, lists, month and day names, ``@daily`` and friends) are read into the
sets of values they name and written back in systemd's ``OnCalendar=`` syntax. Cron's one
rule systemd has not — day of month and day of week both restricted match when *either*
does — becomes two ``OnCalendar=`` lines. Anything else (``L``, ``W``, ``#``, ``?``) cannot
be translated: :class:`Untranslatable` says which part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from lifeboat.core.jobtiming import expand

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: n for n, name in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {name: n for n, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


class Untranslatable(ValueError):
    """A schedule the target cannot express; the message says what."""


@dataclass(frozen=True)
class CronFields:
    """The values each field names; ``*_restricted``: the field is not ``*`` (day of month and
    day of week both restricted match when either does — as croniter, which the daemon uses,
    reads ``*/2`` too)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool


def _value(token: str, names: dict[str, int], what: str) -> int:
    if token.isdigit():
        return int(token)
    found = names.get(token.lower())
    if found is None:
        raise Untranslatable(f"{token!r} in the {what} field")
    return found


def _field(text: str, low: int, high: int, what: str, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        spec, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit():
            raise Untranslatable(f"{part!r} in the {what} field")
        step = int(step_text) if slash else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            first, last = _value(a, names or {}, what), _value(b, names or {}, what)
        else:
            first = _value(spec, names or {}, what)
            last = high if slash else first
        if step < 1 or not low <= first <= last <= high:
            raise Untranslatable(f"{part!r} in the {what} field")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def cron_fields(expression: str) -> CronFields:
    """The sets of values a five-field cron expression (or an @-name) names."""
    fields = expand(expression).split()
    if len(fields) != 5:
        raise Untranslatable(f"{expression!r} is not a five-field cron expression")
    minute, hour, day, month, weekday = fields
    weekdays = _field(weekday, 0, 7, "day-of-week", _DAYS)
    return CronFields(
        minutes=_field(minute, 0, 59, "minute"),
        hours=_field(hour, 0, 23, "hour"),
        days=_field(day, 1, 31, "day-of-month"),
        months=_field(month, 1, 12, "month", _MONTHS),
        weekdays=frozenset(d % 7 for d in weekdays),
        days_restricted=day != "*",
        weekdays_restricted=weekday != "*",
    )


def _runs(values: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


def _systemd_field(values: frozenset[int], low: int, high: int) -> str:
    ordered = sorted(values)
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if ordered == list(range(ordered[0], high + 1, step)) and step > 1:
            return f"{ordered[0]:02d}/{step}"
    parts = []
    for a, b in _runs(ordered):
        if b - a >= 2:
            parts.append(f"{a:02d}..{b:02d}")
        else:
            parts.extend(f"{v:02d}" for v in range(a, b + 1))
    return ",".join(parts)


def _systemd_weekdays(days: frozenset[int]) -> str:
    ordered = sorted((d - 1) % 7 for d in days)  # Monday first, as systemd counts
    parts = []
    for a, b in _runs(ordered):
        first, last = _WEEKDAYS[(a + 1) % 7], _WEEKDAYS[(b + 1) % 7]
        if b - a >= 2:
            parts.append(f"{first}..{last}")
        else:
            parts.extend(_WEEKDAYS[(v + 1) % 7] for v in range(a, b + 1))
    return ",".join(parts)


def _event(fields: CronFields, days: frozenset[int], weekdays: frozenset[int], zone: str | None) -> str:
    date = f"*-{_systemd_field(fields.months, 1, 12)}-{_systemd_field(days, 1, 31)}"
    time = f"{_systemd_field(fields.hours, 0, 23)}:{_systemd_field(fields.minutes, 0, 59)}:00"
    text = f"{date} {time}"
    if len(weekdays) < 7:
        text = f"{_systemd_weekdays(weekdays)} {text}"
    return f"{text} {zone}" if zone else text


def on_calendar(expression: str, zone: str | None = None) -> list[str]:
    """The ``OnCalendar=`` values (one, or two for cron's either-day rule) that fire when
    ``expression`` does, in ``zone`` (an IANA name; None: the host's)."""
    fields = cron_fields(expression)
    every_day, every_weekday = frozenset(range(1, 32)), frozenset(range(7))
    if fields.days_restricted and fields.weekdays_restricted:
        return [
            _event(fields, fields.days, every_weekday, zone),
            _event(fields, every_day, fields.weekdays, zone),
        ]
    return [_event(fields, fields.days, fields.weekdays, zone)]


def time_span(value: timedelta) -> str:
    """A duration as systemd writes one: ``1d 6h``, ``30min``, ``90s`` → ``1min 30s``."""
    from lifeboat.core.units import duration_parts

    return " ".join(duration_parts(value)) or "0"


def interval_as_cron(every: timedelta) -> str:
    """An interval as a cron expression, where cron can say it: minutes dividing an hour,
    hours dividing a day, a day, a week. Cron counts from the clock, not from the last run."""
    seconds = int(every.total_seconds())
    if seconds != every.total_seconds() or seconds % 60:
        raise Untranslatable(f"an interval of {time_span(every)} (cron counts whole minutes)")
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    if minutes == 7 * 1440:
        return "0 0 * * 0"
    raise Untranslatable(
        f"an interval of {time_span(every)} (cron can repeat minutes dividing an hour, hours dividing a day, "
        "a day or a week)"
    )
