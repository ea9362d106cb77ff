"""The agency registry: a malformed CSV is refused naming the row (nothing changes); a dry run
shows what would change and changes nothing; an import applies; browsing; roles and CSRF."""
from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import func, select

from bot.db.models import Agency
from bot.settings import PROJECT_ROOT
from tests.admin.conftest import audit_actions

SAMPLE = (PROJECT_ROOT / "content" / "agencies.sample.csv").read_bytes()
MALFORMED = b'name;licence\n"unterminated,;;\n\x00\x01'


def with_status_changed(data: bytes) -> tuple[bytes, str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    rows[0]["status"] = "revoked" if rows[0]["status"] != "revoked" else "active"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(), rows[0]["licence_number"]


async def count(gw: Any) -> int:
    async with gw.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Agency))


async def test_malformed_csv_is_refused_naming_the_row(app_client, editor) -> None:
    for dry in ("?dry_run=1", ""):
        status, out = await editor.call("POST", f"/api/agencies/import{dry}", raw=MALFORMED)
        assert status == 400
        assert out["row"] == 3 and "NUL" in out["error"]
    status, out = await editor.call("POST", "/api/agencies/import", raw=SAMPLE.replace(b",active,", b",maybe,", 1))
    assert status == 400 and out["row"] == 2 and "unknown status 'maybe'" in out["error"]
    assert await count(app_client.gw) == 0


async def test_import_dry_run_and_apply(app_client, editor) -> None:
    status, out = await editor.call("POST", "/api/agencies/import?dry_run=1", raw=SAMPLE)
    assert status == 200 and out["dry_run"] is True
    assert len(out["added"]) == 25 and out["changed"] == [] and out["removed"] == []
    assert await count(app_client.gw) == 0  # a dry run changes nothing

    status, out = await editor.call("POST", "/api/agencies/import", raw=SAMPLE)
    assert status == 200 and len(out["added"]) == 25 and out["dry_run"] is False
    assert await count(app_client.gw) == 25

    changed, licence = with_status_changed(SAMPLE)
    status, out = await editor.call("POST", "/api/agencies/import?dry_run=1", raw=changed)
    assert status == 200 and out["added"] == [] and out["removed"] == []
    assert len(out["changed"]) == 1 and out["changed"][0]["licence_number"] == licence
    assert out["changed"][0]["changes"]["status"][0] == "active"
    status, out = await editor.call("GET", f"/api/agencies?q={licence}")
    assert out["agencies"][0]["status"] == "active"  # still, after the dry run

    status, out = await editor.call("POST", "/api/agencies/import", raw=changed)
    assert status == 200 and len(out["changed"]) == 1
    status, out = await editor.call("GET", f"/api/agencies?q={licence}")
    assert out["agencies"][0]["status"] == "revoked"
    assert [a for a, _ in await audit_actions(app_client.gw)].count("agencies_imported") == 2


async def test_browse_search_is_diacritics_insensitive(app_client, editor, counselor) -> None:
    await editor.call("POST", "/api/agencies/import", raw=SAMPLE)
    status, out = await counselor.call("GET", "/api/agencies?q=hoa sen")  # counselors may look companies up
    assert status == 200 and out["total"] == 25
    names = [a["name"] for a in out["agencies"]]
    assert names and all("Hoa Sen" in n for n in names)
    status, out = await editor.call("GET", "/api/agencies")
    assert out["matched"] == 25 and len(out["agencies"]) == 25


async def test_only_content_roles_import_and_only_with_csrf(app_client, editor, counselor) -> None:
    status, _ = await counselor.call("POST", "/api/agencies/import", raw=SAMPLE)
    assert status == 403
    status, _ = await editor.call("POST", "/api/agencies/import", raw=SAMPLE, csrf=False)
    assert status == 403
    assert await count(app_client.gw) == 0
