"""Which call center handles a conversation: opening hours, public holidays and overflow.

The hotline's call centers (content/centers.yml): Hanoi 24 hours, Da Nang 7:00–19:00, An Giang
7:00–21:00, Vietnam time (UTC+7, no daylight saving). A conversation goes to the center of the
person's region while that center is open and overflows to the fallback center (Hanoi) otherwise.

Everything here is pure except `load_centers` / `centers_for`, which read the YAML file (cached by
modification time, read at call time, never at import).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import yaml

logger = logging.getLogger(__name__)
VIETNAM = timezone(timedelta(hours=7), "ICT")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60

Interval = tuple[int, int]  # minutes since local midnight: [open, close)


class CentersError(ValueError):
    """centers.yml does not say what this module needs."""


@dataclass(frozen=True)
class Center:
    key: str
    name: str
    # weekday (0 = Monday) -> opening intervals; an empty tuple is closed all day
    hours: Mapping[int, tuple[Interval, ...]]
    holidays: frozenset[date] = frozenset()
    # opening intervals on a holiday; None = the ordinary hours of that weekday
    holiday_hours: tuple[Interval, ...] | None = ()

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.holidays and self.holiday_hours is not None:
            return self.holiday_hours
        return self.hours.get(day.weekday(), ())


@dataclass(frozen=True)
class Centers:
    centers: Mapping[str, Center]
    fallback: str
    public_holidays: frozenset[date] = field(default_factory=frozenset)

    def __getitem__(self, key: str) -> Center:
        return self.centers[key]

    def __contains__(self, key: object) -> bool:
        return key in self.centers


def local(now: datetime) -> datetime:
    """The moment in Vietnam time; a naive datetime is taken as UTC."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(VIETNAM)


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= DAY_MINUTES or not 0 <= int(minutes or 0) < 60:
        raise CentersError(f"not a time of day: {text!r}")
    return value


def parse_hours(text: Any) -> tuple[Interval, ...]:
    """'07:00-19:00', '00:00-24:00', '07:00-11:30, 13:00-17:00', 'closed' or '24h'."""
    if text is None:
        return ()
    spec = str(text).strip().lower()
    if spec in ("closed", "", "none"):
        return ()
    if spec in ("24h", "24/7", "always"):
        return ((0, DAY_MINUTES),)
    intervals = []
    for part in spec.split(","):
        start, sep, end = part.partition("-")
        if not sep:
            raise CentersError(f"opening hours must look like 07:00-19:00, not {part.strip()!r}")
        a, b = _minutes(start), _minutes(end)
        if a >= b:
            raise CentersError(f"opening hours end before they start: {part.strip()!r}")
        intervals.append((a, b))
    return tuple(sorted(intervals))


def _weekly(spec: Any) -> dict[int, tuple[Interval, ...]]:
    """One spec for every day, or a mapping of mon..sun (and 'default') to specs."""
    if not isinstance(spec, Mapping):
        every = parse_hours(spec)
        return {day: every for day in range(7)}
    default = parse_hours(spec["default"]) if "default" in spec else ()
    week = {day: default for day in range(7)}
    for name, value in spec.items():
        if name == "default":
            continue
        if str(name).lower()[:3] not in WEEKDAYS:
            raise CentersError(f"unknown weekday {name!r}; use mon..sun or default")
        week[WEEKDAYS.index(str(name).lower()[:3])] = parse_hours(value)
    return week


def _dates(values: Any, where: str) -> frozenset[date]:
    out = set()
    for value in values or ():
        if isinstance(value, Mapping):  # {date: 2026-01-01, name: ...}
            value = value.get("date")
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError as exc:
                raise CentersError(f"{where}: not a date (YYYY-MM-DD): {value!r}") from exc
        if not isinstance(value, date):
            raise CentersError(f"{where}: not a date (YYYY-MM-DD): {value!r}")
        out.add(value)
    return frozenset(out)


def centers_from_dict(data: Mapping[str, Any]) -> Centers:
    """Build the configuration from centers.yml's content (pure)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("centers"), Mapping) or not data["centers"]:
        raise CentersError("centers.yml needs a `centers:` mapping")
    public = _dates(data.get("public_holidays"), "public_holidays")
    centers: dict[str, Center] = {}
    for key, spec in data["centers"].items():
        if not isinstance(spec, Mapping) or "hours" not in spec:
            raise CentersError(f"center {key!r} needs `hours`")
        on_holidays = spec.get("on_holidays", "closed")
        holiday_hours = None if str(on_holidays).strip().lower() in ("usual", "open", "same") else parse_hours(on_holidays)
        centers[str(key)] = Center(key=str(key), name=str(spec.get("name") or key), hours=_weekly(spec["hours"]),
                                   holidays=public | _dates(spec.get("closed_dates"), f"{key}.closed_dates"),
                                   holiday_hours=holiday_hours)
    fallback = str(data.get("fallback") or "")
    if fallback not in centers:
        raise CentersError(f"`fallback` must name one of the centers ({', '.join(centers)}), not {fallback!r}")
    return Centers(centers=centers, fallback=fallback, public_holidays=public)


DEFAULT = centers_from_dict({
    "fallback": "hanoi",
    "centers": {
        "hanoi": {"name": "Hà Nội", "hours": "00:00-24:00", "on_holidays": "usual"},
        "danang": {"name": "Đà Nẵng", "hours": "07:00-19:00", "on_holidays": "closed"},
        "angiang": {"name": "An Giang", "hours": "07:00-21:00", "on_holidays": "closed"},
    },
})


def is_open(center: Center, now: datetime) -> bool:
    """Is the center taking chats at this moment (Vietnam time, holidays included)?"""
    t = local(now)
    minute = t.hour * 60 + t.minute
    return any(a <= minute < b for a, b in center.intervals_on(t.date()))


def route(region_center: str | None, now: datetime, centers: Centers = DEFAULT) -> str:
    """The center of the person's region when it is open; otherwise the fallback (Hanoi, 24 h)."""
    if region_center in centers and is_open(centers[region_center], now):  # type: ignore[index]
        return region_center  # type: ignore[return-value]
    return centers.fallback


def _fmt(interval: Interval) -> str:
    a, b = interval
    return f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"


def status(centers: Centers, now: datetime) -> list[dict[str, Any]]:
    """Each center, open or not now, and today's hours (for the console)."""
    today = local(now).date()
    return [{"key": c.key, "name": c.name, "open": is_open(c, now), "holiday": today in c.holidays,
             "hours_today": ", ".join(_fmt(i) for i in c.intervals_on(today)) or "closed"}
            for c in centers.centers.values()]


def load_centers(path: Path) -> Centers:
    with path.open(encoding="utf-8") as f:
        return centers_from_dict(yaml.safe_load(f) or {})


_cache: dict[Path, tuple[float, Centers]] = {}


def centers_for(content_dir: Path) -> Centers:
    """content/centers.yml, re-read when it changes; the built-in defaults when it is missing or
    broken (logged), so a bad edit never stops routing."""
    path = Path(content_dir) / "centers.yml"
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return DEFAULT
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        centers = load_centers(path)
    except (OSError, yaml.YAMLError, CentersError) as exc:
        logger.error("%s is unusable (%s); using the built-in opening hours", path, exc)
        centers = DEFAULT
    _cache[path] = (mtime, centers)
    return centers
