"""The recruitment-agency registry: CSV import (errors name the row, dry run) and fuzzy look-ups."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot import agencies
from bot.agencies import AgencyRecord, CsvError, parse_csv
from bot.db.models import Agency

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT_ROOT / "content" / "agencies.sample.csv"
HEADER = "name,licence_number,status,licensed_on,status_changed_on,address,source"

REGISTRY = "\n".join([
    HEADER,
    '"Công ty TNHH Hoàng Long Quốc tế",101/DEMO-GP,active,2019-03-01,,"Hà Nội",test',
    '"Công ty Cổ phần Nhân lực Sao Mai Việt",102/DEMO-GP,đang hoạt động,15/06/2020,,,test',
    '"Công ty CP Xuất khẩu lao động Thành Đạt",103/DEMO-GP,Thu hồi,2015-01-01,10/05/2023,,test',
    '"Công ty TNHH MTV Phú Quý",104/DEMO-GP,tạm đình chỉ,2018-01-01,2024-02-01,,test',
    '"Công ty CP Đầu tư và Phát triển Nhân lực Việt Nam",105/DEMO-GP,active,2017-07-07,,,test',
    '"Công ty TNHH Minh Phát",106/DEMO-GP,active,2021-01-01,,,test',
    '"Công ty Cổ phần ABC",107/DEMO-GP,active,2022-01-01,,,test',
    '"Công ty TNHH Thương mại và Dịch vụ Bình Minh",123/LĐTBXH-GP,active,2016-05-05,,,test',
]).encode("utf-8")


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows]).encode("utf-8")


@pytest.fixture(autouse=True)
async def empty_registry(sessions) -> None:
    """Whatever the shared database fixture seeds, these tests start from an empty registry."""
    async with sessions() as session:
        await session.execute(delete(Agency))
        await session.commit()


@pytest.fixture
async def registry(sessions):
    async with sessions() as session:
        await agencies.apply_import(session, parse_csv(REGISTRY))
    return sessions


async def find(sessions, query: str) -> agencies.LookupResult:
    async with sessions() as session:
        return await agencies.lookup(session, query)


# ------------------------------------------------------------------ parsing

def test_parse_registry() -> None:
    records = parse_csv(REGISTRY)
    assert len(records) == 8
    assert records[0] == AgencyRecord("Công ty TNHH Hoàng Long Quốc tế", "101/DEMO-GP", "active", date(2019, 3, 1),
                                      None, "Hà Nội", "test")
    assert [r.status for r in records[1:4]] == ["active", "revoked", "suspended"]  # Vietnamese status words
    assert records[2].status_changed_on == date(2023, 5, 10)  # dd/mm/yyyy


def test_parse_semicolons_bom_crlf_and_vietnamese_header() -> None:
    data = ("\ufeffTên doanh nghiệp;Số giấy phép;Trạng thái;Ngày cấp\r\n"
            "Công ty A;1/GP;ĐANG HOẠT ĐỘNG;01/02/2020\r\n"
            "\"Công ty B; chi nhánh\";2/GP;bi thu hoi;\r\n"
            "Cong ty C;3/GP;dinh chi;2021-12-31\r\n").encode("utf-8")
    records = parse_csv(data)
    assert [(r.name, r.licence_number, r.status, r.licensed_on) for r in records] == [
        ("Công ty A", "1/GP", "active", date(2020, 2, 1)),
        ("Công ty B; chi nhánh", "2/GP", "revoked", None),
        ("Cong ty C", "3/GP", "suspended", date(2021, 12, 31)),
    ]


def test_parse_nfd_input_is_normalised() -> None:
    import unicodedata

    data = unicodedata.normalize("NFD", f"{HEADER}\nCông ty Hoàng,9/GP,thu hồi,,,,\n").encode("utf-8")
    [record] = parse_csv(data)
    assert record.name == "Công ty Hoàng" and record.status == "revoked"


def test_quoted_newline_keeps_row_numbers_right() -> None:
    data = csv_bytes('A,1/GP,active,,,"line one\nline two",', "B,2/GP,active,,,,", ",3/GP,active,,,,")
    with pytest.raises(CsvError) as info:
        parse_csv(data)
    assert (info.value.row, info.value.error) == (5, "empty name")


@pytest.mark.parametrize("data,row,error", [
    (b"", 1, "empty"),
    (b"\n\n  \n", 1, "empty"),
    (csv_bytes("A,1/GP", header="name,licence_number"), 1, "missing column(s) status"),
    (csv_bytes("A,1/GP,active", header="licence_number,status,foo"), 1, "name"),
    (csv_bytes("A,1/GP,active,,,,", ",2/GP,active,,,,"), 3, "empty name"),
    (csv_bytes("A,1/GP,active,,,,", "B,,active,,,,"), 3, "empty licence_number"),
    (csv_bytes("A,1/GP,active,,,,", "B,2/GP,closed,,,,"), 3, "unknown status 'closed'"),
    (csv_bytes("A,1/GP,active,,,,", "", "B,2/GP,active,31/02/2020,,,"), 4, "bad date in licensed_on"),
    (csv_bytes("A,1/GP,active,,,,", "B,2/GP,active,,yesterday,,"), 3, "bad date in status_changed_on"),
    (csv_bytes("A,1/GP,active,,,,", "B,2/GP,active,,,,", "C,1/gp ,active,,,,"), 4, "already on row 2"),
    (csv_bytes("A,1/GP,active,,,,", "B,2/GP,active,,,,,extra"), 3, "fields but the header has 7"),
    (csv_bytes("A,1/GP,active,,,,", 'B,2/GP,active,,,"unterminated,', "C,3/GP,active,,,,"), 3, "never closed"),
    (csv_bytes("A,1/GP,active,,,,", "B" * 300 + ",2/GP,active,,,,"), 3, "longer than 255"),
])
def test_parse_errors_name_the_row(data: bytes, row: int, error: str) -> None:
    with pytest.raises(CsvError) as info:
        parse_csv(data)
    assert info.value.row == row
    assert error in info.value.error
    assert str(info.value) == f"row {row}: {info.value.error}"


def test_not_utf8_names_the_row() -> None:
    data = csv_bytes("A,1/GP,active,,,,", "B,2/GP,active,,,,") + "\nCông ty,3/GP,active,,,,".encode("cp1258")
    with pytest.raises(CsvError) as info:
        parse_csv(data)
    assert info.value.row == 4 and "UTF-8" in info.value.error


def test_nul_bytes_name_the_row() -> None:
    data = csv_bytes("A,1/GP,active,,,,", "B,2/GP,act\x00ive,,,,")
    with pytest.raises(CsvError) as info:
        parse_csv(data)
    assert info.value.row == 3 and "NUL" in info.value.error


def test_too_many_rows() -> None:
    rows = [f"Company {i},{i}/GP,active,,,," for i in range(agencies.MAX_ROWS + 1)]
    with pytest.raises(CsvError) as info:
        parse_csv(csv_bytes(*rows))
    assert info.value.row == agencies.MAX_ROWS + 2 and "20000" in info.value.error
    assert len(parse_csv(csv_bytes(*rows[:-1]))) == agencies.MAX_ROWS


# ------------------------------------------------------------------ import

async def count(sessions) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count(Agency.id)))


async def test_dry_run_changes_nothing_and_apply_then_plan_is_empty(sessions, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(REGISTRY)
    plan = await agencies.import_file(sessions, path, dry_run=True)
    assert len(plan.as_dict()["added"]) == 8 and plan.as_dict()["changed"] == [] and plan.as_dict()["removed"] == []
    assert plan.as_dict()["added"][0] == {"licence_number": "101/DEMO-GP", "name": "Công ty TNHH Hoàng Long Quốc tế",
                                          "status": "active"}
    assert await count(sessions) == 0
    applied = await agencies.import_file(sessions, path, dry_run=False)
    assert applied.as_dict() == plan.as_dict()
    assert await count(sessions) == 8
    async with sessions() as session:
        assert (await agencies.plan_import(session, parse_csv(REGISTRY))).is_empty
        row = await session.scalar(select(Agency).where(Agency.licence_number == "101/DEMO-GP"))
        assert row.name_folded == "cong ty tnhh hoang long quoc te"


async def test_plan_reports_changes_and_removals(registry) -> None:
    new = parse_csv(csv_bytes(
        '"Công ty TNHH Hoàng Long Quốc tế",101/DEMO-GP,revoked,2019-03-01,2025-01-02,"Hà Nội",test',
        '"Công ty Cổ phần Nhân lực Sao Mai",102/DEMO-GP,active,2020-06-15,,,test',
        '"Công ty Mới",200/DEMO-GP,active,,,,test',
    ))
    async with registry() as session:
        plan = await agencies.plan_import(session, new)
    d = plan.as_dict()
    assert [a["licence_number"] for a in d["added"]] == ["200/DEMO-GP"]
    assert d["changed"] == [
        {"licence_number": "101/DEMO-GP", "name": "Công ty TNHH Hoàng Long Quốc tế",
         "changes": {"status": ["active", "revoked"], "status_changed_on": [None, "2025-01-02"]}},
        {"licence_number": "102/DEMO-GP", "name": "Công ty Cổ phần Nhân lực Sao Mai",
         "changes": {"name": ["Công ty Cổ phần Nhân lực Sao Mai Việt", "Công ty Cổ phần Nhân lực Sao Mai"]}},
    ]
    assert sorted(r["licence_number"] for r in d["removed"]) == [
        "103/DEMO-GP", "104/DEMO-GP", "105/DEMO-GP", "106/DEMO-GP", "107/DEMO-GP", "123/LĐTBXH-GP"]
    assert await count(registry) == 8  # planning wrote nothing
    async with registry() as session:
        await agencies.apply_import(session, new)
        assert (await agencies.plan_import(session, new)).is_empty
    assert await count(registry) == 3
    result = await find(registry, "hoang long")
    assert (result.kind, result.agency.status) == ("match", "revoked")


async def test_apply_rolls_back_on_error(registry, monkeypatch) -> None:
    new = parse_csv(csv_bytes("X,900/GP,active,,,,"))

    def boom(name: str) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(agencies, "fold_name", boom)
    async with registry() as session:
        with pytest.raises(RuntimeError):
            await agencies.apply_import(session, new)
    assert await count(registry) == 8


async def test_sample_file_imports_and_is_found(sessions) -> None:
    if not SAMPLE.exists():
        pytest.skip("content/agencies.sample.csv not written yet")
    records = parse_csv(SAMPLE.read_bytes())
    assert records
    async with sessions() as session:
        await agencies.apply_import(session, records)
        for record in records[:5]:
            by_licence = await agencies.lookup(session, record.licence_number)
            assert (by_licence.kind, by_licence.agency) == ("match", record)
            by_name = await agencies.lookup(session, record.name)
            assert by_name.agency == record and by_name.kind in ("match", "near")


# ------------------------------------------------------------------ look-up

async def test_empty_registry(sessions) -> None:
    assert (await find(sessions, "Hoàng Long")).kind == "empty"


@pytest.mark.parametrize("query,licence", [
    ("Hoàng Long", "101/DEMO-GP"),
    ("hoang long", "101/DEMO-GP"),  # without diacritics
    ("Công ty TNHH Hoàng Long Quốc Tế", "101/DEMO-GP"),  # the full name
    ("cty hoang lonng", "101/DEMO-GP"),  # a typo
    ("hoag lonng", "101/DEMO-GP"),  # two typos
    ("HOANGLONG", "101/DEMO-GP"),  # written together
    ("cong ty hoang long co uy tin ko a", "101/DEMO-GP"),  # in a sentence
    ("em 19 tuổi, cty hoàng long có uy tín không", "101/DEMO-GP"),  # a number that is not a licence
    ("sao mai viet", "102/DEMO-GP"),
    ("thanh dat xkld", "103/DEMO-GP"),
    ("Phú Quý", "104/DEMO-GP"),
    ("dau tu va phat trien nhan luc viet nam", "105/DEMO-GP"),  # a name made of generic words
    ("ABC", "107/DEMO-GP"),
    ("101/DEMO-GP", "101/DEMO-GP"),  # licence number
    ("kiểm tra giấy phép 101/demo-gp", "101/DEMO-GP"),
    ("123/LĐTBXH-GP", "123/LĐTBXH-GP"),
    ("123/LDTBXH-GP", "123/LĐTBXH-GP"),
    ("so 123 / ldtbxh - gp", "123/LĐTBXH-GP"),
    ("901", None),  # just a number that no licence has
    ("101", "101/DEMO-GP"),  # just the number
    ("giấy phép số 106", "106/DEMO-GP"),
    ("Công ty Hoàng Long, giấy phép 101/DEMO-GP", "101/DEMO-GP"),  # name and number agree
])
async def test_match(registry, query: str, licence: str | None) -> None:
    result = await find(registry, query)
    if licence is None:
        assert result.kind == "not_found"
        return
    assert result.kind == "match", result
    assert result.agency.licence_number == licence
    assert result.candidates == []


async def test_match_carries_status_and_dates(registry) -> None:
    result = await find(registry, "thanh dat")
    assert (result.agency.status, result.agency.status_changed_on) == ("revoked", date(2023, 5, 10))
    result = await find(registry, "phu quy")
    assert result.agency.status == "suspended"


@pytest.mark.parametrize("query,first", [
    ("sao mai", "102/DEMO-GP"),  # part of the name: confirm
    ("Hoàng Long Global", "101/DEMO-GP"),  # another word glued to the name: maybe another company
    ("minh phat nhat ban", "106/DEMO-GP"),
    ("101/DEMO", "101/DEMO-GP"),  # the number fits, the rest does not
    ("Công ty Sao Mai Việt, giấy phép 101/DEMO-GP", "101/DEMO-GP"),  # number and name disagree
    ("hoanq lon", "101/DEMO-GP"),  # too many typos for a match
])
async def test_near(registry, query: str, first: str) -> None:
    result = await find(registry, query)
    assert result.kind == "near", result
    assert result.candidates[0].licence_number == first
    assert result.agency == result.candidates[0]
    assert len(result.candidates) <= 3


async def test_number_and_name_disagree_lists_both(registry) -> None:
    result = await find(registry, "Công ty Sao Mai Việt, giấy phép 101/DEMO-GP")
    assert [c.licence_number for c in result.candidates][:2] == ["101/DEMO-GP", "102/DEMO-GP"]


async def test_two_companies_with_the_same_distinctive_name_are_not_a_match(registry) -> None:
    async with registry() as session:
        records = parse_csv(REGISTRY) + parse_csv(csv_bytes('"Công ty TNHH Hoàng Long",108/DEMO-GP,active,,,,'))
        await agencies.apply_import(session, records)
    result = await find(registry, "hoang long")
    assert result.kind == "near"
    assert {c.licence_number for c in result.candidates} == {"101/DEMO-GP", "108/DEMO-GP"}


@pytest.mark.parametrize("query", ["Ánh Dương", "cong ty TNHH Global Star", "xyz", "ABD", "Trường Thịnh Phát"])
async def test_not_found(registry, query: str) -> None:
    result = await find(registry, query)
    assert (result.kind, result.agency, result.candidates) == ("not_found", None, [])
    assert result.query == query


@pytest.mark.parametrize("text,searchable", [
    ("Hoàng Long", True), ("101/DEMO-GP", True), ("901", True), ("cty abc", True),
    ("công ty", False), ("kiểm tra giấy phép", False), ("cty xkld", False), ("", False), ("ok", False),
    ("có uy tín không", False), ("?", False), ("em muốn kiểm tra", False), ("cho mình hỏi", False),
    ("Minh Anh", True), ("Ánh Dương", True),  # names made of words that are also chat words
])
def test_is_searchable(text: str, searchable: bool) -> None:
    assert agencies.is_searchable(text) is searchable


def test_licence_key() -> None:
    assert agencies.licence_key(" 123 / LĐTBXH – GP ") == "123/LDTBXH-GP"


async def test_a_name_that_is_part_of_a_longer_listed_name_is_not_a_match(sessions) -> None:
    async with sessions() as session:
        await agencies.apply_import(session, parse_csv(csv_bytes(
            '"Công ty TNHH Cung ứng Lao động Hoa Sen",1/GP,active,,,,',
            '"Công ty CP Hợp tác Lao động Hoa Sen Việt",2/GP,suspended,,,,',
        )))
    short = await find(sessions, "hoa sen")
    assert short.kind == "near"  # the person may mean Hoa Sen Việt, whose licence is suspended
    assert [c.licence_number for c in short.candidates] == ["1/GP", "2/GP"]
    full = await find(sessions, "cty hoa sen viet")
    assert (full.kind, full.agency.licence_number) == ("match", "2/GP")
