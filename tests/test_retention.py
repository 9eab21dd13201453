"""A warning before history is lost (issue 14.4): Claude Code deletes transcripts after cleanupPeriodDays (default 30);
`--check` says when, and what is at risk, and an import that could not read everything says what goes soon.

Real chDB, the real pinned ccusage; `crontab` is a stand-in on PATH that only lists (never the user's crontab),
`cron` a process of that name.
"""

from __future__ import annotations

import datetime as dt
import json
import os

from conftest import hourly_import, run_cli
from transcripts import generate

import ccusage_importer as ci


def line(stdout: str, label: str) -> str:
    found = [text for text in stdout.splitlines() if text[:1] in "✅⚠❌" and f" {label}: " in text]
    assert len(found) == 1, stdout
    return found[0]


def test_check_names_the_setting_the_oldest_transcript_and_its_deletion_day(tmp_path, make_env):
    claude = tmp_path / "claude"
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    generate(claude, seed=41, days=10, sessions=6, end=end)
    (claude / "settings.json").write_text(json.dumps({"cleanupPeriodDays": 5}))
    env = hourly_import(make_env(claude), tmp_path / "bin", installed=False)
    done = run_cli(env, "--check")
    oldest = dt.datetime.fromtimestamp(min(p.stat().st_mtime for p in claude.rglob("*.jsonl")), dt.UTC)
    retention = line(done.stdout, "history retention")
    assert retention.startswith("⚠️ history retention: Claude Code keeps transcripts 5 days (cleanupPeriodDays, "
                                f"{claude / 'settings.json'}); the oldest is from {oldest:%Y-%m-%d} and goes around "
                                f"{oldest + dt.timedelta(days=5):%Y-%m-%d}"), retention
    assert "5 days leave little time to import" in retention and "no hourly import in this user's crontab" in retention
    assert "raise cleanupPeriodDays" in done.stdout and "./setup_cronjob.sh" in done.stdout


def test_check_warns_when_the_last_import_is_older_than_the_retention_allows(tmp_path, make_env, cron_daemon):
    claude = tmp_path / "claude"
    generate(claude, seed=42, days=3, sessions=3)
    env = hourly_import(make_env(claude), tmp_path / "bin", last_start=ci.now())
    assert run_cli(env).returncode == 0
    healthy = run_cli(env, "--check")
    assert line(healthy.stdout, "history retention").startswith("✅ history retention: Claude Code keeps "
                                                                "transcripts 30 days (cleanupPeriodDays, Claude Code's "
                                                                "default)")
    assert line(healthy.stdout, "last import").startswith("✅ last import: machine laptop, ")
    (claude / "settings.json").write_text(json.dumps({"cleanupPeriodDays": 2}))  # retention - 2 days = now
    stale = line(run_cli(env, "--check").stdout, "last import")
    assert stale.startswith("⚠️ last import: machine laptop, ") and "deletes transcripts after 2 days" in stale


FAILING_SESSION = """\
#!/bin/sh
case "$*" in *"claude session"*) echo "Error: disk on fire" >&2; exit 1 ;; esac
exec "$(cat "$(dirname "$0")/real")" "$@"
"""


def test_an_incomplete_import_says_what_claude_code_deletes_soon(tmp_path, make_env, ccusage_bin_dir):
    claude = tmp_path / "claude"
    old_end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=29)
    generate(claude, seed=43, days=2, sessions=3, end=old_end)  # last written 29 days ago: deleted at 30
    env = make_env(claude)
    assert "will be deleted by Claude Code" not in run_cli(env).stdout  # imported whole: nothing at risk
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "ccusage").write_text(FAILING_SESSION)
    (fake / "ccusage").chmod(0o755)
    (fake / "real").write_text(str(ccusage_bin_dir / "ccusage"))
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    done = run_cli(env, "--force")
    files = len(list(claude.rglob("*.jsonl")))
    assert done.returncode == 1 and "Status: partial" in done.stdout
    assert (f"⚠️ {files} transcripts not fully imported by this run will be deleted by Claude Code within 2 days "
            "(cleanupPeriodDays 30)") in done.stdout, done.stdout


def test_retention_setting_is_read_beside_projects(tmp_path):
    (tmp_path / "a" / "projects").mkdir(parents=True)
    (tmp_path / "b" / "projects").mkdir(parents=True)
    (tmp_path / "b" / "settings.json").write_text('{"cleanupPeriodDays": 90}')
    (tmp_path / "a" / "settings.json").write_text("not json")
    assert ci.claude_retention([tmp_path / "a" / "projects", tmp_path / "b" / "projects"]) == (
        90, str(tmp_path / "b" / "settings.json"))
    assert ci.claude_retention([tmp_path / "a" / "projects"]) == (30, "Claude Code's default")
