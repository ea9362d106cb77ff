"""The agency check: asking, validating the form's slot, and every kind of registry answer."""
from __future__ import annotations

from pathlib import Path

import pytest
from rasa_sdk.events import SlotSet
from sqlalchemy import delete

from actions.agency import ActionAskAgencyQuery, ActionCheckAgency, ValidateAgencyForm, format_date
from bot import agencies
from bot.db.models import Agency
from tests.actions.conftest import load_tracker, make_tracker, render

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT_ROOT / "content" / "agencies.sample.csv"

CSV = """\
name,licence_number,status,licensed_on,status_changed_on,address,source
"Công ty TNHH Hoàng Long Quốc tế",101/DEMO-GP,active,2019-03-01,,"Hà Nội",test
"Công ty Cổ phần Nhân lực Sao Mai Việt",102/DEMO-GP,đang hoạt động,15/06/2020,,,test
"Công ty CP Xuất khẩu lao động Thành Đạt",103/DEMO-GP,thu hồi,2015-01-01,10/05/2023,,test
"Công ty TNHH MTV Phú Quý",104/DEMO-GP,tạm đình chỉ,2018-01-01,2024-02-01,,test
""".encode("utf-8")


@pytest.fixture(autouse=True)
async def empty_registry(sessions) -> None:
    """Whatever the shared database fixture seeds, these tests start from an empty registry."""
    async with sessions() as session:
        await session.execute(delete(Agency))
        await session.commit()


@pytest.fixture
async def registry(runtime, sessions):
    async with sessions() as session:
        await agencies.apply_import(session, agencies.parse_csv(CSV))
    return runtime


def agency_tracker(query: str, lang: str = "vi"):
    return make_tracker(query, "check_agency", metadata={"language": lang}, slots={"agency_query": query},
                        active_loop=None)


async def check(dispatcher, domain, query: str, lang: str = "vi") -> list:
    events = await ActionCheckAgency().run(dispatcher, agency_tracker(query, lang), domain)
    assert events == [SlotSet("agency_query", None), SlotSet("language", lang)]
    return [m["text"] for m in dispatcher.messages]


@pytest.mark.parametrize("query,key,values", [
    ("hoang long", "utter_agency_licensed",
     {"name": "Công ty TNHH Hoàng Long Quốc tế", "licence": "101/DEMO-GP", "date": "01/03/2019"}),
    ("101/DEMO-GP", "utter_agency_licensed",
     {"name": "Công ty TNHH Hoàng Long Quốc tế", "licence": "101/DEMO-GP", "date": "01/03/2019"}),
    ("cty thanh dat co uy tin ko", "utter_agency_revoked",
     {"name": "Công ty CP Xuất khẩu lao động Thành Đạt", "licence": "103/DEMO-GP", "date": "10/05/2023"}),
    ("Phú Quý", "utter_agency_suspended",
     {"name": "Công ty TNHH MTV Phú Quý", "licence": "104/DEMO-GP", "date": "01/02/2024"}),
    ("sao mai", "utter_agency_near_matches",
     {"matches": "• Công ty Cổ phần Nhân lực Sao Mai Việt (giấy phép 102/DEMO-GP)"}),
    ("Công ty Ánh Dương", "utter_agency_not_found", {"query": "Công ty Ánh Dương"}),
])
async def test_check(registry, seed, dispatcher, domain, query, key, values) -> None:
    sent = await check(dispatcher, domain, query)
    assert sent == [render(seed, key, "vi", **values), render(seed, "utter_agency_warning_signs", "vi")]
    assert "{" not in sent[0]  # every placeholder filled


async def test_check_in_english(registry, seed, dispatcher, domain) -> None:
    sent = await check(dispatcher, domain, "sao mai", lang="en")
    assert sent == [render(seed, "utter_agency_near_matches", "en",
                           matches="• Công ty Cổ phần Nhân lực Sao Mai Việt (licence 102/DEMO-GP)"),
                    render(seed, "utter_agency_warning_signs", "en")]


async def test_unknown_dates_are_said_so(registry, sessions, seed, dispatcher, domain) -> None:
    async with sessions() as session:
        await agencies.apply_import(session, agencies.parse_csv(CSV + "Công ty Vô Danh,300/GP,thu hồi,,,,\n".encode()))
    sent = await check(dispatcher, domain, "300/GP")
    assert sent[0] == render(seed, "utter_agency_revoked", "vi", name="Công ty Vô Danh", licence="300/GP",
                             date="không rõ")


async def test_long_query_is_shortened_in_the_answer(registry, seed, dispatcher, domain) -> None:
    query = "công ty " + "rất dài " * 30
    sent = await check(dispatcher, domain, query)
    assert sent[0].startswith(render(seed, "utter_agency_not_found", "vi", query="X").split("X")[0])
    assert query not in sent[0] and "…" in sent[0]


async def test_empty_registry(runtime, seed, dispatcher, domain) -> None:
    sent = await check(dispatcher, domain, "hoang long")
    assert sent == [render(seed, "utter_agency_registry_empty", "vi"), render(seed, "utter_agency_warning_signs", "vi")]


async def test_registry_unreachable(broken_runtime, seed, dispatcher, domain) -> None:
    sent = await check(dispatcher, domain, "hoang long", lang="en")
    assert sent == [render(seed, "utter_agency_registry_empty", "en"), render(seed, "utter_agency_warning_signs", "en")]


async def test_query_from_the_message_when_the_slot_is_empty(registry, seed, dispatcher, domain) -> None:
    tracker = make_tracker("101/DEMO-GP", "check_agency", metadata={"language": "vi"})
    await ActionCheckAgency().run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["text"].startswith(render(seed, "utter_agency_licensed", "vi").split("\n")[0])


async def test_sample_registry(runtime, sessions, seed, dispatcher, domain) -> None:
    if not SAMPLE.exists():
        pytest.skip("content/agencies.sample.csv not written yet")
    records = agencies.parse_csv(SAMPLE.read_bytes())
    async with sessions() as session:
        await agencies.apply_import(session, records)
    record = records[0]
    sent = await check(dispatcher, domain, record.licence_number)
    key = {"active": "utter_agency_licensed", "suspended": "utter_agency_suspended",
           "revoked": "utter_agency_revoked"}[record.status]
    when = record.licensed_on if record.status == "active" else record.status_changed_on
    assert sent == [render(seed, key, "vi", name=record.name, licence=record.licence_number,
                           date=format_date(when, "vi")),
                    render(seed, "utter_agency_warning_signs", "vi")]


async def test_ask(runtime, seed, dispatcher, domain) -> None:
    events = await ActionAskAgencyQuery().run(dispatcher, make_tracker("check a company", "check_agency"), domain)
    assert events == [SlotSet("language", "en")]
    assert [m["text"] for m in dispatcher.messages] == [render(seed, "utter_ask_agency", "en")]


@pytest.mark.parametrize("text,kept", [
    ("Công ty Hoàng Long", "Công ty Hoàng Long"),
    ("901/DEMO-GP", "901/DEMO-GP"),
    ("  hoang   long  ", "hoang long"),
    ("kiểm tra công ty", None),
    ("cty xkld", None),
    ("có uy tín không", None),
    ("?", None),
])
async def test_validate_agency_query(dispatcher, domain, text: str, kept: str | None) -> None:
    tracker = load_tracker("agency_form", replace=text)
    events = await ValidateAgencyForm().run(dispatcher, tracker, domain)
    assert events == [SlotSet("agency_query", kept)]
    assert dispatcher.messages == []


def test_a_match_with_a_status_outside_the_three_is_only_offered_to_confirm() -> None:
    from actions.agency import answer_for

    odd = agencies.AgencyRecord("Công ty X", "5/GP", "pending")
    key, values = answer_for(agencies.LookupResult("match", "x", odd), "vi")
    assert (key, values) == ("utter_agency_near_matches", {"matches": "• Công ty X (giấy phép 5/GP)"})
    assert answer_for(None, "en") == ("utter_agency_registry_empty", {})
