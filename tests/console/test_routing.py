"""Call-center routing: opening hours in Vietnam time, holidays, overflow to Hanoi."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from bot import routing
from bot.routing import CentersError, centers_from_dict, is_open, parse_hours, route
from bot.settings import PROJECT_ROOT

VN = timezone(timedelta(hours=7))


def vn(hour: int, minute: int = 0, day: date = date(2026, 3, 10)) -> datetime:  # a Tuesday, no holiday
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VN)


@pytest.fixture(scope="module")
def centers() -> routing.Centers:
    return routing.load_centers(PROJECT_ROOT / "content" / "centers.yml")


def test_the_repository_file_has_the_three_centers(centers):
    assert set(centers.centers) == {"hanoi", "danang", "angiang"} and centers.fallback == "hanoi"
    assert centers["danang"].hours[1] == ((7 * 60, 19 * 60),)
    assert centers["angiang"].hours[6] == ((7 * 60, 21 * 60),)
    assert centers["hanoi"].hours[0] == ((0, 24 * 60),)
    assert date(2026, 9, 2) in centers["danang"].holidays


@pytest.mark.parametrize("region, when, expected", [
    ("danang", vn(20), "hanoi"),        # Da Nang closes at 19:00
    ("danang", vn(18, 59), "danang"),
    ("danang", vn(19), "hanoi"),
    ("danang", vn(7), "danang"),
    ("danang", vn(6, 59), "hanoi"),
    ("angiang", vn(20, 30), "angiang"),  # An Giang until 21:00
    ("angiang", vn(21), "hanoi"),
    ("hanoi", vn(3), "hanoi"),           # Hanoi 24 h
    (None, vn(10), "hanoi"),             # region unknown
    ("saigon", vn(10), "hanoi"),         # not a center
])
def test_route_by_region_and_hours(centers, region, when, expected):
    assert route(region, when, centers) == expected


def test_times_are_vietnam_time_whatever_the_input_zone(centers):
    utc_13 = datetime(2026, 3, 10, 13, 0, tzinfo=timezone.utc)  # 20:00 in Vietnam
    assert route("danang", utc_13, centers) == "hanoi"
    assert route("danang", utc_13.replace(tzinfo=None), centers) == "hanoi"  # naive = UTC
    utc_03 = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)  # 10:00 in Vietnam
    assert route("danang", utc_03, centers) == "danang"


def test_public_holidays_close_the_regional_centers(centers):
    national_day = date(2026, 9, 2)
    assert route("danang", vn(10, day=national_day), centers) == "hanoi"
    assert route("angiang", vn(10, day=national_day), centers) == "hanoi"
    assert is_open(centers["hanoi"], vn(10, day=national_day))


def test_configurable_hours_per_weekday_and_holidays():
    config = centers_from_dict({
        "fallback": "hq",
        "public_holidays": ["2026-05-01"],
        "centers": {
            "hq": {"hours": "24h", "on_holidays": "usual"},
            "south": {"hours": {"default": "08:00-12:00, 13:00-17:00", "sat": "08:00-11:00", "sun": "closed"},
                      "on_holidays": "09:00-10:00", "closed_dates": ["2026-05-05"]},
        },
    })
    monday, saturday, sunday = date(2026, 5, 4), date(2026, 5, 9), date(2026, 5, 10)
    assert route("south", vn(9, day=monday), config) == "south"
    assert route("south", vn(12, 30, day=monday), config) == "hq"   # lunch break
    assert route("south", vn(10, 30, day=saturday), config) == "south"
    assert route("south", vn(11, 30, day=saturday), config) == "hq"
    assert route("south", vn(10, day=sunday), config) == "hq"
    assert route("south", vn(9, 30, day=date(2026, 5, 1)), config) == "south"  # holiday hours
    assert route("south", vn(11, day=date(2026, 5, 1)), config) == "hq"
    assert route("south", vn(9, 30, day=date(2026, 5, 5)), config) == "south"  # own closed date: holiday hours
    status = {s["key"]: s for s in routing.status(config, vn(12, 30, day=monday))}
    assert status["south"]["open"] is False and status["south"]["hours_today"] == "08:00-12:00, 13:00-17:00"


@pytest.mark.parametrize("bad", [
    {"fallback": "x", "centers": {"a": {"hours": "24h"}}},
    {"fallback": "a", "centers": {"a": {"hours": "19:00-07:00"}}},
    {"fallback": "a", "centers": {"a": {"hours": "7am to 7pm"}}},
    {"fallback": "a", "centers": {"a": {"hours": "07:00-25:00"}}},
    {"fallback": "a", "centers": {"a": {"hours": {"someday": "24h"}}}},
    {"fallback": "a", "centers": {"a": {}}},
    {"fallback": "a", "public_holidays": ["30/04/2026"], "centers": {"a": {"hours": "24h"}}},
    {"centers": {}},
])
def test_bad_configuration_is_refused(bad):
    with pytest.raises(CentersError):
        centers_from_dict(bad)


def test_parse_hours():
    assert parse_hours("00:00-24:00") == ((0, 1440),)
    assert parse_hours("closed") == ()
    assert parse_hours("13:00-17:00, 07:30-11:30") == ((450, 690), (780, 1020))


def test_a_broken_file_falls_back_to_the_built_in_hours(tmp_path):
    (tmp_path / "centers.yml").write_text("fallback: nowhere\ncenters: {a: {hours: 24h}}\n", encoding="utf-8")
    assert routing.centers_for(tmp_path) is routing.DEFAULT
    assert routing.centers_for(tmp_path / "missing") is routing.DEFAULT
    assert route("danang", vn(20), routing.DEFAULT) == "hanoi"
    assert route("danang", vn(10), routing.DEFAULT) == "danang"
