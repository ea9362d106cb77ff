"""`python -m bot` commands: what they print, and non-zero exits with a clear message."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import PROJECT_ROOT


def run(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, text=True, capture_output=True,
                          env=env, cwd=PROJECT_ROOT, timeout=120)


def test_users_add_and_list(db_url):
    ok = run(db_url, "users", "add", "lan", "--role", "counselor", "--center", "hanoi", stdin="a-long-password\n")
    assert ok.returncode == 0 and "created counselor account 'lan'" in ok.stdout
    again = run(db_url, "users", "add", "lan", "--role", "counselor", stdin="a-long-password\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = run(db_url, "users", "add", "minh", "--role", "admin", stdin="short\n")
    assert short.returncode == 2 and "at least 10" in short.stderr
    bad_role = run(db_url, "users", "add", "minh", "--role", "boss", stdin="a-long-password\n")
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    listed = run(db_url, "users", "list")
    assert "lan\tcounselor\thanoi\tactive" in listed.stdout


def test_agencies_import_dry_run_then_apply(db_url, tmp_path):
    sample = PROJECT_ROOT / "content" / "agencies.sample.csv"
    dry = run(db_url, "agencies", "import", str(sample), "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would change:") and "0 changed" in dry.stdout
    applied = run(db_url, "agencies", "import", str(sample))
    assert applied.returncode == 0 and applied.stdout.startswith("imported:")
    broken = tmp_path / "broken.csv"
    broken.write_text("name,licence_number,status\nCông ty A,1/GP,bogus\n", encoding="utf-8")
    bad = run(db_url, "agencies", "import", str(broken))
    assert bad.returncode == 2 and "row 2" in bad.stderr and "nothing was changed" in bad.stderr
    missing = run(db_url, "agencies", "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_zalo_set_tokens(db_url):
    assert run(db_url, "zalo", "set-tokens", stdin="only-one\n").returncode == 2
    ok = run(db_url, "zalo", "set-tokens", stdin="new-access\nnew-refresh\n")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("args", [["nonsense"], ["users"], ["agencies", "import"]])
def test_bad_usage_exits_non_zero(db_url, args):
    assert run(db_url, *args).returncode != 0
