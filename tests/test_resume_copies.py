"""A resumed session's partial copy of a response must not count twice once the original's file is deleted.

Claude Code streams one API response as several lines with the same message id and request id; ccusage 20.0.24
keeps the copy with the largest token total (the first by path on a tie) and credits it to that copy's file. A
resumed transcript that replays such a response only up to a partial copy loses it to the original while both
files exist. Once Claude Code deletes the original, ccusage credits the partial copy to the resumed session, whose
reported total grows although nothing was written to it, while the stored original still counts the full response.

Every file ever written is also kept in a mirror folder: the pinned ccusage on the mirror is the truth the store
must equal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest
from conftest import run_ccusage, run_cli, sql

import ccusage_importer as ci

PROJECT = "-home-me-proj"
USAGE = {"cache_creation_input_tokens": 1000, "cache_read_input_tokens": 5000}
# Every stored row the tests compare, in one query (each read opens the store): kind, key, tokens.
STORED = """
SELECT 'session' AS kind, session_id AS k, concat(project_key, '/', session_key) AS record_key, total_tokens AS t
FROM ccusage_usage_sessions FINAL WHERE total_tokens > 0
UNION ALL SELECT 'model', '', record_key, sum(total_tokens) FROM ccusage_model_breakdowns FINAL
WHERE record_type = 'session' GROUP BY record_key HAVING sum(total_tokens) > 0
UNION ALL SELECT 'day', toString(date), '', total_tokens FROM ccusage_usage_daily FINAL
UNION ALL SELECT 'month', '', '', sum(total_tokens) FROM ccusage_usage_monthly FINAL
UNION ALL SELECT 'block', '', '', sum(total_tokens) FROM ccusage_usage_blocks FINAL
"""


def line(session: str, n: int, at: dt.datetime, output: int) -> str:
    """One assistant line of response `n` (message msg_n, request req_n) with `output` output tokens."""
    return json.dumps({
        "type": "assistant", "sessionId": session, "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "version": "2.0.31", "requestId": f"req_{n}",
        "message": {"id": f"msg_{n}", "model": "claude-sonnet-4-5-20250929",
                    "usage": {"input_tokens": 10 + n, "output_tokens": output, **USAGE}}}, separators=(",", ":"))


def write(folders: tuple[Path, ...], session: str, lines: list[str], mtime: dt.datetime) -> None:
    """Write (or rewrite) one transcript in the live Claude folder and its mirror, modified at its last line."""
    for folder in folders:
        path = folder / "projects" / PROJECT / f"{session}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(text + "\n" for text in lines))
        os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def tokens(n: int, output: int) -> int:
    return 10 + n + output + USAGE["cache_creation_input_tokens"] + USAGE["cache_read_input_tokens"]


def import_ok(env: dict) -> str:
    done = run_cli(env, "--no-hash-projects")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    return done.stdout


def ccusage_truth(bin_dir: Path, mirror: Path) -> tuple[dict[str, int], dict[str, int]]:
    """ccusage on every file ever written: tokens per session, and per day."""
    sessions = run_ccusage(bin_dir, mirror, "session", "--timezone", "UTC")["sessions"]
    days = run_ccusage(bin_dir, mirror, "daily", "--timezone", "UTC")["daily"]
    return ({s["sessionId"]: s["totalTokens"] for s in sessions if s["totalTokens"]},
            {d["date"]: d["totalTokens"] for d in days})


def stored(env: dict) -> dict:
    rows = sql(env, STORED)
    kinds: dict[str, list[dict]] = {kind: [r for r in rows if r["kind"] == kind]
                                    for kind in ("session", "model", "day", "month", "block")}
    models = {r["record_key"]: r["t"] for r in kinds["model"]}
    assert models == {r["record_key"]: r["t"] for r in kinds["session"]}  # per-model rows add up to their row
    return {"sessions": {r["k"]: r["t"] for r in kinds["session"]}, "days": {r["k"]: r["t"] for r in kinds["day"]},
            "months": kinds["month"][0]["t"], "blocks": kinds["block"][0]["t"]}


@pytest.fixture
def history(tmp_path: Path) -> dict:
    """An original session whose last response streams as a partial then a full copy, and a resumed session
    (sorting first by path) that replays one response whole and the last one only up to its partial copy."""
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=3)
    at = [start + dt.timedelta(minutes=n) for n in range(12)]
    live, mirror = tmp_path / "claude", tmp_path / "mirror"
    original = [line("o", 0, at[0], 100), line("o", 1, at[1], 200), line("o", 2, at[2], 50),
                line("o", 2, at[2] + dt.timedelta(seconds=20), 300)]
    write((live, mirror), "mmmm-original", original, at[3])
    resumed = [line("r", 1, at[1], 200), line("r", 2, at[2], 50), line("r", 7, at[7], 700)]
    write((live, mirror), "aaaa-resumed", resumed, at[8])
    return {"live": live, "mirror": mirror, "at": at, "resumed": resumed,
            "partial": tokens(2, 50)}


def delete_original(history: dict) -> None:
    """Claude Code's cleanup deletes the original's transcript; the mirror keeps it."""
    path = history["live"] / "projects" / PROJECT / "mmmm-original.jsonl"
    path.unlink()


def test_a_partial_copy_is_not_counted_twice_after_the_original_is_deleted(history, make_env, ccusage_bin_dir):
    env = make_env(history["live"], "laptop")
    import_ok(env)
    truth, truth_days = ccusage_truth(ccusage_bin_dir, history["mirror"])
    assert truth == {"mmmm-original": tokens(0, 100) + tokens(2, 300),  # the full copy wins
                     "aaaa-resumed": tokens(1, 200) + tokens(7, 700)}  # the whole replay wins the tie (first path)
    first = stored(env)
    assert first["sessions"] == truth and first["days"] == truth_days

    delete_original(history)
    live, _ = ccusage_truth(ccusage_bin_dir, history["live"])
    assert live["aaaa-resumed"] == truth["aaaa-resumed"] + history["partial"]  # ccusage now credits the copy
    out = import_ok(env)
    after = stored(env)
    assert after["sessions"] == truth  # each session as ccusage counts every file ever written
    assert "No transcript changed" in out, out  # a deletion alone reads nothing; --force below reads all that is left
    assert sum(after["sessions"].values()) == sum(truth_days.values()) == after["months"] == after["blocks"]
    assert after["days"] == truth_days

    import_ok(env)  # nothing changed: the run is skipped, and a forced one keeps the same rows
    done = run_cli(env, "--no-hash-projects", "--force")
    assert done.returncode == 0 and re.search(r"ccusage_usage_sessions +0 +0 +0 +1\n", done.stdout), done.stdout
    assert stored(env) == after


def test_later_activity_of_the_resumed_session_still_counts(history, make_env, ccusage_bin_dir):
    """The bound: new lines in the resumed session after its original was deleted are written with the copy."""
    env = make_env(history["live"], "laptop")
    import_ok(env)
    delete_original(history)
    import_ok(env)
    kept = stored(env)

    later = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)  # days after the deleted lines
    write((history["live"], history["mirror"]), "aaaa-resumed", [*history["resumed"], line("r", 9, later, 900)],
          later)
    import_ok(env)
    truth, truth_days = ccusage_truth(ccusage_bin_dir, history["mirror"])
    after = stored(env)
    assert after["sessions"]["aaaa-resumed"] == kept["sessions"]["aaaa-resumed"] + tokens(9, 900) + history["partial"]
    assert after["sessions"]["mmmm-original"] == truth["mmmm-original"]
    assert sum(after["sessions"].values()) - sum(truth.values()) == history["partial"]  # the documented excess
    assert after["days"] == truth_days and after["blocks"] == after["months"] == sum(truth_days.values())


def test_a_session_that_grows_in_place_is_written_when_no_other_session_lost_a_file(history, make_env,
                                                                                     ccusage_bin_dir):
    """A larger copy of the last response appended with the same time stamp: nothing was deleted, so the growth is
    the session's own."""
    env = make_env(history["live"], "laptop")
    import_ok(env)
    at = history["at"]
    grown = [*history["resumed"], line("r", 7, at[7], 900)]
    write((history["live"], history["mirror"]), "aaaa-resumed", grown, at[8])
    out = import_ok(env)
    assert re.search(r"ccusage_usage_sessions +0 +1 +1 +0\n", out), out
    truth, _ = ccusage_truth(ccusage_bin_dir, history["mirror"])
    assert stored(env)["sessions"] == truth


def session(name: str, tokens: int, first: int, last: int, files: int = 1, agent: str = "claude") -> ci.Record:
    """A session row active from hour `first` to hour `last` of 2026-01-01."""
    hour = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return ci.SESSIONS.record({
        "agent": agent, "project_key": "p", "session_key": name, "transcript_files": files,
        "first_activity": hour + dt.timedelta(hours=first), "last_activity": hour + dt.timedelta(hours=last),
        "total_tokens": tokens})


@pytest.mark.parametrize(("incoming", "lost", "outcome"), [
    (session("resumed", 900, 2, 4), session("original", 700, 1, 3), "kept"),  # the exact case
    (session("resumed", 900, 2, 5), session("original", 700, 1, 5), "kept"),  # now reaches a later replayed copy
    (session("resumed", 900, 2, 9), session("original", 700, 1, 3), "written"),  # a line of its own, later
    (session("resumed", 900, 2, 6), session("original", 700, 1, 5), "written"),  # ... later than the deleted lines
    (session("resumed", 900, 2, 4, files=2), session("original", 700, 1, 3), "written"),  # a new sub-agent file
    (session("resumed", 900, 2, 4), session("original", 700, 0, 1), "written"),  # the deleted lines are older
    (session("resumed", 900, 2, 4), session("original", 700, 1, 3, agent="codex"), "written"),  # another agent
    (session("resumed", 900, 2, 4), session("original", 0, 1, 3), "written"),  # the original counted nothing
])
def test_a_session_grown_by_replayed_copies_is_kept_only_when_no_line_of_its_own_came(incoming, lost, outcome):
    stored = {r.key: r for r in (session("resumed", 800, 2, 4), lost)}
    files_now = {incoming.key: incoming.row["transcript_files"]}  # the original's file is gone
    plan = ci.plan_table(ci.SESSIONS, [incoming], stored, files_now)
    assert (plan.kept, plan.write) == ((1, []) if outcome == "kept" else (0, [incoming]))
    files_there = ci.plan_table(ci.SESSIONS, [incoming], stored, {**files_now, lost.key: 1})
    assert incoming in files_there.write  # no file has gone: the growth is the session's own
