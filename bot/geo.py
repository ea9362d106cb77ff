"""Offline location resolution: what a shared location, or a place named in a message, means for
the hotline.

`resolve(lat, lon)` gives the country; in Vietnam the province (the 2025 unit and the pre-2025
province people still name); the nearest named place; whether the point is abroad, at sea or within
~30 km of a land border; the regional call center; the suggested referral; and one summary line in
Vietnamese and one in English. `province_from_text` and `find_place_in_text` find a province, a
place or a country in free text, with or without diacritics.

Data, written from general knowledge rather than surveyed (coordinates are good to ~0.01-0.05°):

- ``bot/data/provinces.csv``: the 63 pre-2025 provinces, each with its 2025 unit (34 in all), region,
  land borders and alias spellings. Each merge is to be checked against Resolution 202/2025/QH15
  (the ``note`` column).
- ``bot/data/places.csv``: provincial capitals, towns, the centres of the districts abolished in
  2025 (kind ``district``, under their familiar names), border gates (``border_with`` names the
  neighbour), the foreign places that matter for trafficking, and Chinese provinces
  (``foreign_region``: named in messages, never the "nearest place" of a point). Hoàng Sa and
  Trường Sa are listed under Đà Nẵng and Khánh Hòa, as Vietnamese law has them.
- ``_OUTLINE`` below: a coarse outline of mainland Vietnam and Phú Quốc whose edges are tagged with
  the country across them (or the sea). Along the land border it may be off by ~10 km, so within
  ``_BAND_KM`` of it the nearest named towns outvote it; the outline alone decides farther away.

Alias markers in the CSV files (and in `COUNTRIES`): ``?Huế`` counts only when typed with exactly
these diacritics, or - typed without diacritics - after a location cue ("ở", "tỉnh", "sang", "về",
...) or as the whole message, because "hue" is also an ordinary word. ``~Hòa Bình`` counts only
after a cue ("hòa bình" is also "peace", with the same diacritics).

Nothing is read at import; the data files are loaded and indexed on first use and cached.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from bot.text import fold, has_diacritics, nfc, strip_diacritics

DATA_DIR = Path(__file__).resolve().parent / "data"

# The one region -> call center table (opening hours live in content/centers.yml). Outside Vietnam
# the Hanoi operation center (24 h) takes the case.
REGION_CENTER: dict[str, str] = {"north": "hanoi", "central": "danang", "south": "angiang", "abroad": "hanoi"}
REGIONS = ("north", "central", "south")

# How far (km) ...
_BORDER_KM = 30.0     # ... from a land border a point is flagged "near the border"
_BAND_KM = 20.0       # ... from the outline's land border the named towns outvote the outline
_VOTE_KM = 12.0       # ... a town may be to outvote the outline
_NEAR_KM = 60.0       # ... outside the outline the country across the nearest land edge holds
_FAR_KM = 400.0       # ... the nearest known place may be for its country to be named at all
_OFFSHORE_KM = 3.0    # ... from the coast and from the nearest place before a point is "at sea"
_GATE_KM = 60.0       # ... a border gate may be to be named with the border
_EARTH_KM = 6371.0088

PLACE_KINDS = ("city", "town", "district", "border_gate", "foreign_city", "foreign_region")
_VOTING_KINDS = frozenset({"city", "town", "district", "foreign_city"})  # gates sit on the line itself


@dataclass(frozen=True)
class Label:
    vi: str
    en: str


COUNTRIES: dict[str, tuple[Label, tuple[str, ...]]] = {
    # ISO code: (name, text aliases with the markers explained above)
    "VN": (Label("Việt Nam", "Vietnam"), ()),
    "CN": (Label("Trung Quốc", "China"),
           ("Trung Quốc", "Trung Hoa", "China", "bên Tàu", "sang Tàu", "nước Tàu", "đất Tàu", "bển Tàu")),
    "LA": (Label("Lào", "Laos"), ("?Lào", "Laos", "Lao PDR")),
    "KH": (Label("Campuchia", "Cambodia"),
           ("Campuchia", "Cam pu chia", "Căm-pu-chia", "Kampuchea", "Cambodia", "CPC", "Cao Miên", "bên Miên",
            "xứ Miên")),
    "TH": (Label("Thái Lan", "Thailand"), ("Thái Lan", "Thailand", "bên Thái", "sang Thái", "qua Thái", "đất Thái")),
    "MM": (Label("Myanmar", "Myanmar"), ("Myanmar", "Miến Điện", "Burma", "Mi-an-ma", "Myanma")),
    "MY": (Label("Malaysia", "Malaysia"), ("Malaysia", "Mã Lai", "Malay", "Ma-lai-xi-a", "Malaixia")),
    "SG": (Label("Singapore", "Singapore"), ("Singapore", "Tân Gia Ba", "bên Sing", "sang Sing", "qua Sing")),
    "TW": (Label("Đài Loan", "Taiwan"), ("Đài Loan", "Taiwan")),
    "KR": (Label("Hàn Quốc", "South Korea"),
           ("Hàn Quốc", "Nam Hàn", "Đại Hàn", "Korea", "South Korea", "bên Hàn", "sang Hàn", "xứ Hàn", "đất Hàn")),
    "JP": (Label("Nhật Bản", "Japan"),
           ("Nhật Bản", "Japan", "bên Nhật", "sang Nhật", "qua Nhật", "nước Nhật", "xứ Nhật", "đất Nhật")),
    "HK": (Label("Hồng Kông", "Hong Kong"), ()),  # named through the place of the same name
    "MO": (Label("Ma Cao", "Macau"), ()),
    "PH": (Label("Philippines", "Philippines"), ("Philippines", "Phi-líp-pin", "Philippin", "Phi Luật Tân")),
    "ID": (Label("Indonesia", "Indonesia"), ("Indonesia", "In-đô-nê-xi-a")),
    "GB": (Label("Anh", "United Kingdom"), ("Vương quốc Anh", "Anh Quốc", "United Kingdom", "England", "Britain")),
    "RU": (Label("Nga", "Russia"), ("Liên bang Nga", "Russia", "nước Nga")),
    "AE": (Label("UAE", "United Arab Emirates"), ("UAE", "United Arab Emirates", "Tiểu vương quốc Ả Rập")),
}
_UNKNOWN_COUNTRY = Label("Không rõ quốc gia", "Unknown country")
_CENTER_NAMES = {"hanoi": Label("Hà Nội", "Hanoi"), "danang": Label("Đà Nẵng", "Da Nang"),
                 "angiang": Label("An Giang", "An Giang")}
_NGO = Label("giải cứu: Blue Dragon", "rescue: Blue Dragon Children's Foundation")
_C02 = Label("Cục Cảnh sát hình sự (C02), Bộ Công an", "Criminal Police Department (C02), Ministry of Public Security")

# Coarse outline of Vietnam: "lat lon edge", where edge names what lies across the segment from this
# vertex to the next one ("CN", "LA", "KH", or "sea"); a blank line starts a new ring. Hand-drawn
# through the border gates and known border towns; the coast is drawn a few km out to sea.
_OUTLINE = """
21.49 108.05 CN
21.54 107.97 CN
21.59 107.85 CN
21.64 107.71 CN
21.66 107.58 CN
21.62 107.47 CN
21.67 107.33 CN
21.73 107.19 CN
21.79 107.06 CN
21.86 106.90 CN
21.97 106.72 CN
22.00 106.63 CN
22.12 106.63 CN
22.24 106.65 CN
22.37 106.68 CN
22.49 106.59 CN
22.60 106.75 CN
22.72 106.82 CN
22.86 106.73 CN
22.92 106.55 CN
22.87 106.34 CN
22.94 106.19 CN
23.00 106.05 CN
22.97 105.90 CN
23.05 105.75 CN
23.11 105.60 CN
23.25 105.53 CN
23.33 105.43 CN
23.40 105.32 CN
23.27 105.19 CN
23.19 105.05 CN
23.12 104.93 CN
22.97 104.84 CN
22.88 104.68 CN
22.82 104.52 CN
22.78 104.38 CN
22.80 104.26 CN
22.85 104.13 CN
22.70 104.02 CN
22.51 103.96 CN
22.57 103.87 CN
22.65 103.74 CN
22.78 103.62 CN
22.69 103.47 CN
22.60 103.30 CN
22.58 103.17 CN
22.66 103.00 CN
22.75 102.80 CN
22.79 102.60 CN
22.63 102.38 CN
22.40 102.14 LA
22.20 102.25 LA
22.00 102.45 LA
21.80 102.62 LA
21.60 102.78 LA
21.42 102.87 LA
21.25 102.90 LA
21.12 103.10 LA
21.00 103.27 LA
20.85 103.38 LA
20.70 103.55 LA
20.63 103.78 LA
20.78 103.98 LA
20.88 104.15 LA
20.80 104.40 LA
20.73 104.57 LA
20.55 104.48 LA
20.40 104.42 LA
20.34 104.48 LA
20.20 104.70 LA
20.00 104.90 LA
19.85 104.85 LA
19.75 104.62 LA
19.62 104.35 LA
19.55 104.10 LA
19.47 103.92 LA
19.35 103.88 LA
19.20 104.05 LA
19.15 104.25 LA
19.05 104.45 LA
18.90 104.65 LA
18.78 104.90 LA
18.60 105.05 LA
18.39 105.15 LA
18.25 105.38 LA
18.10 105.55 LA
17.95 105.68 LA
17.72 105.76 LA
17.55 105.92 LA
17.38 106.10 LA
17.20 106.25 LA
17.00 106.40 LA
16.82 106.50 LA
16.62 106.57 LA
16.45 106.68 LA
16.30 106.93 LA
16.20 107.08 LA
16.05 107.22 LA
15.85 107.33 LA
15.62 107.38 LA
15.40 107.47 LA
15.15 107.45 LA
14.92 107.46 LA
14.70 107.54 KH
14.45 107.46 KH
14.15 107.38 KH
13.95 107.45 KH
13.79 107.53 KH
13.55 107.50 KH
13.30 107.53 KH
13.05 107.55 KH
12.80 107.52 KH
12.47 107.51 KH
12.26 107.39 KH
12.15 107.22 KH
12.05 107.05 KH
11.98 106.86 KH
11.93 106.63 KH
11.82 106.45 KH
11.76 106.25 KH
11.72 106.03 KH
11.52 105.92 KH
11.32 105.88 KH
11.17 106.02 KH
11.08 106.17 KH
10.98 106.17 KH
10.90 106.06 KH
10.87 105.93 KH
10.95 105.79 KH
10.96 105.60 KH
10.94 105.46 KH
10.90 105.31 KH
10.91 105.17 KH
10.96 105.08 KH
10.82 105.03 KH
10.72 105.07 KH
10.58 104.93 KH
10.52 104.75 KH
10.48 104.60 KH
10.43 104.44 sea
10.36 104.46 sea
10.24 104.56 sea
10.14 104.80 sea
10.03 105.03 sea
9.80 105.03 sea
9.55 104.93 sea
9.30 104.78 sea
9.05 104.78 sea
8.80 104.74 sea
8.58 104.70 sea
8.62 104.90 sea
8.78 105.10 sea
9.00 105.42 sea
9.20 105.78 sea
9.25 105.98 sea
9.45 106.25 sea
9.60 106.55 sea
9.85 106.72 sea
10.05 106.75 sea
10.28 106.82 sea
10.37 106.98 sea
10.31 107.07 sea
10.42 107.28 sea
10.55 107.55 sea
10.63 107.78 sea
10.78 108.00 sea
10.90 108.14 sea
10.93 108.33 sea
11.10 108.57 sea
11.22 108.78 sea
11.34 109.05 sea
11.58 109.07 sea
11.78 109.23 sea
11.95 109.25 sea
12.25 109.24 sea
12.55 109.38 sea
12.88 109.48 sea
13.10 109.35 sea
13.45 109.28 sea
13.77 109.27 sea
14.10 109.22 sea
14.45 109.10 sea
14.70 109.08 sea
15.00 108.95 sea
15.30 108.88 sea
15.45 108.75 sea
15.65 108.55 sea
15.88 108.42 sea
16.15 108.33 sea
16.22 108.13 sea
16.32 107.95 sea
16.58 107.65 sea
16.82 107.25 sea
17.00 107.13 sea
17.25 106.95 sea
17.48 106.66 sea
17.72 106.50 sea
17.95 106.52 sea
18.10 106.42 sea
18.28 106.12 sea
18.42 105.95 sea
18.68 105.82 sea
18.82 105.75 sea
19.02 105.66 sea
19.25 105.78 sea
19.45 105.85 sea
19.73 105.95 sea
19.95 106.05 sea
20.02 106.18 sea
20.12 106.38 sea
20.24 106.60 sea
20.42 106.65 sea
20.60 106.68 sea
20.70 106.82 sea
20.85 106.90 sea
20.93 107.10 sea
21.00 107.38 sea
21.15 107.47 sea
21.30 107.50 sea
21.35 107.68 sea
21.43 107.85 sea
21.46 108.05 sea

10.44 103.82 sea
10.46 104.01 sea
10.36 104.09 sea
10.18 104.07 sea
10.02 104.06 sea
9.94 104.02 sea
10.05 103.97 sea
10.20 103.93 sea
10.33 103.85 sea
"""


# ---------------------------------------------------------------------------------- data records

@dataclass(frozen=True)
class Province:
    old_name: str
    new_unit: str
    new_unit_kind: str  # "province" | "city" (the six centrally-run cities)
    region: str
    border_countries: tuple[str, ...]
    aliases: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Place:
    name: str
    name_en: str
    aliases: tuple[str, ...]
    country: str
    old_province: str | None
    lat: float
    lon: float
    kind: str
    border_with: str | None


# ---------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Border:
    country: str  # the neighbour across the Vietnamese land border
    distance_km: float
    gate: str | None = None  # the nearest border gate on that border, when within _GATE_KM
    gate_distance_km: float | None = None


@dataclass(frozen=True)
class Referral:
    key: str  # "central_police_border_guard" | "provincial_police"
    vi: str
    en: str


@dataclass(frozen=True)
class Resolution:
    lat: float
    lon: float
    country: str | None  # ISO 3166 alpha-2; None far from every known place (open sea)
    country_name: Label
    in_vietnam: bool
    province: str | None  # the 2025 unit
    old_province: str | None  # the pre-2025 province people still name
    place: str  # nearest named place in that country
    place_en: str
    distance_km: float
    border: Border | None
    offshore: bool  # Vietnamese waters or an island: outside the mainland outline, off the coast
    region: str  # north | central | south | abroad
    center: str  # hanoi | danang | angiang
    referral: Referral
    summary_vi: str
    summary_en: str

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = {"vi": self.summary_vi, "en": self.summary_en}
        return out


@dataclass(frozen=True)
class ProvinceMatch:
    name: str  # the 2025 unit
    old_province: str  # the province as the person named it (pre-2025)
    region: str
    center: str
    border_countries: tuple[str, ...]
    matched: str  # the words of the message that named it
    country: str = "VN"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlaceMatch:
    name: str
    name_en: str
    kind: str  # a places.csv kind, "province" or "country"
    country: str
    country_name: Label
    province: str | None
    old_province: str | None
    region: str
    center: str
    lat: float | None
    lon: float | None
    matched: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------- loading

def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(";") if v.strip())


def _rows(name: str) -> Iterable[tuple[int, dict[str, str]]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            yield line, {k: (v or "").strip() for k, v in row.items()}


@lru_cache(maxsize=1)
def provinces() -> tuple[Province, ...]:
    """Every pre-2025 province (63 rows of provinces.csv)."""
    out = []
    for line, r in _rows("provinces.csv"):
        borders = _split(r["border_countries"])
        if r["region"] not in REGIONS or r["new_unit_kind"] not in ("province", "city") \
                or not r["old_name"] or not r["new_unit"] or any(c not in COUNTRIES for c in borders):
            raise ValueError(f"provinces.csv line {line}: bad row {r}")
        out.append(Province(r["old_name"], r["new_unit"], r["new_unit_kind"], r["region"], borders,
                            _split(r["aliases"]), r["note"]))
    return tuple(out)


@lru_cache(maxsize=1)
def _province_by_old_name() -> dict[str, Province]:
    return {p.old_name: p for p in provinces()}


def new_units() -> tuple[str, ...]:
    """The 34 provincial-level units in force since 1 July 2025."""
    return tuple(sorted({p.new_unit for p in provinces()}))


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    """Every named place of places.csv."""
    known = _province_by_old_name()
    out = []
    for line, r in _rows("places.csv"):
        try:
            lat, lon = float(r["lat"]), float(r["lon"])
        except ValueError:
            raise ValueError(f"places.csv line {line}: bad coordinates {r}") from None
        country, old, kind, border = r["country"], r["old_province"] or None, r["kind"], r["border_with"] or None
        if (not r["name"] or country not in COUNTRIES or kind not in PLACE_KINDS
                or (country == "VN") != (old is not None) or (old is not None and old not in known)
                or (kind == "border_gate") != (border is not None) or (border and border not in COUNTRIES)
                or not (-90 <= lat <= 90 and -180 <= lon <= 180)):
            raise ValueError(f"places.csv line {line}: bad row {r}")
        out.append(Place(r["name"], r["name_en"] or strip_diacritics(r["name"]), _split(r["aliases"]), country, old,
                         lat, lon, kind, border))
    return tuple(out)


# ---------------------------------------------------------------------------------- geometry

Edge = tuple[float, float, float, float, str]  # lat1, lon1, lat2, lon2, what lies across


@dataclass(frozen=True)
class _Geo:
    places: tuple[Place, ...]  # without foreign regions
    rad: tuple[tuple[float, float, float], ...]  # per place: lat, lon in radians, cos(lat)
    voters: tuple[int, ...]  # towns and cities: they may outvote the outline near the border
    foreign_voters: tuple[int, ...]
    by_country: dict[str, tuple[int, ...]]
    gates: dict[str, tuple[int, ...]]  # border gates by neighbour
    edges: tuple[Edge, ...]


def _outline_edges() -> tuple[Edge, ...]:
    edges: list[Edge] = []
    for block in _OUTLINE.strip().split("\n\n"):
        ring = [(float(a), float(b), c) for a, b, c in (line.split() for line in block.strip().splitlines())]
        for k, (lat, lon, across) in enumerate(ring):
            nlat, nlon, _ = ring[(k + 1) % len(ring)]
            edges.append((lat, lon, nlat, nlon, across))
    return tuple(edges)


@lru_cache(maxsize=1)
def _geo() -> _Geo:
    named = tuple(p for p in places() if p.kind != "foreign_region")
    by_country: dict[str, list[int]] = {}
    gates: dict[str, list[int]] = {}
    for i, p in enumerate(named):
        by_country.setdefault(p.country, []).append(i)
        if p.border_with:
            gates.setdefault(p.border_with, []).append(i)
    voters = tuple(i for i, p in enumerate(named) if p.kind in _VOTING_KINDS)
    return _Geo(
        places=named,
        rad=tuple((math.radians(p.lat), math.radians(p.lon), math.cos(math.radians(p.lat))) for p in named),
        voters=voters,
        foreign_voters=tuple(i for i in voters if named[i].country != "VN"),
        by_country={k: tuple(v) for k, v in by_country.items()},
        gates={k: tuple(v) for k, v in gates.items()},
        edges=_outline_edges(),
    )


def _distances(g: _Geo, lat: float, lon: float) -> list[float]:
    """Great-circle km from the point to every place."""
    la, lo = math.radians(lat), math.radians(lon)
    cl = math.cos(la)
    sin, asin, sqrt = math.sin, math.asin, math.sqrt
    return [2 * _EARTH_KM * asin(min(1.0, sqrt(sin((pa - la) / 2) ** 2 + cl * pc * sin((po - lo) / 2) ** 2)))
            for pa, po, pc in g.rad]


def _inside(g: _Geo, lat: float, lon: float) -> bool:
    inside = False
    for a_lat, a_lon, b_lat, b_lon, _ in g.edges:
        if (a_lat > lat) != (b_lat > lat) and lon < a_lon + (lat - a_lat) * (b_lon - a_lon) / (b_lat - a_lat):
            inside = not inside
    return inside


def _edge_distances(g: _Geo, lat: float, lon: float) -> tuple[float, str | None, float]:
    """(km to the nearest land-border edge, the neighbour across it, km to the nearest coast edge),
    on a flat projection around the point: good near Vietnam, only an ordering far from it."""
    kx, ky = 111.32 * math.cos(math.radians(lat)), 110.57
    land, across, coast = math.inf, None, math.inf
    for a_lat, a_lon, b_lat, b_lon, kind in g.edges:
        ax, ay = (a_lon - lon) * kx, (a_lat - lat) * ky
        dx, dy = (b_lon - a_lon) * kx, (b_lat - a_lat) * ky
        length2 = dx * dx + dy * dy
        t = max(0.0, min(1.0, -(ax * dx + ay * dy) / length2)) if length2 else 0.0
        d = math.hypot(ax + t * dx, ay + t * dy)
        if kind == "sea":
            coast = min(coast, d)
        elif d < land:
            land, across = d, kind
    return land, across, coast


def _nearest(dist: list[float], candidates: Iterable[int]) -> int | None:
    return min(candidates, key=dist.__getitem__, default=None)


def _country_of_nearest(g: _Geo, dist: list[float], candidates: tuple[int, ...]) -> str | None:
    i = _nearest(dist, candidates)
    return g.places[i].country if i is not None and dist[i] <= _FAR_KM else None


def _vote(g: _Geo, dist: list[float], side: str) -> str:
    """Near the land border: a town of the other country close by outvotes the outline, unless a
    town of the outline's side is nearly as close."""
    same = other = None
    for i in g.voters:
        if g.places[i].country == side:
            if same is None or dist[i] < dist[same]:
                same = i
        elif other is None or dist[i] < dist[other]:
            other = i
    if other is not None and dist[other] <= _VOTE_KM and (same is None or dist[other] * 1.5 < dist[same]):
        return g.places[other].country
    return side


# ---------------------------------------------------------------------------------- resolve

def _coordinate(value: object, name: str, limit: float) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number, not {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]  # int, float, Decimal or a numeric string (Zalo)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number) or abs(number) > limit:
        raise ValueError(f"{name} must be between -{limit:g} and {limit:g}, not {value!r}")
    return number


def resolve(lat: float, lon: float) -> Resolution:
    """What a point means for the hotline. Raises ValueError for coordinates that are not a place
    on Earth, and for 0,0 (what broken location sharing sends)."""
    lat, lon = _coordinate(lat, "latitude", 90), _coordinate(lon, "longitude", 180)
    if lat == 0 and lon == 0:
        raise ValueError("0,0 is the placeholder of a failed location share, not a location")
    g = _geo()
    dist = _distances(g, lat, lon)
    inside = _inside(g, lat, lon)
    land_km, neighbour, coast_km = _edge_distances(g, lat, lon)

    country: str | None
    if inside:
        country = _vote(g, dist, "VN") if land_km <= _BAND_KM else "VN"
    elif neighbour is not None and land_km <= coast_km:  # beyond the land border
        if land_km <= _BAND_KM:
            country = _vote(g, dist, neighbour)
        else:
            country = neighbour if land_km <= _NEAR_KM else _country_of_nearest(g, dist, g.foreign_voters)
    else:  # at sea, or on the far side of it: the nearest town or city says where
        country = _country_of_nearest(g, dist, g.voters)

    in_vietnam = country == "VN"
    pi = _nearest(dist, g.by_country[country] if country in g.by_country else range(len(g.places)))
    assert pi is not None
    place = g.places[pi]
    province = _province_by_old_name()[place.old_province] if in_vietnam and place.old_province else None
    offshore = (in_vietnam and not inside and land_km > _BAND_KM
                and min(coast_km, dist[pi]) > _OFFSHORE_KM)

    border, gate = None, None
    if neighbour is not None:
        gi = _nearest(dist, g.gates.get(neighbour, ()))
        gate_km = dist[gi] if gi is not None else math.inf
        km = min(land_km, gate_km)  # a gate sits on the line: the outline can be no farther
        if km <= _BORDER_KM:
            gate = g.places[gi] if gi is not None and gate_km <= _GATE_KM else None
            border = Border(neighbour, round(km, 1), gate.name if gate else None,
                            round(gate_km, 1) if gate else None)

    region = province.region if province else "abroad"
    center = REGION_CENTER[region]
    referral = _referral(province, border is not None or offshore)
    summary_vi, summary_en = _summaries(country, province, place, dist[pi], border, gate, offshore, center,
                                         referral)
    return Resolution(
        lat=lat, lon=lon, country=country,
        country_name=COUNTRIES[country][0] if country else _UNKNOWN_COUNTRY,
        in_vietnam=in_vietnam,
        province=province.new_unit if province else None,
        old_province=province.old_name if province else None,
        place=place.name, place_en=place.name_en, distance_km=round(dist[pi], 1),
        border=border, offshore=offshore, region=region, center=center, referral=referral,
        summary_vi=summary_vi, summary_en=summary_en,
    )


def center_for_region(region: str | None) -> str:
    """The call center of a region ("north", "central", "south"); abroad or unknown: Hanoi (24 h)."""
    if region is None:
        return REGION_CENTER["abroad"]
    try:
        return REGION_CENTER[region]
    except KeyError:
        raise ValueError(f"unknown region {region!r}; expected one of {sorted(REGION_CENTER)}") from None


def _english(unit: str) -> str:
    return f"{strip_diacritics(unit[4:])} City" if unit.startswith("TP. ") else strip_diacritics(unit)


def _unit_names(p: Province) -> Label:
    """The 2025 unit as an agency's name has it: "tỉnh An Giang", "TP. Hà Nội" / "An Giang
    province", "Ha Noi City"."""
    if p.new_unit.startswith("TP. "):
        return Label(p.new_unit, _english(p.new_unit))
    if p.new_unit_kind == "city":
        return Label(f"TP. {p.new_unit}", f"{_english(p.new_unit)} City")
    return Label(f"tỉnh {p.new_unit}", f"{_english(p.new_unit)} province")


def _referral(p: Province | None, border_or_sea: bool) -> Referral:
    if p is None:  # abroad
        return Referral("central_police_border_guard", f"{_C02.vi} / Bộ đội Biên phòng; {_NGO.vi}",
                        f"{_C02.en} / Border Guard; {_NGO.en}")
    unit = _unit_names(p)
    if border_or_sea:
        return Referral("central_police_border_guard", f"Bộ đội Biên phòng {unit.vi} / {_C02.vi}; {_NGO.vi}",
                        f"Border Guard ({unit.en}) / {_C02.en}; {_NGO.en}")
    return Referral("provincial_police", f"Công an {unit.vi}; {_NGO.vi}", f"{unit.en} police; {_NGO.en}")


def _km(value: float, lang: str) -> str:
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    return f"{text.replace('.', ',') if lang == 'vi' else text} km"


def _summaries(country: str | None, p: Province | None, place: Place, place_km: float, border: Border | None,
               gate: Place | None, offshore: bool, center: str, referral: Referral) -> tuple[str, str]:
    if p is not None:
        old = Label(f" (cũ: {p.old_name})", f" (former {_english(p.old_name)})") \
            if p.old_name != p.new_unit else Label("", "")
        sea = Label(" - trên biển/đảo", " - at sea or on an island") if offshore else Label("", "")
        vi = [f"Việt Nam{sea.vi}, {p.new_unit}{old.vi}, gần {place.name} ({_km(place_km, 'vi')})"]
        en = [f"Vietnam{sea.en}, {_english(p.new_unit)}{old.en}, near {place.name_en} ({_km(place_km, 'en')})"]
    elif country is None:
        vi = [f"Không rõ quốc gia (ngoài khơi hoặc xa mọi địa danh đã biết), gần nhất: {place.name} "
              f"({_km(place_km, 'vi')})"]
        en = [f"Unknown country (open sea or far from every known place), nearest: {place.name_en} "
              f"({_km(place_km, 'en')})"]
    else:
        name = COUNTRIES[country][0]
        vi = [f"NƯỚC NGOÀI: {name.vi}, gần {place.name} ({_km(place_km, 'vi')})"]
        en = [f"ABROAD: {name.en}, near {place.name_en} ({_km(place_km, 'en')})"]
    if border is not None:
        other = COUNTRIES[border.country][0] if p is not None else COUNTRIES["VN"][0]
        km_vi, km_en = _km(border.distance_km, "vi"), _km(border.distance_km, "en")
        if border.distance_km <= 5:
            vi_b, en_b = f"sát biên giới {other.vi} ({km_vi})", f"at the {other.en} border ({km_en})"
        else:
            vi_b, en_b = f"cách biên giới {other.vi} {km_vi}", f"{km_en} from the {other.en} border"
        if gate is not None and gate is not place and border.gate_distance_km is not None:
            vi_b += f", {gate.name} {_km(border.gate_distance_km, 'vi')}"
            en_b += f", {gate.name_en} {_km(border.gate_distance_km, 'en')}"
        vi.append(vi_b)
        en.append(en_b)
    if referral.key == "provincial_police" and p is not None:
        vi.append(f"chuyển: Công an {_unit_names(p).vi} + Blue Dragon")
        en.append(f"refer: {_unit_names(p).en} police + Blue Dragon")
    else:
        vi.append("chuyển: Biên phòng / C02 Bộ Công an + Blue Dragon")
        en.append("refer: Border Guard / C02 police + Blue Dragon")
    vi.append(f"TT {_CENTER_NAMES[center].vi}")
    en.append(f"center {_CENTER_NAMES[center].en}")
    return "; ".join(vi), "; ".join(en)


# ---------------------------------------------------------------------------------- free text

# Words after which a name is taken as a place ("ở Huế", "tỉnh Điện Biên", "sang Lào", "in Hue").
_CUES = frozenset({
    "o", "tai", "tinh", "tp", "thanh pho", "thi xa", "thi tran", "huyen", "quan", "xa", "phuong", "den", "ve",
    "sang", "gan", "tu", "ben", "nuoc", "que", "vung", "khu", "dat", "xu", "ra", "vao", "len", "xuong", "di",
    "in", "at", "from", "to", "near", "city", "province",
})
_CUE_WORDS = frozenset(w for cue in _CUES for w in cue.split())
# Words that may stand around a "?" name that makes up the whole message ("Huế ạ", "em đang ở Lào nha").
_FILLER = frozenset({"a", "ah", "ak", "nha", "nhe", "oi", "em", "toi", "minh", "dang", "i", "am", "im"})
# Folded names that are not places next to these words ("lao động", "vị thành niên", "Thái Bình Dương").
_NOT_FOLLOWED_BY = {
    "lao": frozenset({"dong", "vao", "ra", "xuong", "len", "luc", "tam", "cong", "dao", "xao", "nhao", "ao"}),
    "vi thanh": frozenset({"nien"}),
    "thai binh": frozenset({"duong"}),
}
_NOT_PRECEDED_BY = {"binh duong": frozenset({"thai"})}
_PROVINCE_CUES = frozenset({"tinh", "tp", "thanh pho"})
_KIND_RANK = {"city": 0, "town": 1, "district": 2, "border_gate": 3, "province": 4, "foreign_city": 5,
              "foreign_region": 6, "country": 7}
_NON_WORD = re.compile(r"[^\w\s]+|_")
_STRICTNESS = {"": 0, "?": 1, "~": 2}


@dataclass(frozen=True)
class _Target:
    kind: str
    country: str
    place: Place | None = None
    province: Province | None = None


@dataclass(frozen=True)
class _Alias:
    target: _Target
    mark: str  # "", "?" or "~"
    forms: frozenset[str]  # how the name is written with diacritics (lower case)


@dataclass(frozen=True)
class _Index:
    aliases: dict[str, tuple[_Alias, ...]]
    longest: int


def _words(text: str) -> list[str]:
    return _NON_WORD.sub(" ", nfc(text).lower()).split()


def _tokens(text: str) -> tuple[list[str], list[int], list[str]]:
    """(folded tokens, the index of the written word each comes from, the written words)."""
    words = _words(text)
    folded: list[str] = []
    owner: list[int] = []
    for i, word in enumerate(words):
        for token in fold(word).split():
            folded.append(token)
            owner.append(i)
    return folded, owner, words


@lru_cache(maxsize=1)
def _index() -> _Index:
    targets: list[tuple[_Target, Iterable[str], Iterable[str]]] = []  # target, plain names, marked aliases
    for p in provinces():
        targets.append((_Target("province", "VN", province=p), (p.old_name,), p.aliases))
    for q in places():
        targets.append((_Target(q.kind, q.country, place=q), (q.name, q.name_en), q.aliases))
    for code, (_, aliases) in COUNTRIES.items():
        targets.append((_Target("country", code), (), aliases))

    found: dict[str, dict[_Target, tuple[str | None, set[str]]]] = {}
    for target, names, aliases in targets:
        marked = [(None, n) for n in names] + [(a[0] if a[:1] in ("?", "~") else "", a.lstrip("?~")) for a in aliases]
        for mark, text in marked:
            key = " ".join(_tokens(text)[0])
            if not key:
                continue
            old_mark, forms = found.setdefault(key, {}).get(target, (None, set()))
            if mark is not None and (old_mark is None or _STRICTNESS[mark] > _STRICTNESS[old_mark]):
                old_mark = mark
            forms.add(" ".join(_words(text)))
            found[key][target] = (old_mark, forms)
    aliases_by_key = {key: tuple(_Alias(t, mark or "", frozenset(forms)) for t, (mark, forms) in by_target.items())
                      for key, by_target in found.items()}
    return _Index(aliases_by_key, max(len(k.split()) for k in aliases_by_key))


def _after(cues: frozenset[str], folded: list[str], i: int) -> bool:
    return (i >= 1 and folded[i - 1] in cues) or (i >= 2 and f"{folded[i - 2]} {folded[i - 1]}" in cues)


def _counts(alias: _Alias, key: str, folded: list[str], written: str, i: int, j: int) -> bool:
    if (j < len(folded) and folded[j] in _NOT_FOLLOWED_BY.get(key, ())) \
            or (i > 0 and folded[i - 1] in _NOT_PRECEDED_BY.get(key, ())):
        return False
    if not alias.mark:
        return True
    if has_diacritics(written):
        if written not in alias.forms:
            return False  # typed with other diacritics: another word ("diễn biến" is not Điện Biên)
        if alias.mark == "?":
            return True
    if _after(_CUES, folded, i):
        return True
    return alias.mark == "?" and all(t in _CUE_WORDS or t in _FILLER for t in folded[:i] + folded[j:])


def _match(target: _Target, written: str) -> PlaceMatch:
    if target.province is not None:
        p = target.province
        return PlaceMatch(p.old_name, strip_diacritics(p.old_name), "province", "VN", COUNTRIES["VN"][0], p.new_unit,
                          p.old_name, p.region, REGION_CENTER[p.region], None, None, written)
    if target.place is not None:
        q = target.place
        p = _province_by_old_name()[q.old_province] if q.old_province else None
        region = p.region if p else "abroad"
        return PlaceMatch(q.name, q.name_en, q.kind, q.country, COUNTRIES[q.country][0], p.new_unit if p else None,
                          q.old_province, region, REGION_CENTER[region], q.lat, q.lon, written)
    name = COUNTRIES[target.country][0]  # never Vietnam: it has no aliases
    return PlaceMatch(name.vi, name.en, "country", target.country, name, None, None, "abroad",
                      REGION_CENTER["abroad"], None, None, written)


def _scan(text: str) -> list[tuple[int, int, list[_Target], str]]:
    """Left to right, the longest name at each written word: (start, end, what it may name, the
    written words)."""
    if not text or not isinstance(text, str):
        return []
    folded, owner, words = _tokens(text)
    index = _index()
    hits: list[tuple[int, int, list[_Target], str]] = []
    i = 0
    while i < len(folded):
        if i > 0 and owner[i] == owner[i - 1]:  # a name starts with a written word, not inside "tq"
            i += 1
            continue
        for j in range(min(len(folded), i + index.longest), i, -1):
            key = " ".join(folded[i:j])
            if (j < len(folded) and owner[j] == owner[j - 1]) or key not in index.aliases:
                continue
            written = " ".join(words[owner[i]:owner[j - 1] + 1])
            found = [a.target for a in index.aliases[key] if _counts(a, key, folded, written, i, j)]
            if found:
                wants_province = _after(_PROVINCE_CUES, folded, i)
                found.sort(key=lambda t: (not (wants_province and t.kind == "province"), _KIND_RANK[t.kind]))
                hits.append((i, j, found, written))
                i = j
                break
        else:
            i += 1
    return hits


def find_places_in_text(text: str) -> list[PlaceMatch]:
    """Every province, place or country named in the text, in order."""
    return [_match(targets[0], written) for _, _, targets, written in _scan(text)]


def find_place_in_text(text: str) -> PlaceMatch | None:
    """The place a message names: the longest name wins, then the most specific (a town before a
    province before a country), then the first."""
    hits = _scan(text)
    if not hits:
        return None
    _, _, targets, written = min(hits, key=lambda h: (-(h[1] - h[0]), _KIND_RANK[h[2][0].kind], h[0]))
    return _match(targets[0], written)


def province_from_text(text: str) -> ProvinceMatch | None:
    """The province a message names by its old or new name or an alias ("tinh kien giang",
    "Sài Gòn"). A town inside it does not count ("Móng Cái" is `find_place_in_text`'s), nor a name
    that is part of a longer one ("Hà Nam" in "Hà Nam Trung Quốc")."""
    for _, _, targets, written in sorted(_scan(text), key=lambda h: (-(h[1] - h[0]), h[0])):
        p = next((t.province for t in targets if t.province is not None), None)
        if p is not None:
            return ProvinceMatch(p.new_unit, p.old_name, p.region, REGION_CENTER[p.region], p.border_countries,
                                 written)
    return None
