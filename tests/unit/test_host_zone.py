"""The host's time zone with its rules (not today's offset): TZ, /etc/localtime, /etc/timezone."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lifeboat.app.timezone import host_zone

ZONEINFO = Path("/usr/share/zoneinfo")


def test_tz_names_the_zone(tmp_path: Path) -> None:
    missing = tmp_path / "none"
    assert host_zone({"TZ": "Europe/Berlin"}, localtime=missing, timezone_file=missing) == ZoneInfo("Europe/Berlin")
    assert host_zone({"TZ": ":Asia/Tokyo"}, localtime=missing, timezone_file=missing) == ZoneInfo("Asia/Tokyo")


def test_localtime_link_names_the_zone_and_its_rules_apply(tmp_path: Path) -> None:
    link = tmp_path / "localtime"
    os.symlink(ZONEINFO / "America" / "New_York", link)
    zone = host_zone({}, localtime=link, timezone_file=tmp_path / "none")
    assert getattr(zone, "key", None) == "America/New_York"
    # the rules, not a fixed offset: summer and winter differ
    assert (
        datetime(2026, 7, 1, tzinfo=UTC).astimezone(zone).utcoffset()
        != datetime(2026, 1, 1, tzinfo=UTC).astimezone(zone).utcoffset()
    )


def test_a_copied_localtime_file_still_has_the_rules(tmp_path: Path) -> None:
    copied = tmp_path / "localtime"
    copied.write_bytes((ZONEINFO / "Europe" / "Berlin").read_bytes())
    zone = host_zone({"TZ": "Not/AZone"}, localtime=copied, timezone_file=tmp_path / "none")
    assert datetime(2026, 7, 1, 12, tzinfo=zone).utcoffset() != datetime(2026, 1, 1, 12, tzinfo=zone).utcoffset()
    assert datetime(2026, 7, 1, 12, tzinfo=zone).tzname() == "CEST"


def test_etc_timezone_then_utc(tmp_path: Path) -> None:
    named = tmp_path / "timezone"
    named.write_text("Australia/Sydney\n", encoding="utf-8")
    assert host_zone({}, localtime=tmp_path / "none", timezone_file=named) == ZoneInfo("Australia/Sydney")
    assert host_zone({}, localtime=tmp_path / "none", timezone_file=tmp_path / "none") == UTC
