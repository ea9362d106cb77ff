"""The content store: seeding, editing with checks, versions, revert, export, and the bot's reads."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, func, select

from bot import content
from bot.content import ContentError, ContentStore
from bot.db.models import Response, ResponseVersion, SafetyPhrase
from bot.safety import Phrase

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_SEED = PROJECT_ROOT / "content" / "responses.yml"
REAL_PHRASES = PROJECT_ROOT / "content" / "safety_phrases.yml"

SEED = {
    "utter_greet": {"vi": "Chào bạn 👋\n\nMình có thể giúp gì?", "en": "Hi there 👋\n\nHow can I help?"},
    "utter_default": {"vi": "Xin lỗi, mình chưa hiểu.", "en": "Sorry, I didn't get that."},
    "utter_faq_hours": {"vi": "Giờ làm việc của các tổng đài:\n• Hà Nội: 24 giờ", "en": "Opening hours:\n• Hanoi: 24 hours"},
    "utter_agency_licensed": {"vi": "Kết quả: \"{name}\", giấy phép {licence}, ngày {date}.",
                              "en": "Result: \"{name}\", licence {licence}, issued {date}."},
    "utter_only_vi": {"vi": "Chỉ có tiếng Việt."},
}
PHRASES = [Phrase("bi nhot", "emergency", "held or locked in"),
           Phrase("giu ho chieu cua", "at_risk", "documents taken")]


@pytest.fixture(autouse=True)
async def empty_content_tables(sessions) -> None:
    """The shared fixture's database comes seeded from content/; these tests start empty."""
    async with sessions() as session:
        for table in (Response, ResponseVersion, SafetyPhrase):
            await session.execute(delete(table))
        await session.commit()


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "content" / "responses.yml"
    path.parent.mkdir()
    # written by hand in SEED's (unsorted) order and plain YAML style; export keeps the order
    path.write_text("# header comment\n\n" + yaml.safe_dump(SEED, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    (path.parent / "safety_phrases.yml").write_text(
        "# phrases\n" + content.dump_safety_phrases([(p.phrase, p.priority, p.reason) for p in PHRASES]),
        encoding="utf-8")
    return path


@pytest.fixture
async def seeded(sessions):
    async with sessions() as session:
        assert await content.seed_responses(session, SEED) == 9
    return sessions


async def update(sessions, key: str, lang: str, text: str, author: str = "lan") -> dict:
    async with sessions() as session:
        return await content.update_response(session, key, lang, text, author, seed=SEED)


# ------------------------------------------------------------------ seed file and seeding

def test_load_seed_reads_the_repository_file() -> None:
    if not REAL_SEED.exists():
        pytest.skip("content/responses.yml not written yet")
    seed = content.load_seed(REAL_SEED)
    assert "utter_greet" in seed and {"vi", "en"} <= set(seed["utter_greet"])
    assert all(isinstance(t, str) and t == t.strip() for texts in seed.values() for t in texts.values())


@pytest.mark.parametrize("body", ["- a\n- b\n", "utter_x: text\n", "utter_x:\n  vi: [1, 2]\n", "a: [\n"])
def test_load_seed_rejects_other_shapes(tmp_path: Path, body: str) -> None:
    path = tmp_path / "r.yml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ContentError):
        content.load_seed(path)


async def test_seeding_inserts_version_one_and_never_overwrites(sessions) -> None:
    async with sessions() as session:
        assert await content.seed_responses(session, SEED) == 9
        rows = (await session.scalars(select(Response))).all()
        assert {(r.key, r.lang, r.version, r.updated_by) for r in rows} >= {("utter_greet", "vi", 1, "seed")}
        assert await session.scalar(select(func.count(ResponseVersion.id))) == 9
    await update(sessions, "utter_greet", "vi", "Xin chào 🌿")
    changed = {k: dict(v) for k, v in SEED.items()}
    changed["utter_greet"]["vi"] = "Một lời chào khác"
    changed["utter_new"] = {"vi": "Mới", "en": "New"}
    async with sessions() as session:
        assert await content.seed_responses(session, changed) == 2  # only the new key
        assert await content.get_text(session, "utter_greet", "vi") == "Xin chào 🌿"
        assert await content.get_text(session, "utter_new", "en") == "New"
        assert await content.get_text(session, "utter_nothing", "vi") is None


# ------------------------------------------------------------------ listing

async def test_list_responses_filters_on_key_and_folded_text(seeded) -> None:
    async with seeded() as session:
        everything = await content.list_responses(session)
        assert [(r["key"], r["lang"]) for r in everything][:3] == [
            ("utter_agency_licensed", "en"), ("utter_agency_licensed", "vi"), ("utter_default", "en")]
        assert set(everything[0]) == {"key", "lang", "text", "version", "updated_by", "updated_at"}
        assert {r["key"] for r in await content.list_responses(session, "faq_hours")} == {"utter_faq_hours"}
        by_text = await content.list_responses(session, "gio lam viec")  # no diacritics finds "Giờ làm việc"
        assert [(r["key"], r["lang"]) for r in by_text] == [("utter_faq_hours", "vi")]
        assert await content.list_responses(session, "GIỜ LÀM") == by_text
        assert await content.list_responses(session, "zzz") == []


# ------------------------------------------------------------------ editing

async def test_update_writes_a_new_version_and_history(seeded) -> None:
    row = await update(seeded, "utter_greet", "en", "Hello!\n\nWhat can I do for you?", author="minh")
    assert row["version"] == 2 and row["updated_by"] == "minh" and row["text"].startswith("Hello!")
    async with seeded() as session:
        assert await content.get_text(session, "utter_greet", "en") == "Hello!\n\nWhat can I do for you?"
        versions = await content.history(session, "utter_greet", "en")
    assert [(v["version"], v["author"]) for v in versions] == [(2, "minh"), (1, "seed")]
    assert versions[1]["text"] == SEED["utter_greet"]["en"]


async def test_saving_the_same_text_changes_nothing(seeded) -> None:
    row = await update(seeded, "utter_greet", "en", "  " + SEED["utter_greet"]["en"] + "\n")
    assert row["version"] == 1
    async with seeded() as session:
        assert len(await content.history(session, "utter_greet", "en")) == 1


async def test_update_creates_a_missing_language(seeded) -> None:
    row = await update(seeded, "utter_only_vi", "en", "English too.")
    assert (row["lang"], row["version"]) == ("en", 1)


@pytest.mark.parametrize("key,lang,text,error", [
    ("utter_unknown", "vi", "Chào", "unknown answer"),
    ("utter_greet", "fr", "Bonjour", "unknown language"),
    ("utter_greet", "vi", "   \n ", "empty"),
    ("utter_greet", "vi", "a" * 2001, "2000"),
    ("utter_greet", "vi", "Nếu bạn bị buôn bán người, gọi ngay\nchi tiết", "first line"),
    ("utter_greet", "en", "Call the police now", "police"),
    ("utter_greet", "vi", "Chào {name}", "{name}"),
    ("utter_agency_licensed", "vi", "Kết quả: {name} {licence} {url}", "{url}"),
    ("utter_agency_licensed", "vi", "Kết quả: {name", "braces"),
    ("utter_agency_licensed", "vi", "Kết quả: {name!r}", "plain"),
    ("utter_agency_licensed", "vi", "Kết quả: {0}", "plain"),
])
async def test_update_refuses(seeded, key: str, lang: str, text: str, error: str) -> None:
    with pytest.raises(ContentError) as info:
        await update(seeded, key, lang, text)
    assert error in info.value.message
    async with seeded() as session:
        assert await session.scalar(select(func.count(ResponseVersion.id))) == 9  # nothing written


async def test_update_accepts_known_placeholders_and_literal_braces(seeded) -> None:
    row = await update(seeded, "utter_agency_licensed", "en", "Found {name} ({licence}), {date}. {{ok}}")
    assert row["version"] == 2


async def test_update_uses_the_configured_seed_by_default(seeded, seed_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("CONTENT_DIR", str(seed_file.parent))
    async with seeded() as session:
        row = await content.update_response(session, "utter_faq_hours", "vi", "Giờ mở cửa: 24/7", "lan")
        assert row["version"] == 2
        with pytest.raises(ContentError, match="unknown placeholder"):
            await content.update_response(session, "utter_faq_hours", "vi", "Giờ {hours}", "lan")


async def test_revert_makes_a_new_version_with_the_old_text(seeded) -> None:
    await update(seeded, "utter_default", "vi", "Mình chưa hiểu ý bạn.")
    await update(seeded, "utter_default", "vi", "Bạn nói lại giúp mình nhé.")
    async with seeded() as session:
        row = await content.revert_response(session, "utter_default", "vi", 1, "hoa")
        assert (row["version"], row["text"], row["updated_by"]) == (4, SEED["utter_default"]["vi"], "hoa")
        assert [v["version"] for v in await content.history(session, "utter_default", "vi")] == [4, 3, 2, 1]
        with pytest.raises(ContentError, match="no version 9"):
            await content.revert_response(session, "utter_default", "vi", 9, "hoa")


def test_diff() -> None:
    out = content.diff("line one\nline two\n", "line one\nline 2\n")
    assert out.splitlines()[:2] == ["--- before", "+++ after"]
    assert "-line two" in out and "+line 2" in out and " line one" in out
    assert content.diff("same", "same") == ""


# ------------------------------------------------------------------ rendering

def test_render() -> None:
    text = 'Công ty "{name}", giấy phép {licence}, ngày {date}. {{x}}'
    assert content.render(text, name="Sao Mai", licence="901/DEMO-GP", date="01/02/2020") == \
        'Công ty "Sao Mai", giấy phép 901/DEMO-GP, ngày 01/02/2020. {x}'
    assert content.render("Hi {name}, {other}", name="A") == "Hi A, {other}"  # missing stays visible
    assert content.render("Q: {query}", query="{name} {0} }{") == "Q: {name} {0} }{"  # values are literal
    assert content.render("broken {name", name="x") == "broken {name"
    assert content.render("none {x}", x=None) == "none {x}"


# ------------------------------------------------------------------ export

async def test_export_round_trip_keeps_order_and_comments(seeded, tmp_path: Path, seed_file: Path) -> None:
    await update(seeded, "utter_faq_hours", "vi", "Giờ làm việc:\n\n• Hà Nội: 24 giờ\n• Đà Nẵng: 7:00–19:00")
    async with seeded() as session:
        assert await content.export_responses(session, seed_file) == 9
    written = seed_file.read_text(encoding="utf-8")
    assert written.startswith("# header comment\n\n")
    assert "  vi: |-\n    Giờ làm việc:\n\n    • Hà Nội: 24 giờ\n    • Đà Nẵng: 7:00–19:00\n" in written
    assert "\\u" not in written  # UTF-8, not escapes
    again = content.load_seed(seed_file)
    assert again["utter_faq_hours"]["vi"].endswith("Đà Nẵng: 7:00–19:00")
    assert list(again) == list(SEED)  # the file's order
    assert again["utter_greet"] == SEED["utter_greet"]


async def test_export_of_an_unchanged_database_rewrites_the_repository_file_identically(sessions, tmp_path) -> None:
    if not REAL_SEED.exists() or not REAL_PHRASES.exists():
        pytest.skip("content seed files not written yet")
    target = tmp_path / "responses.yml"
    shutil.copy(REAL_SEED, target)
    shutil.copy(REAL_PHRASES, tmp_path / "safety_phrases.yml")
    from bot.safety import load_phrases

    async with sessions() as session:
        await content.seed_responses(session, content.load_seed(REAL_SEED))
        await content.seed_safety_phrases(session, load_phrases(REAL_PHRASES))
        await content.export_responses(session, target)
        await content.export_safety_phrases(session, tmp_path / "safety_phrases.yml")
    assert target.read_text(encoding="utf-8") == REAL_SEED.read_text(encoding="utf-8")
    assert (tmp_path / "safety_phrases.yml").read_text(encoding="utf-8") == REAL_PHRASES.read_text(encoding="utf-8")


async def test_export_adds_new_keys_at_the_end(seeded, seed_file: Path) -> None:
    async with seeded() as session:
        await content.seed_responses(session, {"utter_zzz": {"vi": "Mới", "en": "New"}})
        await content.export_responses(session, seed_file)
    assert list(content.load_seed(seed_file))[-1] == "utter_zzz"


# ------------------------------------------------------------------ safety phrases

async def test_seed_safety_phrases_only_into_an_empty_table(sessions, tmp_path: Path) -> None:
    async with sessions() as session:
        assert await content.seed_safety_phrases(session, PHRASES + [PHRASES[0]]) == 2
        assert await content.seed_safety_phrases(session, [Phrase("bi ban sang", "emergency", "sold")]) == 0
        listed = await content.list_safety_phrases(session)
        assert [p["phrase"] for p in listed] == ["bi nhot", "giu ho chieu cua"]
        assert await content.replace_safety_phrases(session, [Phrase("bi ban sang", "emergency", "sold")], "an") == 1
        assert [p["phrase"] for p in await content.list_safety_phrases(session)] == ["bi ban sang"]
        with pytest.raises(ValueError):
            await content.replace_safety_phrases(session, [Phrase("ban", "emergency", "x")], "an")
        assert [p["phrase"] for p in await content.list_safety_phrases(session)] == ["bi ban sang"]
        path = tmp_path / "phrases.yml"
        assert await content.export_safety_phrases(session, path) == 1
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == [
        {"phrase": "bi ban sang", "priority": "emergency", "reason": "sold"}]


# ------------------------------------------------------------------ ContentStore (the bot's reads)

async def test_store_reads_the_database_on_every_call(seeded, db_url: str, seed_file: Path) -> None:
    store = ContentStore(db_url, seed_file)
    try:
        assert await store.text("utter_greet", "en") == SEED["utter_greet"]["en"]
        await update(seeded, "utter_greet", "en", "Hello again")
        assert await store.text("utter_greet", "en") == "Hello again"  # no cache delays an edit
        assert await store.text("utter_agency_licensed", "vi", name="ABC", licence="1/GP", date="01/01/2020") == \
            'Kết quả: "ABC", giấy phép 1/GP, ngày 01/01/2020.'
    finally:
        await store.close()


async def test_store_fallbacks(sessions, db_url: str, seed_file: Path) -> None:
    async with sessions() as session:  # the database has only a Vietnamese text for utter_db_only
        await content.seed_responses(session, {"utter_db_only": {"vi": "Chỉ trong cơ sở dữ liệu"}})
    store = ContentStore(db_url, seed_file)
    try:
        assert await store.text("utter_greet", "en") == SEED["utter_greet"]["en"]  # not in the DB: seed
        assert await store.text("utter_only_vi", "en") == "Chỉ có tiếng Việt."  # seed vi
        assert await store.text("utter_db_only", "en") == "Chỉ trong cơ sở dữ liệu"  # DB vi
        assert await store.text("utter_missing", "en") == SEED["utter_default"]["en"]  # unknown key
        assert await store.text("utter_greet", "fr") == SEED["utter_greet"]["vi"]  # unknown language
    finally:
        await store.close()


@pytest.mark.parametrize("url", [
    "postgresql://nobody:secret@127.0.0.1:1/none",  # nothing listens
    "sqlite:///{tmp}/not-a-dir/x.db",  # the parent "directory" is a file
    "sqlite:///{tmp}/empty.db",  # a database without the tables
    "mysql://nope/none",  # a backend we do not support
])
async def test_store_answers_from_the_seed_when_the_database_fails(url: str, tmp_path: Path, seed_file: Path,
                                                                   caplog) -> None:
    (tmp_path / "not-a-dir").write_text("a file")
    store = ContentStore(url.format(tmp=tmp_path), seed_file, db_timeout=2.0)
    try:
        assert await store.text("utter_faq_hours", "en") == SEED["utter_faq_hours"]["en"]
        assert await store.text("utter_faq_hours", "vi") == SEED["utter_faq_hours"]["vi"]  # in the cool-down
        screen = await store.safety_screen()
        assert screen.check("em bi nhot o day").priority == "emergency"
    finally:
        await store.close()
    assert "answering from the seed files" in caplog.text
    assert "secret" not in caplog.text


async def test_store_retries_the_database_after_the_cool_down(seeded, db_url: str, seed_file: Path) -> None:
    store = ContentStore(db_url, seed_file, retry_after=0.05)
    try:
        await update(seeded, "utter_greet", "en", "From the database")
        store._down_until = float("inf")  # as after a failure
        assert await store.text("utter_greet", "en") == SEED["utter_greet"]["en"]
        store._down_until = 0.0
        assert await store.text("utter_greet", "en") == "From the database"
    finally:
        await store.close()


async def test_store_times_out_a_hanging_database(db_url: str, seed_file: Path, monkeypatch) -> None:
    store = ContentStore(db_url, seed_file, db_timeout=0.1)

    async def hang(session):
        await asyncio.sleep(10)

    try:
        assert await store._query("answers", hang) is None
        assert not store._db_ready()
        assert await store.text("utter_default", "vi") == SEED["utter_default"]["vi"]
    finally:
        await store.close()


async def test_safety_screen_from_the_database_cached_briefly(sessions, db_url: str, seed_file: Path) -> None:
    async with sessions() as session:
        await content.seed_safety_phrases(session, [Phrase("nhot em lai", "emergency", "locked in")])
    store = ContentStore(db_url, seed_file, safety_ttl=60)
    try:
        screen = await store.safety_screen()
        assert screen.check("ho nhot em lai").reason == "locked in"
        assert not screen.check("em bi nhot").escalate  # the file's phrases are not used
        async with sessions() as session:
            await content.replace_safety_phrases(session, [Phrase("bi ban sang", "emergency", "sold")], "an")
        assert await store.safety_screen() is screen  # cached
        store.safety_ttl = 0
        assert (await store.safety_screen()).check("em bi ban sang tq").reason == "sold"
    finally:
        await store.close()


async def test_an_unchanged_phrase_list_is_not_compiled_again(sessions, db_url: str, seed_file: Path) -> None:
    async with sessions() as session:
        await content.seed_safety_phrases(session, [Phrase("nhot em lai", "emergency", "locked in")])
    store = ContentStore(db_url, seed_file, safety_ttl=0)  # read the table on every call
    try:
        screen = await store.safety_screen()
        assert await store.safety_screen() is screen  # same rows: the compiled screen is kept
        async with sessions() as session:
            await content.replace_safety_phrases(session, [Phrase("nhot em lai", "emergency", "held")], "an")
        changed = await store.safety_screen()
        assert changed is not screen and changed.check("ho nhot em lai").reason == "held"
    finally:
        await store.close()


async def test_safety_screen_uses_the_file_when_the_table_is_empty(db_url: str, seed_file: Path) -> None:
    store = ContentStore(db_url, seed_file)
    try:
        assert (await store.safety_screen()).check("ho giu ho chieu cua em").priority == "at_risk"
    finally:
        await store.close()


async def test_safety_screen_skips_a_bad_phrase_in_the_database(sessions, db_url: str, seed_file: Path) -> None:
    async with sessions() as session:
        session.add(SafetyPhrase(phrase="ban", priority="emergency", reason="too broad"))
        session.add(SafetyPhrase(phrase="bi nhot", priority="emergency", reason="held"))
        await session.commit()
    store = ContentStore(db_url, seed_file)
    try:
        screen = await store.safety_screen()
        assert screen.check("em bi nhot").reason == "held"
        assert not screen.check("ban oi").escalate
    finally:
        await store.close()


def test_store_construction_does_no_io(tmp_path: Path) -> None:
    store = ContentStore("sqlite:///" + str(tmp_path / "sub" / "db.sqlite"), tmp_path / "missing.yml")
    assert store._engine is None and not (tmp_path / "sub").exists()


async def test_concurrent_seeding_keeps_one_copy(sessions, caplog) -> None:
    caplog.set_level("INFO", logger="bot.content")

    async def seed_once() -> int:
        async with sessions() as session:
            return await content.seed_responses(session, SEED)

    results = await asyncio.gather(seed_once(), seed_once())
    assert sorted(results) == [0, 9]
    assert "seeded concurrently" in caplog.text  # both read an empty table; the second lost the race
    async with sessions() as session:
        assert await session.scalar(select(func.count(Response.id))) == 9
