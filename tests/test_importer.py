"""The import end to end: generated transcripts, the real pinned ccusage, the real ClickHouse engine (chDB).

Every number is checked exactly against the generator's own ground truth, and costs against ccusage's own output.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import IMPORTER, ROOT, free_port, run_ccusage, run_cli, sql, sql_many
from transcripts import HOSTILE_PROJECTS, append_activity, delete_older_than, generate, ground_truth

TOKENS = "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens"


def as_tuple(totals) -> tuple[int, int, int, int]:
    return (totals.input, totals.output, totals.cache_creation, totals.cache_read)


def row_tokens(row: dict) -> tuple[int, int, int, int]:
    return (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"])


def import_ok(env: dict, *args: str) -> str:
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def snapshot_queries(machine: str | None = None) -> dict[str, str]:
    """Every usage table as the views read it (FINAL), in a stable order."""
    where = f"WHERE machine_name = '{machine}'" if machine else ""
    return {
        "daily": f"SELECT machine_name, date, {TOKENS}, total_cost FROM ccusage_usage_daily FINAL {where} ORDER BY ALL",
        "monthly": f"SELECT machine_name, month, {TOKENS}, total_cost FROM ccusage_usage_monthly FINAL {where} "
        "ORDER BY ALL",
        "projects": f"SELECT machine_name, date, project_key, {TOKENS}, total_cost FROM ccusage_usage_projects_daily "
        f"FINAL {where} ORDER BY ALL",
        "sessions": f"SELECT machine_name, project_key, session_key, {TOKENS}, total_cost FROM ccusage_usage_sessions "
        f"FINAL {where} ORDER BY ALL",
        "blocks": f"SELECT machine_name, start_time, {TOKENS}, cost_usd FROM ccusage_usage_blocks FINAL {where} "
        "ORDER BY ALL",
        "models": "SELECT machine_name, record_type, model_name, sum(total_tokens) AS tokens, round(sum(cost), 6) AS c "
        f"FROM ccusage_model_breakdowns FINAL {where} GROUP BY ALL ORDER BY ALL",
    }


def snapshot(env: dict, machine: str | None = None) -> dict[str, list[dict]]:
    return sql_many(env, snapshot_queries(machine))


def without(answers: dict[str, list[dict]], *names: str) -> dict[str, list[dict]]:
    """A batch of answers less the named ones: what is left is a snapshot."""
    return {name: rows for name, rows in answers.items() if name not in names}


@pytest.fixture
def claude(tmp_path: Path) -> Path:
    return tmp_path / "claude"


def test_import_matches_ground_truth_and_ccusage_costs(claude, make_env, ccusage_bin_dir):
    truth = generate(claude, seed=7, days=20, sessions=30)
    assert truth.stats["cross_file_duplicates"] > 0 and truth.stats["rejected"] > 0  # the hard cases are in there
    env = make_env(claude, "laptop", TZ="America/Los_Angeles")  # storage must not depend on the local zone
    out = import_ok(env, "--no-hash-projects")
    assert "Status: ok" in out
    stored = sql_many(env, {
        "daily": f"SELECT date, {TOKENS}, total_cost FROM ccusage_usage_daily FINAL",
        "projects": f"SELECT date, project_name, {TOKENS} FROM ccusage_usage_projects_daily FINAL",
        "sessions": f"SELECT project_name, session_id, first_activity, last_activity, {TOKENS} "
                    "FROM ccusage_usage_sessions FINAL",
        "months": f"SELECT toString(month) AS m, {TOKENS}, total_cost FROM ccusage_usage_monthly FINAL",
        "models": "SELECT model_name, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
                  "sum(cache_creation_tokens) AS cache_creation_tokens, sum(cache_read_tokens) AS cache_read_tokens "
                  "FROM ccusage_model_breakdowns FINAL WHERE record_type = 'daily' GROUP BY model_name",
        "blocks": f"SELECT start_time, {TOKENS}, entries FROM ccusage_usage_blocks FINAL",
        "total": "SELECT sum(total_tokens) AS t FROM ccusage_usage_daily FINAL",
        "session_costs": "SELECT session_id, total_cost FROM ccusage_usage_sessions FINAL",
        "runs": "SELECT status, report_rows, rows_written, ccusage_version, error_text FROM ccusage_import_runs",
    })

    daily = {r["date"]: r for r in stored["daily"]}
    assert {d: row_tokens(r) for d, r in daily.items()} == {d: as_tuple(t) for d, t in truth.by_day().items()}

    projects = stored["projects"]
    assert {(r["date"], r["project_name"]): row_tokens(r) for r in projects} == {
        k: as_tuple(t) for k, t in truth.by_day_project().items()
    }

    sessions = stored["sessions"]
    assert {(r["project_name"], r["session_id"]): row_tokens(r) for r in sessions} == {
        k: as_tuple(t) for k, t in truth.by_session().items()
    }
    activity = truth.session_activity()
    for row in sessions:
        first, last = activity[(row["project_name"], row["session_id"])]
        assert row["last_activity"].startswith(last.strftime("%Y-%m-%d %H:%M:%S"))  # UTC, not Los Angeles
        assert row["first_activity"].startswith(first.strftime("%Y-%m-%d %H:%M:%S"))

    # Months and per-model rows are derived from the daily report, which (unlike `claude monthly`) drops
    # sub-agent replays of a parent's message; sessions and blocks are stored as their own reports count them.
    months = stored["months"]
    assert {r["m"][:7]: row_tokens(r) for r in months} == {
        m: as_tuple(t) for m, t in truth.by_month(loader="daily").items()
    }

    assert {r["model_name"]: row_tokens(r) for r in stored["models"]} == {
        m: as_tuple(t) for m, t in truth.by_model(loader="daily").items()
    }

    expected_blocks = truth.blocks()
    assert {r["start_time"][:19]: row_tokens(r) for r in stored["blocks"]} == {
        s.strftime("%Y-%m-%d %H:%M:%S"): as_tuple(b.tokens) for s, b in expected_blocks.items()
    }

    assert stored["total"][0]["t"] == truth.total().total

    ccusage_daily = run_ccusage(ccusage_bin_dir, claude, "daily", "--timezone", "UTC")
    assert len(ccusage_daily["daily"]) == len(daily)
    for item in ccusage_daily["daily"]:
        assert daily[item["date"]]["total_cost"] == pytest.approx(item["totalCost"], rel=1e-9)
    for row in months:
        month_cost = sum(item["totalCost"] for item in ccusage_daily["daily"] if item["date"].startswith(row["m"][:7]))
        assert row["total_cost"] == pytest.approx(month_cost, rel=1e-9)
    ccusage_sessions = run_ccusage(ccusage_bin_dir, claude, "session", "--timezone", "UTC")
    assert {r["session_id"]: r["total_cost"] for r in stored["session_costs"]} == pytest.approx(
        {item["sessionId"]: item["totalCost"] for item in ccusage_sessions["sessions"]}, rel=1e-9
    )

    runs = stored["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "ok" and runs[0]["ccusage_version"] == "20.0.24"
    assert runs[0]["report_rows"]["sessions"] == len(sessions)


def test_second_import_changes_nothing_and_unchanged_runs_skip_ccusage(claude, make_env):
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)  # no active block: its burn rate follows the clock
    generate(claude, seed=3, days=10, sessions=15, end=ended)
    env = make_env(claude)
    import_ok(env)
    with_parts = {**snapshot_queries(), "parts": "SELECT table, sum(rows) AS r FROM system.parts WHERE active AND "
                  "database = currentDatabase() GROUP BY table ORDER BY table"}
    first = sql_many(env, with_parts)
    before, raw_counts = without(first, "parts"), first["parts"]
    forced = import_ok(env, "--force")
    lines = [line.split() for line in forced.splitlines() if line.startswith("ccusage_usage_")]
    assert len(lines) == 6 and all(line[1:3] == ["0", "0"] and line[3] != "0" for line in lines), forced
    again = sql_many(env, with_parts)
    assert without(again, "parts") == before
    assert again["parts"] == [r if r["table"] != "ccusage_import_runs" else {**r, "r": r["r"] + 1} for r in raw_counts]

    quick = import_ok(env)
    said = "No transcript changed since the last import: nothing to fetch, nothing written."
    assert said in quick and said in (ROOT / "docs" / "design.md").read_text(encoding="utf-8")  # issue 24.8
    import_ok(env)
    statuses = [r["status"] for r in sql(env, "SELECT status FROM ccusage_import_runs ORDER BY started_at")]
    assert statuses == ["ok", "ok", "unchanged", "unchanged"]  # skipped runs are recorded when the store next opens


def test_deleting_old_transcripts_never_shrinks_or_double_counts(claude, make_env):
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    full = generate(claude, seed=11, days=40, sessions=60, end=now - dt.timedelta(hours=2))
    env = make_env(claude, "laptop")
    import_ok(env)
    before = snapshot(env)

    deleted = delete_older_than(claude, now - dt.timedelta(days=20))
    remaining = ground_truth(claude)
    assert deleted and remaining.total().total < full.total().total  # ccusage now sees less
    out = import_ok(env)
    assert snapshot(env) == before, out

    newer = append_activity(claude, start=now - dt.timedelta(hours=1), minutes=50, lines=200)
    import_ok(env)

    def expected(loader: str) -> int:
        """All history ever seen: everything before the deletion plus what the new hour added."""
        added = newer.total(loader).total - remaining.total(loader).total
        assert added > 0
        return full.total(loader).total + added

    loaders = {
        "ccusage_usage_daily": "daily",
        "ccusage_usage_monthly": "daily",
        "ccusage_usage_projects_daily": "daily",
        "ccusage_usage_sessions": "main",
        "ccusage_usage_blocks": "main",
    }
    breakdowns = "SELECT sum(total_tokens) AS t FROM ccusage_model_breakdowns FINAL WHERE record_type = 'daily'"
    sums = sql_many(env, {**{table: f"SELECT sum(total_tokens) AS t FROM {table} FINAL" for table in loaders},
                          "breakdowns": breakdowns})
    for table, loader in loaders.items():
        assert sums[table][0]["t"] == expected(loader), table
    assert sums["breakdowns"][0]["t"] == expected("daily")


def test_two_machines_keep_their_own_rows(claude, tmp_path, make_env):
    truth = generate(claude, seed=5, days=8, sessions=12)
    store = tmp_path / "shared-store"
    first, second = make_env(claude, "alpha", db=store), make_env(claude, "beta", db=store)
    import_ok(first)
    alpha_before = snapshot(first, "alpha")
    import_ok(second)
    after = sql_many(first, {
        **snapshot_queries("alpha"),
        "per_machine": "SELECT machine_name, sum(total_tokens) AS t FROM ccusage_usage_daily FINAL "
                       "GROUP BY machine_name ORDER BY machine_name",
        "keys": "SELECT machine_name, groupArray(session_key) AS k FROM "
                "(SELECT * FROM ccusage_usage_sessions FINAL ORDER BY session_key) GROUP BY machine_name",
    })
    assert without(after, "per_machine", "keys") == alpha_before
    assert after["per_machine"] == [
        {"machine_name": "alpha", "t": truth.total().total},
        {"machine_name": "beta", "t": truth.total().total},
    ]
    keys = after["keys"]
    assert keys[0]["k"] == keys[1]["k"]  # one hash key per database: the same session has the same identity


def test_hostile_project_names_are_stored_exactly_or_hashed(claude, make_env):
    truth = generate(claude, seed=9, days=5, sessions=12, projects=HOSTILE_PROJECTS)
    env = make_env(claude)
    import_ok(env)
    hashed = sql_many(env, {
        "names": "SELECT DISTINCT project_name FROM ccusage_usage_projects_daily",
        "sessions": "SELECT * FROM ccusage_usage_sessions FINAL",
        "breakdowns": "SELECT * FROM ccusage_model_breakdowns FINAL",
        "tokens": "SELECT sum(total_tokens) AS t FROM ccusage_usage_projects_daily FINAL",
    })
    names = {r["project_name"] for r in hashed["names"]}
    assert all(len(n) == 16 and int(n, 16) >= 0 for n in names)
    dump = str(hashed["sessions"]) + str(hashed["breakdowns"])
    assert not any(project in dump for project in HOSTILE_PROJECTS if project.startswith(("it", "ü", "semi")))
    tokens_hashed = hashed["tokens"][0]["t"]

    import_ok(env, "--no-hash-projects")  # switching the flag renames rows, never adds a second copy
    rows = sql(env, f"SELECT project_name, date, {TOKENS} FROM ccusage_usage_projects_daily FINAL")
    assert {(r["date"], r["project_name"]): row_tokens(r) for r in rows} == {
        k: as_tuple(t) for k, t in truth.by_day_project().items()
    }
    assert {r["project_name"] for r in rows} == {p for _, p in truth.by_day_project()}
    assert sum(sum(row_tokens(r)) for r in rows) == tokens_hashed


def test_timezone_buckets_days_for_every_machine(claude, make_env):
    truth = generate(claude, seed=4, days=6, sessions=10)
    env = make_env(claude, CCUSAGE_TIMEZONE="Asia/Tokyo")
    import_ok(env)
    daily = sql(env, f"SELECT date, {TOKENS} FROM ccusage_usage_daily FINAL")
    assert {r["date"]: row_tokens(r) for r in daily} == {d: as_tuple(t) for d, t in truth.by_day("Asia/Tokyo").items()}


def test_a_second_run_waits_for_the_lock_then_names_the_holder(claude, make_env, tmp_path):
    generate(claude, seed=2, days=3, sessions=5)
    env = make_env(claude)
    lock_path = Path(env["CCUSAGE_IMPORT_DB"] + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("pid 4242 on test-host, import, since now\n")
        handle.flush()
        started = time.monotonic()
        done = run_cli(env, "--lock-timeout", "1.5")
        waited = time.monotonic() - started
    assert done.returncode == 3
    assert waited >= 1.5
    assert done.stderr.count("\n") == 1 and "pid 4242 on test-host" in done.stderr


def test_two_concurrent_runs_never_interleave(claude, make_env):
    truth = generate(claude, seed=12, days=6, sessions=12)
    env = make_env(claude)
    runs = [
        subprocess.Popen(
            [sys.executable, str(IMPORTER), "--force"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    stored = sql_many(env, {"total": "SELECT sum(total_tokens) AS t FROM ccusage_usage_daily FINAL",
                            "runs": "SELECT status FROM ccusage_import_runs"})
    assert stored["total"][0]["t"] == truth.total().total
    assert [r["status"] for r in stored["runs"]] == ["ok", "ok"]


def test_ccusage_missing_says_what_to_install(claude, make_env, tmp_path):
    generate(claude, seed=2, days=2, sessions=3)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = make_env(claude)
    env["PATH"] = str(empty_bin)
    done = run_cli(env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: ccusage 20.0.24 not found: install Node.js (for npx) or Bun, or put it on PATH with "
        "`npm install -g ccusage@20.0.24`"
    ]


FAKE_CCUSAGE = """\
#!/bin/sh
# Test double for failure injection only: a broken `session` report; every other call goes to the real ccusage.
# It reads its mode from a file beside it: the importer passes ccusage no variable it does not need.
here=$(dirname "$0")
env > "$here/environment"
case "$*" in
  *--version*) echo "ccusage 20.0.24"; exit 0 ;;
  *"claude session"*)
    case "$(cat "$here/mode")" in
      fail) echo "Error: disk on fire" >&2; exit 1 ;;
      hang) sleep 30 & echo $! > "$here/sleeper"; wait ;;
      garbage) echo "this is not json"; exit 0 ;;
      shape) echo '{"sessions": {"unexpected": true}}'; exit 0 ;;
    esac ;;
esac
exec "$(cat "$here/real")" "$@"
"""


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "exited 1: Error: disk on fire"),
        ("hang", "timed out after 2 s"),
        ("garbage", "printed output that is not JSON"),
        ("shape", "printed JSON of an unknown shape"),
    ],
)
def test_a_broken_report_is_skipped_named_and_the_next_run_converges(
    mode, message, claude, make_env, tmp_path, ccusage_bin_dir
):
    truth = generate(claude, seed=6, days=4, sessions=8)
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "ccusage").write_text(FAKE_CCUSAGE)
    (fake_bin / "ccusage").chmod(0o755)
    (fake_bin / "mode").write_text(mode)
    (fake_bin / "real").write_text(str(ccusage_bin_dir / "ccusage"))
    env = make_env(claude, CCUSAGE_TIMEOUT="2", CCUSAGE_RETRIES="1", CCUSAGE_RETRY_BACKOFF="0")
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
    done = run_cli(env)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    if mode == "hang":  # the timeout ended the whole process group, not only the script it started
        sleeper = int((fake_bin / "sleeper").read_text())
        assert not Path(f"/proc/{sleeper}").exists() or "Z" in Path(f"/proc/{sleeper}/stat").read_text().split()[2]
    assert message in done.stdout and "claude session" in done.stdout and "ccusage 20.0.24" in done.stdout
    assert "Status: partial" in done.stdout
    stored = sql_many(env, {"daily": "SELECT sum(total_tokens) AS t FROM ccusage_usage_daily FINAL",
                            "sessions": "SELECT count() AS n FROM ccusage_usage_sessions",
                            "runs": "SELECT status, error_text FROM ccusage_import_runs"})
    assert stored["daily"][0]["t"] == truth.total().total
    assert stored["sessions"][0]["n"] == 0
    run = stored["runs"][0]
    assert run["status"] == "partial" and message in run["error_text"]

    (fake_bin / "mode").write_text("ok")
    import_ok(env)  # the failed report left no fingerprint, so this run fetches again and fills the gap
    assert sql(env, "SELECT sum(total_tokens) AS t FROM ccusage_usage_sessions FINAL")[0]["t"] == truth.total(
        "main"
    ).total


def test_unreachable_database_is_one_line_without_the_password(claude, make_env):
    generate(claude, seed=2, days=2, sessions=3)
    env = make_env(
        claude, CH_HOST="127.0.0.1", CH_PORT=str(free_port()), CH_USER="importer", CH_PASSWORD="pa55-w0rd-XYZ"
    )
    done = run_cli(env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "pa55-w0rd-XYZ" not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
    assert "127.0.0.1" in done.stderr


def test_native_port_is_named(make_env):
    done = run_cli(make_env(None, CH_HOST="127.0.0.1", CH_PORT="9000"))
    assert done.returncode == 1
    assert "native-protocol port" in done.stderr and "8123" in done.stderr


def test_no_claude_data_is_not_an_error(tmp_path, make_env):
    env = make_env(None)
    done = run_cli(env)
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("❌")]
    assert line.startswith("❌ no coding agent data found (") and line.endswith("): nothing to import"), line
    for page in ("README.md", "docs/operations.md"):  # as the docs quote it (issue 24.8)
        assert "`❌ no coding agent data found (…): nothing to import`" in (ROOT / page).read_text(encoding="utf-8")
    assert sql(env, "SELECT count() AS n FROM ccusage_usage_daily")[0]["n"] == 0


def write_session(claude: Path, name: str, lines: list[tuple[int, str]], mtime: dt.datetime) -> None:
    """A transcript of assistant lines (message number, timestamp), with the file time of its last line."""
    path = claude / "projects" / "-home-me-proj" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({
        "type": "assistant", "sessionId": name, "timestamp": ts, "version": "2.0.31", "requestId": f"req_{n}",
        "message": {"id": f"msg_{n}", "model": "claude-sonnet-4-5-20250929", "usage": {
            "input_tokens": 10 + n, "output_tokens": 100 * n, "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 5000}}}, separators=(",", ":")) + "\n" for n, ts in lines))
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


SESSION_TOTALS = "SELECT session_id, total_tokens FROM ccusage_usage_sessions FINAL"


def session_totals(rows: list[dict]) -> dict[str, int]:
    return {r["session_id"]: r["total_tokens"] for r in rows}


@pytest.mark.parametrize("resumed_name", ["aaaa-resumed", "zzzz-resumed"])
def test_a_resumed_session_never_counts_replayed_history_twice(resumed_name, claude, make_env):
    """ccusage credits a replayed line to the file that sorts first: a resume can move history between sessions."""
    day = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    stamp = [(day + dt.timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for n in range(10)]
    env = make_env(claude, "laptop")
    write_session(claude, "mmmm-original", [(n, stamp[n]) for n in range(3)], day + dt.timedelta(minutes=3))
    import_ok(env, "--no-hash-projects")
    original = ground_truth(claude).total("main").total

    replay_and_more = [(n, stamp[n]) for n in range(3)] + [(7, stamp[7]), (8, stamp[8])]
    write_session(claude, resumed_name, replay_and_more, day + dt.timedelta(minutes=9))
    import_ok(env, "--no-hash-projects")
    truth = ground_truth(claude)
    stored = sql_many(env, {"sessions": SESSION_TOTALS, "shown": "SELECT session_id FROM ccusage_v_session_summary"})
    before = session_totals(stored["sessions"])
    assert sum(before.values()) == truth.total("main").total
    expected = {s: t.total for (_, s), t in truth.by_session().items()}
    assert {s: t for s, t in before.items() if t} == expected
    if resumed_name < "mmmm":  # the resumed file sorts first: it took the original's lines, the original is zero
        assert before["mmmm-original"] == 0
        assert [r["session_id"] for r in stored["shown"]] == [resumed_name]

    delete_older_than(claude, day + dt.timedelta(minutes=5))  # Claude Code's cleanup removes the original
    assert not (claude / "projects" / "-home-me-proj" / "mmmm-original.jsonl").exists()
    assert "No transcript changed" in import_ok(env, "--no-hash-projects")  # a deletion alone reads nothing
    out = import_ok(env, "--no-hash-projects", "--force")  # reading everything left, the rules keep history
    if resumed_name > "mmmm":  # the resumed session now holds the replayed lines too: stored as it was
        assert re.search(r"ccusage_usage_sessions +0 +0 +0 +1", out), out
    assert session_totals(sql(env, SESSION_TOTALS)) == before  # nothing shrinks, nothing is counted twice
    assert sum(before.values()) == truth.total("main").total > original
