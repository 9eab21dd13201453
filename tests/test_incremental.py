"""Hourly imports that read only what changed (issue 13): the window of transcripts a run hands ccusage, and that a
run reading it stores exactly what a run reading everything stores. tests/test_rolling.py holds the long version
(100 simulated days with Claude Code's cleanup); these are the short, named cases.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from conftest import run_cli, sql
from transcripts import append_activity, generate

import ccusage_importer as ci

END = dt.datetime(2026, 11, 21, 20, 7, tzinfo=dt.UTC)
SNAPSHOT = {
    "days": "SELECT agent, date, total_tokens, total_cost FROM ccusage_usage_daily FINAL ORDER BY ALL",
    "project_days": "SELECT date, project_key, total_tokens FROM ccusage_usage_projects_daily FINAL ORDER BY ALL",
    "months": "SELECT month, total_tokens, round(total_cost, 9) AS cost FROM ccusage_usage_monthly FINAL ORDER BY ALL",
    "sessions": "SELECT project_key, session_key, total_tokens, first_activity, last_activity "
                "FROM ccusage_usage_sessions FINAL WHERE total_tokens > 0 ORDER BY ALL",
    "blocks": "SELECT start_time, total_tokens, entries FROM ccusage_usage_blocks FINAL ORDER BY ALL",
    "models": "SELECT record_type, record_key, model_name, total_tokens FROM ccusage_model_breakdowns FINAL "
              "WHERE total_tokens > 0 ORDER BY ALL",
}


def snapshot(env: dict) -> dict[str, list[dict]]:
    return {name: sql(env, query) for name, query in SNAPSHOT.items()}


def read_line(stdout: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(("Read ", "No transcript changed"))]
    assert len(lines) == 1, stdout
    return lines[0]


def test_a_new_hour_reads_its_window_and_stores_what_reading_everything_stores(tmp_path, make_env):
    claude = tmp_path / "claude"
    generate(claude, seed=61, days=20, sessions=40, end=END)
    env = make_env(claude, db=tmp_path / "incremental" / "chdb", CCUSAGE_HASH_KEY="one key for both stores")
    first = run_cli(env)
    assert first.returncode == 0 and read_line(first.stdout).startswith("Read all ")
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=62)
    hour = run_cli(env)
    assert hour.returncode == 0, hour.stdout + hour.stderr
    window = re.fullmatch(r"Read (\S+)…(\S+) from (\d+) of (\d+) transcripts\.", read_line(hour.stdout))
    assert window, read_line(hour.stdout)
    assert int(window.group(3)) < int(window.group(4)) / 2  # a fraction of the transcripts
    continued = max((p for p in claude.rglob("*.jsonl") if "subagents" not in p.parts),
                    key=lambda p: p.stat().st_mtime)  # append_activity went on with the newest session's file
    assert window.group(1) == f"{ci.first_line_time(str(continued)):%Y-%m-%d}"  # the window starts at its first line

    reference = make_env(claude, db=tmp_path / "full" / "chdb", CCUSAGE_HASH_KEY="one key for both stores")
    assert run_cli(reference).returncode == 0  # one import of everything, into a store of its own
    assert snapshot(env) == snapshot(reference)

    forced = run_cli(env, "--force")
    assert read_line(forced.stdout).startswith("Read all ")
    assert sum(sql(env, "SELECT rows_written FROM ccusage_import_runs ORDER BY started_at")[-1]
               ["rows_written"].values()) == 0  # the window had written exactly what a full import writes


def test_nothing_changed_in_claude_code_runs_none_of_its_reports(tmp_path, make_env):
    from agent_logs import ENV_VARS, append_codex_activity, generate_codex

    generate(tmp_path / "claude", seed=63, days=4, sessions=6, end=END)
    generate_codex(tmp_path / "codex", seed=64, days=4, end=END)
    env = make_env(tmp_path / "claude", **{ENV_VARS["codex"]: str(tmp_path / "codex")})
    assert run_cli(env).returncode == 0
    append_codex_activity(tmp_path / "codex", start=END + dt.timedelta(hours=1))
    done = run_cli(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_line(done.stdout) == f"No transcript changed (of {len(list((tmp_path / 'claude').rglob('*.jsonl')))})."
    reports = sql(env, "SELECT report_rows FROM ccusage_import_runs ORDER BY started_at")[-1]["report_rows"]
    assert set(reports) == {"agents"}


def test_other_settings_read_everything_again(tmp_path, make_env):
    generate(tmp_path / "claude", seed=65, days=4, sessions=6, end=END)
    env = make_env(tmp_path / "claude")
    assert run_cli(env).returncode == 0
    append_activity(tmp_path / "claude", start=END + dt.timedelta(hours=1), seed=66)
    done = run_cli(env, "--no-hash-projects")  # other stored names: every row again
    assert read_line(done.stdout).startswith("Read all ")


def write(path: Path, lines: list[tuple[str, int]], session: str) -> None:
    """A transcript of assistant lines (timestamp, message number) whose file time is its last line's."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({
        "type": "assistant", "sessionId": session, "timestamp": ts, "version": "2.0.31", "requestId": f"req_{n}",
        "message": {"id": f"msg_{n}", "model": "claude-sonnet-4-5-20250929",
                    "usage": {"input_tokens": n, "output_tokens": 10 * n}}}) + "\n" for ts, n in lines))
    last = dt.datetime.fromisoformat(lines[-1][0].replace("Z", "+00:00")).timestamp()
    os.utime(path, (last, last))


@pytest.mark.parametrize(("replayed", "since", "whole"), [
    ([("2026-11-20T10:00:00Z", 3)], "2026-11-10", {"long", "resumed"}),
    ([], "2026-11-15", {"resumed"}),
])
def test_the_window_reaches_back_to_the_first_line_of_every_session_that_shares_a_response(
        replayed, since, whole, tmp_path):
    """A new file that replays a response of `long` (a resumed session) may take it from `long`, whose row must then
    be compared whole: the window reaches back to its first line. One that shares none leaves `long` as stored."""
    projects = tmp_path / "claude" / "projects"
    write(projects / "p" / "old.jsonl", [("2026-11-01T10:00:00Z", 1)], "old")
    write(projects / "p" / "long.jsonl", [("2026-11-10T10:00:00Z", 2), ("2026-11-20T10:00:00Z", 3)], "long")
    write(projects / "p" / "resumed.jsonl", [("2026-11-15T09:00:00Z", 4), *replayed, ("2026-11-21T09:00:00Z", 5)],
          "resumed")
    scan = ci.scan_transcripts([projects])
    previous = {path: [t.size, t.mtime_ns] for path, t in scan.transcripts.items()
                if not path.endswith("resumed.jsonl")}
    window = ci.read_window(scan, previous, "UTC", ci.first_line_time)
    assert window is not None and str(window.since) == since
    assert sorted(Path(p).name for p in window.files) == ["long.jsonl", "resumed.jsonl"]  # long runs past Nov 15
    assert window.sessions == frozenset(("p", name) for name in whole)
    assert ci.read_window(scan, {p: [t.size, t.mtime_ns] for p, t in scan.transcripts.items()}, "UTC",
                          ci.first_line_time) is None


def test_moments_become_nanoseconds_exactly_in_any_zone():
    """File times are compared in nanoseconds (the window, late lines, the marks of gone transcripts)."""
    moment = dt.datetime(2026, 12, 6, 23, 59, 59, 999_123, tzinfo=dt.UTC)
    assert ci._ns(moment) == 1_796_601_599_999_123_000
    assert ci._ns(moment.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))) == ci._ns(moment)
    assert ci._ns(ci.EPOCH) == 0


def test_the_scan_finds_what_os_walk_finds_in_the_same_order(tmp_path):
    """scan_transcripts walks the folders itself (os.walk's lstat of each folder cost 7,700 system calls at 1M
    lines): every transcript and sub-agent file in os.walk's order, a linked transcript too, nothing below a
    symbolic link to a folder, no other file."""
    projects = tmp_path / "claude" / "projects"
    for path in ("p/b.jsonl", "p/a.jsonl", "p/s1/subagents/agent-1.jsonl", "p/s1/subagents/notes.txt",
                 "q/c.jsonl", "q/deeper/more/d.jsonl", "elsewhere/e.jsonl"):
        write(projects / path if not path.startswith("elsewhere") else tmp_path / path, [("2026-11-10T12:00:00Z", 1)],
              Path(path).stem)
    (projects / "q" / "linked.jsonl").symlink_to(tmp_path / "elsewhere" / "e.jsonl")
    (projects / "p" / "folder-link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    walked = [os.path.join(folder, name) for folder, _, names in os.walk(projects) for name in names
              if name.endswith(".jsonl")]
    scan = ci.scan_transcripts([projects])
    assert list(scan.transcripts) == walked and len(walked) == 6
    assert scan.transcripts[str(projects / "p" / "s1" / "subagents" / "agent-1.jsonl")].session == ("p", "s1")
    assert not any("folder-link" in path for path in scan.transcripts)


@pytest.mark.parametrize(("zone", "since"), [("UTC", "2026-11-10"), ("Asia/Tokyo", "2026-11-10"),
                                             ("America/Los_Angeles", "2026-11-10")])
def test_the_window_starts_at_midnight_in_the_report_zone(zone, since, tmp_path):
    projects = tmp_path / "claude" / "projects"
    write(projects / "p" / "a.jsonl", [("2026-11-10T12:00:00Z", 1)], "a")
    scan = ci.scan_transcripts([projects])
    window = ci.read_window(scan, {}, zone, ci.first_line_time)
    assert window is not None and str(window.since) == since
    assert window.start == dt.datetime.combine(window.since, dt.time(), ci.zoneinfo.ZoneInfo(zone))
