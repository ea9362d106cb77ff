"""The recruitment-agency registry: browse (``GET /api/agencies?q=``) and import the official list
(``POST /api/agencies/import[?dry_run=1]``, the CSV as the raw body).

A dry run says what would be added, changed and removed and changes nothing; without it the
import is applied in one transaction. A malformed file is refused with 400 ``{row, error}``
naming the line, and nothing changes. Browsing is open to all staff (counselors check agencies
during calls); importing is for content editors and admins.
"""
from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import func, select

from bot import agencies
from bot.admin.state import error
from bot.auth import ALL_STAFF, CONTENT, audit, requires
from bot.db.models import Agency
from bot.keys import gateway_key
from bot.text import fold

logger = logging.getLogger(__name__)

MAX_CSV_BYTES = 8 * 1024 * 1024
MAX_LISTED = 200


async def browse(request: web.Request) -> web.Response:
    q = (request.query.get("q") or "").strip()
    status = request.query.get("status")
    async with request.app[gateway_key].sessions() as session:
        total = await session.scalar(select(func.count()).select_from(Agency)) or 0
        rows = (await session.scalars(select(Agency).order_by(Agency.name))).all()
    if status in agencies.STATUSES:
        rows = [r for r in rows if r.status == status]
    if q:
        needle, licence = fold(q, teencode=False), agencies.licence_key(q)
        rows = [r for r in rows if needle in (r.name_folded or "") or needle in fold(r.name, teencode=False)
                or licence in agencies.licence_key(r.licence_number)]
    shown = [agencies.AgencyRecord.from_row(r).as_dict() for r in rows[:MAX_LISTED]]
    return web.json_response({"agencies": shown, "matched": len(rows), "total": total,
                              "truncated": len(rows) > MAX_LISTED})


async def _read_body(request: web.Request) -> bytes | None:
    """The raw CSV (a larger limit than JSON bodies: the official list can be long)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_CSV_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def import_csv(request: web.Request) -> web.Response:
    dry_run = request.query.get("dry_run", "").lower() in ("1", "true", "yes")
    data = await _read_body(request)
    if data is None:
        return error(f"the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB", 413)
    try:
        records = agencies.parse_csv(data)
    except agencies.CsvError as exc:
        return web.json_response({"row": exc.row, "error": exc.error,
                                  "message": f"row {exc.row}: {exc.error}; nothing was changed"}, status=400)
    account = request["account"]
    async with request.app[gateway_key].sessions() as session:
        if dry_run:
            plan = await agencies.plan_import(session, records)
        else:
            plan = await agencies.apply_import(session, records)
            await audit(session, account, "agencies_imported", None,
                        {"rows": len(records), "added": len(plan.added), "changed": len(plan.changed),
                         "removed": len(plan.removed)})
            await session.commit()
    return web.json_response({**plan.as_dict(), "dry_run": dry_run, "rows": len(records)})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/agencies", requires(*ALL_STAFF)(browse), name="admin_agencies")
    app.router.add_post("/api/agencies/import", requires(*CONTENT)(import_csv), name="admin_agencies_import")
