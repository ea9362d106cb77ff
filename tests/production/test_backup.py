"""deploy/backup.sh makes dumps a restore can use: both databases dumped, checksummed, old dumps
pruned; pg_restore into a fresh database gives back the same rows. Needs TEST_DATABASE_URL and
pg_dump / pg_restore on PATH."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.production.conftest import create_database, drop_database, pg_server_url
from tests.support.processes import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "deploy" / "backup.sh"
TABLES = ("content_response", "content_safety_phrase", "chat_conversation", "chat_message", "staff_account")


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
    finally:
        engine.dispose()


def test_backup_dumps_both_databases_and_a_restore_gives_the_data_back(pg_url: str, pg_empty_database: str,
                                                                        tmp_path: Path):
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are needed")
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO chat_conversation (channel, user_id, state, unreachable, summary, notices, "
                          "created_at, updated_at) VALUES ('zalo', 'backup-user', 'bot', false, '{}', '{}', now(), now())"))
    engine.dispose()
    rasa = create_engine(pg_empty_database)
    with rasa.begin() as conn:
        conn.execute(text("CREATE TABLE events (id serial primary key, sender_id varchar(255), data text)"))
        conn.execute(text("INSERT INTO events (sender_id, data) VALUES ('zalo-backup-user', '{}')"))
    rasa.dispose()

    old = tmp_path / "backups" / "20000101T000000Z"
    old.mkdir(parents=True)
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": pg_url, "TRACKER_DATABASE_URL": pg_empty_database,
           "BACKUP_DIR": str(tmp_path / "backups"), "BACKUP_KEEP_DAYS": "14"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = sorted(p for p in (tmp_path / "backups").iterdir())
    assert len(runs) == 1 and not old.exists(), "the 40-day-old backup was not pruned"
    dumps = {p.name for p in runs[0].iterdir()}
    assert dumps == {"hotline.dump", "hotline.dump.sha256", "hotline_rasa.dump", "hotline_rasa.dump.sha256"}
    assert oct(runs[0].stat().st_mode & 0o777) == "0o700"
    check = subprocess.run(["sha256sum", "-c", "hotline.dump.sha256"], cwd=runs[0], capture_output=True, text=True)
    assert check.returncode == 0

    server = pg_server_url()
    restored = create_database(server, "restored")
    try:
        result = subprocess.run(["pg_restore", "--no-owner", "--dbname", restored, str(runs[0] / "hotline.dump")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert counts(restored) == counts(pg_url)
        assert counts(restored)["chat_conversation"] >= 1
    finally:
        drop_database(server, restored)
