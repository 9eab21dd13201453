"""`--check`: the preflight a new user runs first. Real ccusage, real chDB, generated transcripts; it must tell the
truth (record counts as ccusage reports them), never change the store, and never show the password."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from conftest import CCUSAGE_VERSION, free_port, hourly_import, run_ccusage, run_cli, sql, sql_many
from transcripts import generate

import ccusage_importer as ci

STORE_LABELS = ["store connection", "server version", "database", "tables and views", "write permission",
                "response time", "last import"]
ALL_LABELS = ["configuration", "machine name", "Claude Code data", "history retention", "other agents", "ccusage",
              "ccusage claude daily --instances", "ccusage claude session", "ccusage claude blocks",
              "ccusage claude blocks --session-length 1", *STORE_LABELS]
SCHEMA_FIX = "   fix: run an import once (`uv run ccusage_importer.py`), it creates the schema"
SCHEMA = ci.expected_schema(ci.SCHEMA_FILE.read_text())
TABLES = [name for name, item in SCHEMA.items() if item.kind == "table"]
VIEWS = [name for name, item in SCHEMA.items() if item.kind == "view"]


def labels(stdout: str) -> list[str]:
    """The label of every result line, in order (fix lines and the header/summary are not results)."""
    return [line.split(" ", 1)[1].split(":", 1)[0] for line in stdout.splitlines()
            if line[:1] in ("✅", "⚠", "❌")]


def line_of(stdout: str, label: str) -> str:
    matches = [line for line in stdout.splitlines() if line[:1] in ("✅", "⚠", "❌")
               and line.split(" ", 1)[1].startswith(f"{label}:")]
    assert len(matches) == 1, stdout
    return matches[0]


def check(env: dict) -> tuple[int, str]:
    done = run_cli(env, "--check")
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout


@pytest.fixture
def claude(tmp_path: Path) -> Path:
    return tmp_path / "claude"


def test_healthy_store_passes_with_the_real_record_counts(claude, make_env, ccusage_bin_dir, tmp_path, cron_daemon):
    truth = generate(claude, seed=11, days=12, sessions=14)
    env = hourly_import(make_env(claude, "desk"), tmp_path / "cron-bin", last_start=ci.now())

    code, out = check(env)  # before the first import: no store, and --check creates none
    assert code == 0, out
    store = Path(env["CCUSAGE_IMPORT_DB"])
    assert line_of(out, "store") == f"⚠️ store: no store yet at {store}: the first import creates it"
    assert out.splitlines()[-1] == "10 passed, 1 warning, 0 failed"
    assert not store.parent.exists()

    assert run_cli(env).returncode == 0
    runs_before = sql(env, "SELECT count() AS n FROM ccusage_import_runs")[0]["n"]
    code, out = check(env)
    assert code == 0, out
    assert labels(out) == ALL_LABELS
    assert all(line.startswith("✅") for line in out.splitlines()[1:-1]), out
    assert out.splitlines()[-1] == "17 passed, 0 warnings, 0 failed"

    # The counts are the records in ccusage's own JSON (project-days, sessions, blocks), not its top-level keys.
    instances = run_ccusage(ccusage_bin_dir, claude, "daily", "--instances", "--timezone", "UTC")
    daily = run_ccusage(ccusage_bin_dir, claude, "daily", "--timezone", "UTC")
    sessions = run_ccusage(ccusage_bin_dir, claude, "session", "--timezone", "UTC")["sessions"]
    blocks = run_ccusage(ccusage_bin_dir, claude, "blocks", "--timezone", "UTC")["blocks"]
    project_days = sum(len(days) for days in instances["projects"].values())
    assert project_days == len(truth.by_day_project()) and len(daily["daily"]) == len(truth.by_day())
    assert len(sessions) == len(truth.by_session())
    used_blocks = [b for b in blocks if not b["isGap"]]
    assert len(used_blocks) == len(truth.blocks()) and len(used_blocks) < len(blocks)
    assert line_of(out, "ccusage claude daily --instances").startswith(
        f"✅ ccusage claude daily --instances: {project_days} project-days over {len(daily['daily'])} days, "
        "valid JSON, in ")
    assert line_of(out, "ccusage claude session").startswith(
        f"✅ ccusage claude session: {len(sessions)} sessions, valid JSON, in ")
    assert line_of(out, "ccusage claude blocks").startswith(
        f"✅ ccusage claude blocks: {len(blocks)} blocks ({len(used_blocks)} with usage, "
        f"{len(blocks) - len(used_blocks)} idle gaps), valid JSON, in ")
    hours = run_ccusage(ccusage_bin_dir, claude, "blocks", "--session-length", "1")["blocks"]
    used_hours = [b for b in hours if not b["isGap"]]
    assert len(used_hours) == len(truth.blocks(hours=1)) and len(used_hours) < len(hours)
    assert line_of(out, "ccusage claude blocks --session-length 1").startswith(
        f"✅ ccusage claude blocks --session-length 1: {len(hours)} one-hour blocks ({len(used_hours)} with usage, "
        f"{len(hours) - len(used_hours)} idle gaps), valid JSON, in ")

    files = len(list((claude / "projects").rglob("*.jsonl")))
    assert line_of(out, "Claude Code data") == f"✅ Claude Code data: {files} transcript files in {claude / 'projects'}"
    assert line_of(out, "machine name") == "✅ machine name: desk (from MACHINE_NAME)"
    assert line_of(out, "ccusage").startswith("✅ ccusage: ccusage 20.0.24 runs via ccusage (")
    assert line_of(out, "database") == f"✅ database: default readable, {len(SCHEMA)} tables and views"
    columns = sum(len(item.columns) for item in SCHEMA.values())
    assert line_of(out, "tables and views") == (
        f"✅ tables and views: all {len(TABLES)} tables and {len(VIEWS)} views have their {columns} columns")
    assert re.fullmatch(r"✅ response time: \d+ ms for SELECT 1 \(median of 3\): (excellent|good)",
                        line_of(out, "response time"))

    # --check wrote nothing: no run recorded, no scratch table left behind.
    after = sql_many(env, {"runs": "SELECT count() AS n FROM ccusage_import_runs",
                           "scratch": "SELECT count() AS n FROM system.tables WHERE name LIKE '%ccusage_check%'"})
    assert after["runs"][0]["n"] == runs_before
    assert after["scratch"][0]["n"] == 0


def test_schema_parser_agrees_with_the_engine(tmp_path, make_env):
    """What --check expects is exactly what ClickHouse lists once the importer has created the schema."""
    env = make_env(None)
    assert run_cli(env).returncode == 0  # no Claude data: creates the schema, imports nothing
    rows = sql(env, "SELECT table, name FROM system.columns WHERE database = 'default' ORDER BY table, position")
    actual: dict[str, list[str]] = {}
    for row in rows:
        actual.setdefault(row["table"], []).append(row["name"])
    assert {name: list(item.columns) for name, item in SCHEMA.items()} == actual


def test_a_missing_table_is_named_with_the_fix_and_not_created(claude, make_env, tmp_path):
    generate(claude, seed=12, days=3, sessions=4)
    env = hourly_import(make_env(claude), tmp_path / "cron-bin", installed=False)
    assert run_cli(env).returncode == 0
    sql(env, "DROP TABLE ccusage_usage_blocks")
    for _ in range(2):  # the second run proves the first did not create it
        code, out = check(env)
        assert code == 1
        assert line_of(out, "tables and views") == "❌ tables and views: missing ccusage_usage_blocks"
        assert out.splitlines()[out.splitlines().index(line_of(out, "tables and views")) + 1] == SCHEMA_FIX
        assert out.splitlines()[-1] == "15 passed, 1 warning, 1 failed"


def test_a_table_without_its_columns_is_named(make_env):
    env = make_env(None)
    assert run_cli(env).returncode == 0
    sql(env, "ALTER TABLE ccusage_import_runs DROP COLUMN runner")
    code, out = check(env)
    assert code == 1
    assert line_of(out, "tables and views") == "❌ tables and views: ccusage_import_runs lacks runner"
    assert ("   fix: add the columns as ccusage_clickhouse_schema.sql declares them (ALTER TABLE … ADD COLUMN)"
            in out.splitlines())


def test_ccusage_absent_names_the_install_fix(claude, make_env, tmp_path):
    generate(claude, seed=13, days=2, sessions=2)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = make_env(claude)
    env["PATH"] = str(empty_bin)  # no ccusage, no bunx, no npx (the CLI itself runs with this interpreter)
    code, out = check(env)
    assert code == 1
    lines = out.splitlines()
    runner = lines.index("❌ ccusage: no ccusage 20.0.24 on PATH, and neither bunx nor npx")
    assert lines[runner + 1] == ("   fix: install Node.js (for npx) or Bun, or put ccusage on PATH: "
                                 "`npm install -g ccusage@20.0.24`")
    assert not [label for label in labels(out) if label.startswith("ccusage ")]  # no report run without a runner
    assert labels(out)[-1] == "store"  # the store is still looked at
    assert lines[-1] == "4 passed, 2 warnings, 1 failed"  # no store yet (nothing imported), no cron entry


def retention_warning(env: dict) -> tuple[str, str]:
    """--check's history retention line and the line under it (its fix, for a warning)."""
    lines = check(env)[1].splitlines()
    at = lines.index(line_of("\n".join(lines), "history retention"))
    return lines[at], lines[at + 1]


def test_an_hourly_import_that_no_cron_daemon_runs_is_a_warning(claude, make_env, tmp_path, no_cron_daemon):
    """Issue 24.5: a container, WSL or a minimal VM has the crontab line and no cron to run it."""
    (claude / "projects").mkdir(parents=True)
    env = hourly_import(make_env(claude), tmp_path / "cron", last_start=ci.now())
    line, fix = retention_warning(env)
    assert line.startswith("⚠️ history retention: ") and "the crontab has the hourly import, but no cron daemon runs" \
        in line, line
    assert fix.startswith("   fix: start cron (Debian/Ubuntu: `sudo service cron start`"), fix


@pytest.mark.parametrize(("hours_ago", "exit_code", "said"), [
    (None, 0, "cron has not started the import yet (no run in "),
    (5, 0, "cron last started the import 5 h ago ("),
    (0.2, 1, "the last import cron started exited 1 ("),
    (0.2, 0, None),
])
def test_the_last_import_cron_started_must_be_recent_and_clean(claude, make_env, tmp_path, cron_daemon, hours_ago,
                                                               exit_code, said):
    """Issue 24.5: the log setup_cronjob.sh's runs write says whether cron really runs the import every hour."""
    (claude / "projects").mkdir(parents=True)
    start = None if hours_ago is None else ci.now() - dt.timedelta(hours=hours_ago)
    env = hourly_import(make_env(claude), tmp_path / "cron", last_start=start, exit_code=exit_code)
    line, _ = retention_warning(env)
    if said:
        assert line.startswith("⚠️ history retention: ") and said in line, line
    else:
        assert line.startswith("✅ history retention: ") and line.endswith("and cron runs it"), line


def test_on_a_fresh_machine_the_check_fetches_ccusage_with_npx_and_creates_no_store(claude, make_env, tmp_path):
    """What README and operations.md say (issue 24.8): --check creates no store, but where only npx can give ccusage
    it runs `npx -y ccusage@VERSION --version`, which downloads ccusage into the npm cache once, as an import would.
    The npx here only records how it is called: what it would download is npm's business."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "npx-calls"
    npx = bin_dir / "npx"
    npx.write_text(f'#!/bin/sh\necho "$*" >> {calls}\necho {CCUSAGE_VERSION}\n')
    npx.chmod(0o755)
    env = make_env(claude, PATH=f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    check(env)
    assert f"-y ccusage@{CCUSAGE_VERSION} --version" in calls.read_text().splitlines()
    assert not Path(env["CCUSAGE_IMPORT_DB"]).exists()


FAKE_CCUSAGE = """\
#!/bin/sh
# Test double for failure injection only: `session` hangs; every other call goes to the real ccusage.
case "$*" in
  *"claude session"*) exec sleep 20 ;;
esac
exec "$(cat "$(dirname "$0")/real")" "$@"
"""


def test_a_report_past_its_timeout_fails_with_the_fix(claude, make_env, tmp_path, ccusage_bin_dir):
    generate(claude, seed=14, days=2, sessions=2)
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "ccusage").write_text(FAKE_CCUSAGE)
    (fake_bin / "ccusage").chmod(0o755)
    (fake_bin / "real").write_text(str(ccusage_bin_dir / "ccusage"))
    # 4 s: the reports that do not hang stay under half of it (a warning) on a loaded machine too (0.5 s seen)
    env = make_env(claude, CCUSAGE_TIMEOUT="4")
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
    code, out = check(env)
    assert code == 1
    lines = out.splitlines()
    failed = line_of(out, "ccusage claude session")
    assert failed == ("❌ ccusage claude session: `ccusage claude session --json --offline --timezone UTC` "
                      "(ccusage 20.0.24 via ccusage) timed out after 4 s (after 1 attempts)")
    assert lines[lines.index(failed) + 1] == "   fix: raise CCUSAGE_TIMEOUT (now 4 s)"
    assert line_of(out, "ccusage claude blocks").startswith("✅ ccusage claude blocks: ")


def test_a_wrong_server_address_fails_clearly_without_the_password(claude, make_env, tmp_path):
    generate(claude, seed=15, days=2, sessions=2)
    port = free_port()
    password = "Pw-4-check-\"'$-XYZZY"
    env = hourly_import(make_env(claude, CH_HOST="127.0.0.1", CH_PORT=str(port), CH_USER="importer",
                                 CH_PASSWORD=password), tmp_path / "cron-bin", installed=False)
    done = run_cli(env, "--check")
    assert done.returncode == 1
    assert password not in done.stdout + done.stderr and "XYZZY" not in done.stdout + done.stderr
    assert done.stderr == "" and "Traceback" not in done.stdout
    assert line_of(done.stdout, "store connection") == (
        f"❌ store connection: cannot use http://importer@127.0.0.1:{port} (database default): connection refused "
        "(is the server running, and is CH_PORT its HTTP port?)")
    assert "password set (not shown)" in line_of(done.stdout, "configuration")
    assert labels(done.stdout)[-1] == "store connection"  # nothing after a failed connection pretends to pass
    assert done.stdout.splitlines()[-1] == "9 passed, 1 warning, 1 failed"  # the warning: no cron entry


def test_a_bad_setting_is_one_failed_line(make_env):
    code, out = check(make_env(None, CH_HOST="127.0.0.1", CH_PORT="9000"))
    assert code == 1
    assert out.splitlines()[1].startswith("❌ configuration: CH_PORT=9000 is ClickHouse's native-protocol port")
    assert out.splitlines()[-1] == "0 passed, 0 warnings, 1 failed"


@pytest.mark.parametrize(("milliseconds", "rating"), [
    (0.4, ("ok", "excellent")), (99.9, ("ok", "excellent")), (100, ("ok", "good")), (499, ("ok", "good")),
    (500, ("warn", "slow")), (4000, ("warn", "slow")),
])
def test_response_time_rating(milliseconds, rating):
    assert ci.response_rating(milliseconds) == rating


def test_schema_problems_ignore_extra_columns():
    expected = {"t": ci.SchemaObject("table", ("a", "b")), "v": ci.SchemaObject("view", ("x",)),
                "gone": ci.SchemaObject("table", ("y",))}
    actual = {"t": ["a", "c"], "v": ["x", "z"]}
    assert ci.schema_problems(expected, actual) == (["gone"], {"t": ["b"]})
