"""Offline location resolution (bot/geo.py): the province table, the places, resolve() and the
place names found in free text."""
from __future__ import annotations

import json
import math
import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import geo
from bot.text import fold

# Since 1 July 2025 (Resolution 202/2025/QH15): new unit -> the pre-2025 provinces it took in.
MERGES = {
    "Hà Nội": {"Hà Nội"}, "Huế": {"Thừa Thiên Huế"}, "Lai Châu": {"Lai Châu"}, "Điện Biên": {"Điện Biên"},
    "Sơn La": {"Sơn La"}, "Lạng Sơn": {"Lạng Sơn"}, "Quảng Ninh": {"Quảng Ninh"}, "Thanh Hóa": {"Thanh Hóa"},
    "Nghệ An": {"Nghệ An"}, "Hà Tĩnh": {"Hà Tĩnh"}, "Cao Bằng": {"Cao Bằng"},
    "Tuyên Quang": {"Tuyên Quang", "Hà Giang"}, "Lào Cai": {"Lào Cai", "Yên Bái"},
    "Thái Nguyên": {"Thái Nguyên", "Bắc Kạn"}, "Phú Thọ": {"Phú Thọ", "Vĩnh Phúc", "Hòa Bình"},
    "Bắc Ninh": {"Bắc Ninh", "Bắc Giang"}, "Hưng Yên": {"Hưng Yên", "Thái Bình"},
    "Hải Phòng": {"Hải Phòng", "Hải Dương"}, "Ninh Bình": {"Ninh Bình", "Hà Nam", "Nam Định"},
    "Quảng Trị": {"Quảng Trị", "Quảng Bình"}, "Đà Nẵng": {"Đà Nẵng", "Quảng Nam"},
    "Quảng Ngãi": {"Quảng Ngãi", "Kon Tum"}, "Gia Lai": {"Gia Lai", "Bình Định"},
    "Khánh Hòa": {"Khánh Hòa", "Ninh Thuận"}, "Lâm Đồng": {"Lâm Đồng", "Đắk Nông", "Bình Thuận"},
    "Đắk Lắk": {"Đắk Lắk", "Phú Yên"}, "TP. Hồ Chí Minh": {"TP. Hồ Chí Minh", "Bình Dương", "Bà Rịa – Vũng Tàu"},
    "Đồng Nai": {"Đồng Nai", "Bình Phước"}, "Tây Ninh": {"Tây Ninh", "Long An"},
    "Cần Thơ": {"Cần Thơ", "Sóc Trăng", "Hậu Giang"}, "Vĩnh Long": {"Vĩnh Long", "Bến Tre", "Trà Vinh"},
    "Đồng Tháp": {"Đồng Tháp", "Tiền Giang"}, "Cà Mau": {"Cà Mau", "Bạc Liêu"}, "An Giang": {"An Giang", "Kiên Giang"},
}
BORDERING = {
    "CN": {"Lai Châu", "Điện Biên", "Lào Cai", "Hà Giang", "Cao Bằng", "Lạng Sơn", "Quảng Ninh"},
    "LA": {"Điện Biên", "Sơn La", "Thanh Hóa", "Nghệ An", "Hà Tĩnh", "Quảng Bình", "Quảng Trị", "Thừa Thiên Huế",
           "Quảng Nam", "Kon Tum"},
    "KH": {"Kon Tum", "Gia Lai", "Đắk Lắk", "Đắk Nông", "Bình Phước", "Tây Ninh", "Long An", "Đồng Tháp",
           "An Giang", "Kiên Giang"},
}
ISLANDS = {"Cô Tô", "Cát Bà", "Bạch Long Vĩ", "Cồn Cỏ", "Hoàng Sa", "Lý Sơn", "Trường Sa", "Phú Quý", "Côn Đảo",
           "Thổ Chu", "Phú Quốc", "An Thới", "Gành Dầu", "Bãi Thơm", "Vân Đồn", "Dung Quất"}


def by_name(name: str) -> geo.Place:
    return next(p for p in geo.places() if p.name == name)


# ------------------------------------------------------------------------------ the province table

def test_every_old_province_maps_to_one_of_the_34_new_units() -> None:
    rows = geo.provinces()
    assert len(rows) == 63
    assert len({p.old_name for p in rows}) == 63
    assert set(geo.new_units()) == set(MERGES) and len(geo.new_units()) == 34
    assert {p.old_name: p.new_unit for p in rows} == {old: new for new, olds in MERGES.items() for old in olds}


def test_each_new_unit_lies_in_one_region_and_the_regions_route_to_the_right_center() -> None:
    regions: dict[str, set[str]] = {}
    for p in geo.provinces():
        regions.setdefault(p.new_unit, set()).add(p.region)
    assert all(len(r) == 1 for r in regions.values()), regions
    region = {unit: r.pop() for unit, r in regions.items()}
    assert sum(r == "north" for r in region.values()) == 15
    assert region["Thanh Hóa"] == region["Khánh Hòa"] == region["Lâm Đồng"] == region["Gia Lai"] == "central"
    assert region["Ninh Bình"] == region["Phú Thọ"] == "north"
    assert region["Đồng Nai"] == region["An Giang"] == region["TP. Hồ Chí Minh"] == "south"
    assert {p.new_unit_kind for p in geo.provinces() if p.new_unit in
            ("Hà Nội", "Huế", "Hải Phòng", "Đà Nẵng", "TP. Hồ Chí Minh", "Cần Thơ")} == {"city"}


def test_land_borders_of_the_old_provinces() -> None:
    for country, expected in BORDERING.items():
        assert {p.old_name for p in geo.provinces() if country in p.border_countries} == expected


@pytest.mark.parametrize(("region", "center"), [
    ("north", "hanoi"), ("central", "danang"), ("south", "angiang"), ("abroad", "hanoi"), (None, "hanoi"),
])
def test_center_for_region(region: str | None, center: str) -> None:
    assert geo.center_for_region(region) == center


def test_an_unknown_region_is_an_error() -> None:
    with pytest.raises(ValueError):
        geo.center_for_region("east")


# ------------------------------------------------------------------------------ the places

def test_places_cover_the_country_and_the_places_that_matter_abroad() -> None:
    rows = geo.places()
    vietnamese = [p for p in rows if p.country == "VN"]
    assert len(rows) >= 250 and len(vietnamese) >= 120
    assert len({p.name for p in rows}) == len(rows)
    assert {p.old_province for p in vietnamese} == {p.old_name for p in geo.provinces()}
    for text in ("Móng Cái", "Hữu Nghị", "Tân Thanh", "Lào Cai", "Thanh Thủy", "Trà Lĩnh", "Tà Lùng", "Ma Lù Thàng",
                 "Tây Trang", "Na Mèo", "Cầu Treo", "Lao Bảo", "Bờ Y", "Lệ Thanh", "Mộc Bài", "Xa Mát", "Hoa Lư",
                 "Tịnh Biên", "Vĩnh Xương", "Xà Xía"):
        found = geo.find_place_in_text(f"cửa khẩu {text}")
        assert found is not None and found.kind == "border_gate", text
    for text, country in [
        ("Dongxing", "CN"), ("Pingxiang", "CN"), ("Hekou", "CN"), ("Mengzi", "CN"), ("Kunming", "CN"),
        ("Nanning", "CN"), ("Guangzhou", "CN"), ("Shenzhen", "CN"), ("Fangchenggang", "CN"), ("Baise", "CN"),
        ("Wenshan", "CN"), ("Henan", "CN"), ("Shandong", "CN"), ("Linyi", "CN"), ("Zhengzhou", "CN"),
        ("Vientiane", "LA"), ("Luang Prabang", "LA"), ("Savannakhet", "LA"), ("Pakse", "LA"), ("Boten", "LA"),
        ("Golden Triangle", "LA"), ("Tonpheung", "LA"), ("Phnom Penh", "KH"), ("Sihanoukville", "KH"),
        ("Bavet", "KH"), ("Poipet", "KH"), ("Kampot", "KH"), ("Siem Reap", "KH"), ("Koh Kong", "KH"),
        ("Svay Rieng", "KH"), ("Myawaddy", "MM"), ("Tachileik", "MM"), ("Bangkok", "TH"), ("Mae Sot", "TH"),
        ("Kuala Lumpur", "MY"), ("Taipei", "TW"), ("Seoul", "KR"), ("Tokyo", "JP"), ("Osaka", "JP"),
    ]:
        found = geo.find_place_in_text(text)
        assert found is not None and found.country == country and found.lat is not None, text


def test_border_gates_sit_on_the_border_of_their_province() -> None:
    gates = [p for p in geo.places() if p.kind == "border_gate"]
    assert len(gates) >= 25
    provinces = {p.old_name: p for p in geo.provinces()}
    for gate in gates:
        assert gate.border_with in provinces[gate.old_province].border_countries, gate.name
        resolved = geo.resolve(gate.lat, gate.lon)
        assert resolved.border is not None and resolved.border.country == gate.border_with, gate.name
        assert resolved.border.distance_km <= 6, gate.name


def test_every_place_resolves_to_itself() -> None:
    """The outline and the places were written separately; they must agree."""
    for p in geo.places():
        if p.kind in ("foreign_region", "border_gate"):  # regions are not points; gates sit on the line
            continue
        r = geo.resolve(p.lat, p.lon)
        assert (r.country, r.place, r.old_province) == (p.country, p.name, p.old_province), p.name
        if p.country == "VN":
            assert r.province == next(q.new_unit for q in geo.provinces() if q.old_name == p.old_province)
            assert r.offshore is False, p.name


def test_the_outline_agrees_with_the_places() -> None:
    g = geo._geo()
    for p in geo.places():
        if p.kind in ("foreign_region", "border_gate") or p.name in ISLANDS:
            continue
        inside = geo._inside(g, p.lat, p.lon)
        land_km = geo._edge_distances(g, p.lat, p.lon)[0]
        # Across the land border only the twin towns may lie on the wrong side, and only just.
        assert inside == (p.country == "VN") or land_km < 2, p.name


# ------------------------------------------------------------------------------ resolve()

@pytest.mark.parametrize(("lat", "lon", "province", "old", "place", "region", "center"), [
    (21.0287, 105.8524, "Hà Nội", "Hà Nội", "Hà Nội", "north", "hanoi"),            # Hoàn Kiếm lake
    (10.7725, 106.6980, "TP. Hồ Chí Minh", "TP. Hồ Chí Minh", "TP. Hồ Chí Minh", "south", "angiang"),  # Bến Thành
    (16.0611, 108.2272, "Đà Nẵng", "Đà Nẵng", "Đà Nẵng", "central", "danang"),       # Dragon Bridge
    (10.0125, 105.0809, "An Giang", "Kiên Giang", "Rạch Giá", "south", "angiang"),
    (10.9574, 106.8427, "Đồng Nai", "Đồng Nai", "Biên Hòa", "south", "angiang"),
    (10.9804, 106.6519, "TP. Hồ Chí Minh", "Bình Dương", "Thủ Dầu Một", "south", "angiang"),
    (12.6680, 108.0378, "Đắk Lắk", "Đắk Lắk", "Buôn Ma Thuột", "central", "danang"),
    (10.2170, 103.9600, "An Giang", "Kiên Giang", "Phú Quốc", "south", "angiang"),   # an island
])
def test_points_in_vietnam(lat: float, lon: float, province: str, old: str, place: str, region: str,
                           center: str) -> None:
    r = geo.resolve(lat, lon)
    assert (r.country, r.in_vietnam, r.province, r.old_province, r.place) == ("VN", True, province, old, place)
    assert (r.region, r.center, r.border, r.offshore) == (region, center, None, False)
    assert r.distance_km < 5
    assert r.referral.key == "provincial_police" and "Blue Dragon" in r.referral.vi
    assert province.removeprefix("TP. ") in r.referral.vi
    assert r.summary_vi.startswith("Việt Nam") and r.summary_en.startswith("Vietnam")
    if old != province:
        assert f"cũ: {old}" in r.summary_vi


def test_mong_cai_is_in_vietnam_at_the_chinese_border() -> None:
    r = geo.resolve(21.5247, 107.9653)
    assert (r.country, r.in_vietnam, r.province, r.old_province, r.place) == ("VN", True, "Quảng Ninh", "Quảng Ninh",
                                                                              "Móng Cái")
    assert r.border is not None and r.border.country == "CN" and r.border.distance_km <= 5
    assert r.border.gate == "Cửa khẩu Quốc tế Móng Cái"
    assert (r.region, r.center, r.referral.key) == ("north", "hanoi", "central_police_border_guard")
    assert "Bộ đội Biên phòng tỉnh Quảng Ninh" in r.referral.vi
    assert "sát biên giới Trung Quốc" in r.summary_vi and "China border" in r.summary_en


def test_dongxing_is_abroad_across_the_river_from_mong_cai() -> None:
    r = geo.resolve(21.5478, 107.9720)
    assert (r.country, r.in_vietnam, r.province, r.old_province, r.place) == ("CN", False, None, None, "Đông Hưng")
    assert r.country_name == geo.Label("Trung Quốc", "China")
    assert r.border is not None and r.border.country == "CN" and r.border.distance_km <= 5
    assert (r.region, r.center, r.referral.key) == ("abroad", "hanoi", "central_police_border_guard")
    assert r.summary_vi.startswith("NƯỚC NGOÀI: Trung Quốc, gần Đông Hưng")
    assert "biên giới Việt Nam" in r.summary_vi and "Móng Cái" in r.summary_vi
    assert r.summary_en.startswith("ABROAD: China, near Dongxing")


def test_lao_cai_city_is_at_the_border() -> None:
    r = geo.resolve(22.4856, 103.9707)
    assert (r.country, r.province, r.place) == ("VN", "Lào Cai", "Lào Cai")
    assert r.border is not None and r.border.country == "CN" and r.border.distance_km <= 5
    assert r.referral.key == "central_police_border_guard"


def test_hekou_across_the_bridge_is_china() -> None:
    r = geo.resolve(22.507, 103.952)
    assert (r.country, r.place, r.in_vietnam) == ("CN", "Hà Khẩu", False)


@pytest.mark.parametrize(("lat", "lon", "country", "place", "near_border"), [
    (10.6270, 103.5220, "KH", "Xi-ha-núc-vin", False),   # Sihanoukville
    (11.0650, 106.1250, "KH", "Ba Vét", True),            # Bavet, opposite Mộc Bài
    (11.5560, 104.9280, "KH", "Phnôm Pênh", False),
    (16.6300, 106.5500, "LA", "Đen Sa Vẳn", True),        # across from Lao Bảo
    (17.9750, 102.6330, "LA", "Viêng Chăn", False),
    (20.3600, 100.1000, "LA", "Đặc khu kinh tế Tam giác Vàng", False),
    (16.6900, 98.5100, "MM", "Myawaddy", False),
    (37.5670, 126.9780, "KR", "Seoul", False),
    (23.3000, 107.3000, "CN", "Tĩnh Tây", False),         # inland Guangxi, ~75 km from the border
])
def test_points_abroad(lat: float, lon: float, country: str, place: str, near_border: bool) -> None:
    r = geo.resolve(lat, lon)
    assert (r.country, r.in_vietnam, r.province, r.old_province, r.place) == (country, False, None, None, place)
    assert (r.border is not None) is near_border
    assert (r.region, r.center, r.referral.key, r.offshore) == ("abroad", "hanoi", "central_police_border_guard", False)
    assert "C02" in r.referral.vi and "Bộ đội Biên phòng" in r.referral.vi and "Blue Dragon" in r.referral.vi
    assert r.summary_vi.startswith("NƯỚC NGOÀI") and r.summary_en.startswith("ABROAD")


def test_the_sea_off_nha_trang_belongs_to_khanh_hoa_and_is_flagged() -> None:
    r = geo.resolve(12.22, 109.50)
    assert (r.country, r.in_vietnam, r.province, r.place, r.offshore) == ("VN", True, "Khánh Hòa", "Nha Trang", True)
    assert 20 < r.distance_km < 45
    assert (r.center, r.referral.key) == ("danang", "central_police_border_guard")
    assert "trên biển" in r.summary_vi


def test_the_open_ocean_has_no_country() -> None:
    r = geo.resolve(-30.0, -140.0)
    assert (r.country, r.in_vietnam, r.province, r.border, r.center) == (None, False, None, None, "hanoi")
    assert r.summary_vi.startswith("Không rõ quốc gia")


def test_a_numeric_string_is_accepted_as_zalo_sends_it() -> None:
    assert geo.resolve("21.0287", "105.8524") == geo.resolve(21.0287, 105.8524)  # type: ignore[arg-type]


@pytest.mark.parametrize(("lat", "lon"), [
    (91, 0), (-90.5, 0), (0, 181), (0, -180.01), (math.nan, 105), (21, math.inf), (None, 105), ("abc", 105),
    (True, 105), (0, 0),
])
def test_invalid_coordinates_raise_value_error(lat: object, lon: object) -> None:
    with pytest.raises(ValueError):
        geo.resolve(lat, lon)  # type: ignore[arg-type]


def test_as_dict_is_json_for_the_console() -> None:
    data = geo.resolve(21.5247, 107.9653).as_dict()
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert data["border"]["country"] == "CN" and data["center"] == "hanoi" and data["place"] == "Móng Cái"
    assert data["summary"] == {"vi": data["summary_vi"], "en": data["summary_en"]}
    assert data["country_name"] == {"vi": "Việt Nam", "en": "Vietnam"}
    assert set(data["referral"]) == {"key", "vi", "en"}


def test_resolve_is_fast() -> None:
    rng = random.Random(7)
    points = [(rng.uniform(8, 24), rng.uniform(102, 110)) for _ in range(300)]
    points += [(rng.uniform(-80, 80), rng.uniform(-179, 179)) for _ in range(100)]
    geo.resolve(*points[0])  # data loaded and indexed once
    started = time.perf_counter()
    for lat, lon in points:
        geo.resolve(lat, lon)
    assert (time.perf_counter() - started) / len(points) < 0.002


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-90, max_value=90), st.floats(min_value=-180, max_value=180))
def test_any_point_on_earth_resolves_consistently(lat: float, lon: float) -> None:
    if lat == 0 and lon == 0:
        return
    r = geo.resolve(lat, lon)
    assert r.in_vietnam == (r.country == "VN")
    assert (r.province in geo.new_units()) if r.in_vietnam else (r.province is None and r.region == "abroad")
    assert r.center == geo.center_for_region(r.region)
    assert r.referral.key == ("provincial_police" if r.in_vietnam and not r.border and not r.offshore
                              else "central_police_border_guard")
    assert r.distance_km >= 0 and r.summary_vi and r.summary_en


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=8.5, max_value=23.4), st.floats(min_value=102.1, max_value=109.5))
def test_points_around_vietnam_are_named_in_their_country(lat: float, lon: float) -> None:
    r = geo.resolve(lat, lon)
    assert r.country is not None
    place = by_name(r.place)
    assert place.country == r.country
    if r.in_vietnam:
        assert place.old_province == r.old_province


# ------------------------------------------------------------------------------ free text

@pytest.mark.parametrize(("text", "name", "country", "province", "old", "center"), [
    ("em đang ở móng cái", "Móng Cái", "VN", "Quảng Ninh", "Quảng Ninh", "hanoi"),
    ("e o ben tq", "Trung Quốc", "CN", None, None, "hanoi"),
    ("toi o Sai Gon", "TP. Hồ Chí Minh", "VN", "TP. Hồ Chí Minh", "TP. Hồ Chí Minh", "angiang"),
    ("tinh kien giang", "Kiên Giang", "VN", "An Giang", "Kiên Giang", "angiang"),
    ("Phnom Penh", "Phnôm Pênh", "KH", None, None, "hanoi"),
    ("em bị đưa sang Campuchia", "Campuchia", "KH", None, None, "hanoi"),
    ("o cpc", "Campuchia", "KH", None, None, "hanoi"),
    ("em ở Lào", "Lào", "LA", None, None, "hanoi"),
    ("sang lao roi", "Lào", "LA", None, None, "hanoi"),
    ("Đài Loan", "Đài Loan", "TW", None, None, "hanoi"),
    ("đi xklđ sang Hàn", "Hàn Quốc", "KR", None, None, "hanoi"),
    ("qua Nhật làm việc", "Nhật Bản", "JP", None, None, "hanoi"),
    ("làm ở Malaysia", "Malaysia", "MY", None, None, "hanoi"),
    ("bị bán sang Myanmar", "Myanmar", "MM", None, None, "hanoi"),
    ("ở Thái Lan", "Thái Lan", "TH", None, None, "hanoi"),
    ("bị bán sang Hà Nam Trung Quốc", "Hà Nam (Trung Quốc)", "CN", None, None, "hanoi"),
    ("em ở Hà Nam", "Hà Nam", "VN", "Ninh Bình", "Hà Nam", "hanoi"),
    ("em ở Huế", "Huế", "VN", "Huế", "Thừa Thiên Huế", "danang"),
    ("em o dien bien phu", "Điện Biên Phủ", "VN", "Điện Biên", "Điện Biên", "hanoi"),
    ("tỉnh Lào Cai", "Lào Cai", "VN", "Lào Cai", "Lào Cai", "hanoi"),
    ("I am in Sihanoukville", "Xi-ha-núc-vin", "KH", None, None, "hanoi"),
    ("BMT", "Buôn Ma Thuột", "VN", "Đắk Lắk", "Đắk Lắk", "danang"),
    ("gần cửa khẩu Tịnh Biên", "Cửa khẩu Tịnh Biên", "VN", "An Giang", "An Giang", "angiang"),
])
def test_find_place_in_text(text: str, name: str, country: str, province: str | None, old: str | None,
                            center: str) -> None:
    found = geo.find_place_in_text(text)
    assert found is not None, text
    assert (found.name, found.country, found.province, found.old_province, found.center) == \
        (name, country, province, old, center)
    assert fold(found.matched) in fold(text)


@pytest.mark.parametrize("text", [
    "nam", "bac", "Nam ơi", "em nam nay 15 tuoi", "bac si noi", "ra bac", "miền Nam", "hôm nay",
    "tình hình diễn biến phức tạp", "dien bien phuc tap",   # not Điện Biên
    "muốn sống hòa bình", "hoa binh",                        # peace, not Hòa Bình
    "đi xuất khẩu lao động", "di xkld", "lao dong pho thong",  # labour, not Laos
    "trẻ vị thành niên", "vi thanh nien",                     # minor, not Vị Thanh
    "đây là gì", "day la gi",                                # "what is it", not La Gi
    "em đi ăn", "thích nhất", "em thich nhat", "visa quá hạn", "visa qua han", "hn em di hoc",
    "Thái Bình Dương", "cầu treo qua sông", "em tên Thanh Hoa", "tẩy trang", "hai phong tro",
    "", "   ", "ok",
])
def test_ordinary_words_are_not_places(text: str) -> None:
    assert geo.find_place_in_text(text) is None, geo.find_place_in_text(text)
    assert geo.province_from_text(text) is None


@pytest.mark.parametrize(("text", "new_unit", "old"), [
    ("tinh kien giang", "An Giang", "Kiên Giang"),
    ("toi o Sai Gon", "TP. Hồ Chí Minh", "TP. Hồ Chí Minh"),
    ("em ở tp.hcm", "TP. Hồ Chí Minh", "TP. Hồ Chí Minh"),
    ("Bình Dương", "TP. Hồ Chí Minh", "Bình Dương"),
    ("o hn", "Hà Nội", "Hà Nội"),
    ("Thừa Thiên Huế", "Huế", "Thừa Thiên Huế"),
    ("daklak", "Đắk Lắk", "Đắk Lắk"),
    ("em ở Hòa Bình", "Phú Thọ", "Hòa Bình"),
    ("Điện Biên", "Điện Biên", "Điện Biên"),
    ("o thanh hoa", "Thanh Hóa", "Thanh Hóa"),
    ("em ở Hải Dương", "Hải Phòng", "Hải Dương"),
    ("Bà Rịa - Vũng Tàu", "TP. Hồ Chí Minh", "Bà Rịa – Vũng Tàu"),
])
def test_province_from_text(text: str, new_unit: str, old: str) -> None:
    found = geo.province_from_text(text)
    assert found is not None, text
    assert (found.name, found.old_province, found.country) == (new_unit, old, "VN")
    region = next(p.region for p in geo.provinces() if p.old_name == old)
    assert (found.region, found.center) == (region, geo.center_for_region(region))


def test_every_province_name_and_new_unit_is_found_with_and_without_diacritics() -> None:
    from bot.text import strip_diacritics

    for p in geo.provinces():
        for text in (f"tỉnh {p.old_name}", strip_diacritics(f"o {p.old_name}")):
            found = geo.province_from_text(text)
            assert found is not None and found.old_province == p.old_name, text
    for unit in geo.new_units():
        found = geo.province_from_text(f"tỉnh {unit}")
        assert found is not None and found.name == unit, unit


def test_a_town_is_not_a_province_mention_and_a_longer_name_wins() -> None:
    assert geo.province_from_text("em đang ở móng cái") is None
    assert geo.province_from_text("bị bán sang Hà Nam Trung Quốc") is None
    found = geo.find_place_in_text("em ở Điện Biên Phủ")
    assert found is not None and found.name == "Điện Biên Phủ" and found.kind == "city"


def test_all_places_named_in_a_message_in_order() -> None:
    found = geo.find_places_in_text("em ở Móng Cái, bị đưa sang Đông Hưng rồi lên Quảng Châu")
    assert [m.name for m in found] == ["Móng Cái", "Đông Hưng", "Quảng Châu"]
    assert [m.country for m in found] == ["VN", "CN", "CN"]
