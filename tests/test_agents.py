"""Every coding agent ccusage reads, in the same tables: Claude Code, Codex CLI, Gemini CLI and OpenCode logs from
tests/agent_logs.py (each proven equal to ccusage 20.0.24 by tests/test_agent_logs.py), imported by the real
importer with the real pinned ccusage into chDB, and checked against each agent's own ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_logs import ENV_VARS, delete_older_than, generate_codex, generate_machine, machine_env
from conftest import ROOT, run_cli, sql
from test_server import stand_in

END = dt.datetime(2026, 11, 21, 20, 7, tzinfo=dt.UTC)
AGENTS = ("codex", "gemini", "opencode")
TOKENS = "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, total_tokens"


def counts(row: dict) -> tuple[int, int, int, int, int]:
    return (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"],
            row["total_tokens"])


def agent_ccusage(bin_dir: Path, machine: Path, agent: str, report: str) -> dict:
    """`ccusage <agent> <report> --json`: each agent's own numbers, the reference for costs."""
    home = machine / "ccusage-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "TZ": "UTC", **machine_env(machine)}
    done = subprocess.run([str(bin_dir / "ccusage"), agent, report, "--json", "--offline", "--timezone", "UTC"],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture
def machine(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "machine"
    return root, generate_machine(root, seed=5, days=6, end=END)


def machine_vars(root: Path) -> dict[str, str]:
    variables = machine_env(root)
    variables["CLAUDE_CONFIG_DIR"] = str(root / "claude")
    return variables


def test_a_mixed_machine_gets_every_agent_exact(machine, make_env, ccusage_bin_dir):
    root, truths = machine
    env = make_env(None, "mixed", **machine_vars(root))
    done = run_cli(env, "--no-hash-projects")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Agents on this machine: " in done.stdout and all(agent in done.stdout for agent in AGENTS)

    days = sql(env, f"SELECT agent, date, {TOKENS}, total_cost FROM ccusage_usage_daily FINAL")
    assert {r["agent"] for r in days} == {"claude", *AGENTS}
    claude_days = {r["date"]: r for r in days if r["agent"] == "claude"}
    assert {d: counts(r)[:4] for d, r in claude_days.items()} == {
        d: (t.input, t.output, t.cache_creation, t.cache_read) for d, t in truths["claude"].by_day().items()}
    for agent in AGENTS:
        truth = truths[agent]
        stored = {r["date"]: r for r in days if r["agent"] == agent}
        assert {d: counts(r) for d, r in stored.items()} == {d: u.counts() for d, u in truth.by_day().items()}, agent
        own = {item["date"]: item for item in agent_ccusage(ccusage_bin_dir, root, agent, "daily")["daily"]}
        for day, row in stored.items():
            assert row["total_cost"] == pytest.approx(own[day].get("totalCost", own[day].get("costUSD")), rel=1e-9)

    models = sql(env, "SELECT agent, record_key, model_name, input_tokens, output_tokens, cache_creation_tokens, "
                      "cache_read_tokens FROM ccusage_model_breakdowns FINAL WHERE record_type = 'daily'")
    for agent in AGENTS:
        assert {(r["record_key"], r["model_name"]): (r["input_tokens"], r["output_tokens"],
                                                     r["cache_creation_tokens"], r["cache_read_tokens"])
                for r in models if r["agent"] == agent} == {
            key: u.counts()[:4] for key, u in truths[agent].by_day_model().items()}, agent

    sessions = sql(env, f"SELECT agent, project_name, session_id, last_activity, reasoning_tokens, {TOKENS} "
                        "FROM ccusage_usage_sessions FINAL")
    for agent in AGENTS:
        stored = {r["session_id"]: r for r in sessions if r["agent"] == agent}
        assert {s: counts(r) for s, r in stored.items()} == {
            s: u.counts() for s, u in truths[agent].by_session().items()}, agent
        assert {r["project_name"] for r in stored.values()} == {""}  # no agent but Claude Code has projects
    codex = [r for r in sessions if r["agent"] == "codex"]
    assert sum(r["reasoning_tokens"] for r in codex) == truths["codex"].total("session").reasoning > 0
    assert all(r["last_activity"] is None for r in sessions if r["agent"] == "gemini")

    assert {r["agent"] for r in sql(env, "SELECT DISTINCT agent FROM ccusage_usage_projects_daily")} == {"claude"}
    assert {r["agent"] for r in sql(env, "SELECT DISTINCT agent FROM ccusage_usage_blocks")} == {"claude"}
    months = sql(env, "SELECT agent, sum(total_tokens) AS t FROM ccusage_usage_monthly FINAL GROUP BY agent")
    assert {r["agent"]: r["t"] for r in months} == {
        r["agent"]: r["t"] for r in sql(env, "SELECT agent, sum(total_tokens) AS t FROM ccusage_usage_daily FINAL "
                                             "GROUP BY agent")}

    unchanged = run_cli(env, "--no-hash-projects")
    assert "nothing to fetch, nothing written" in unchanged.stdout
    forced = run_cli(env, "--no-hash-projects", "--force")
    assert forced.returncode == 0, forced.stderr
    runs = sql(env, "SELECT rows_written FROM ccusage_import_runs ORDER BY started_at")
    assert sum(runs[-1]["rows_written"].values()) == 0, runs[-1]


def test_deleting_an_agents_oldest_logs_changes_no_stored_day(tmp_path, make_env):
    root = tmp_path / "machine"
    truth = generate_codex(root / "codex", seed=8, days=8, end=END)
    env = make_env(None, **{ENV_VARS["codex"]: str(root / "codex")})
    assert run_cli(env).returncode == 0
    before = sql(env, f"SELECT date, {TOKENS}, total_cost FROM ccusage_usage_daily FINAL ORDER BY date")
    assert {r["date"]: counts(r) for r in before} == {d: u.counts() for d, u in truth.by_day().items()}
    deleted = delete_older_than(root / "codex", END - dt.timedelta(days=4))
    assert deleted
    done = run_cli(env)
    assert done.returncode == 0 and "kept" in done.stdout, done.stdout
    assert sql(env, f"SELECT date, {TOKENS}, total_cost FROM ccusage_usage_daily FINAL ORDER BY date") == before
    sessions = sql(env, "SELECT count() AS n, sum(total_tokens) AS t FROM ccusage_usage_sessions FINAL")[0]
    assert (sessions["n"], sessions["t"]) == (len(truth.by_session()), truth.total("session").total)


def test_two_machines_and_a_limited_agent_set(machine, tmp_path, make_env):
    root, truths = machine
    store = tmp_path / "shared" / "chdb"
    first = make_env(None, "desk", db=store, **machine_vars(root))
    assert run_cli(first).returncode == 0
    other = tmp_path / "other"
    codex = generate_codex(other / "codex", seed=9, days=3, end=END)
    second = make_env(None, "laptop", db=store, CCUSAGE_AGENTS="codex,gemini",
                      **{ENV_VARS["codex"]: str(other / "codex"), "CLAUDE_CONFIG_DIR": str(root / "claude")})
    done = run_cli(second)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = sql(first, "SELECT machine_name, agent, sum(total_tokens) AS t FROM ccusage_usage_daily FINAL "
                      "GROUP BY ALL ORDER BY ALL")
    laptop = {r["agent"]: r["t"] for r in rows if r["machine_name"] == "laptop"}
    assert laptop == {"codex": codex.total().total}  # CCUSAGE_AGENTS left Claude Code out
    desk = {r["agent"]: r["t"] for r in rows if r["machine_name"] == "desk"}
    assert set(desk) == {"claude", *AGENTS}
    assert {a: desk[a] for a in AGENTS} == {a: truths[a].total().total for a in AGENTS}


def test_agents_alone_without_claude_code(tmp_path, make_env):
    truth = generate_codex(tmp_path / "codex", seed=10, days=2, end=END)
    env = make_env(None, **{ENV_VARS["codex"]: str(tmp_path / "codex")})
    check = run_cli(env, "--check")
    assert "⚠️ Claude Code data: no projects/ folder" in check.stdout, check.stdout
    assert "✅ other agents: codex (" in check.stdout
    assert "✅ ccusage session --sections daily,session --by-agent: " in check.stdout
    done = run_cli(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sql(env, "SELECT sum(total_tokens) AS t FROM ccusage_usage_daily FINAL")[0]["t"] == truth.total().total


def test_ccusage_reads_no_agent_folder_that_was_not_found(tmp_path, make_env):
    """Claude Code only: the unified report is not even run (an agent without data costs nothing)."""
    from transcripts import generate

    generate(tmp_path / "claude", seed=12, days=2, sessions=2)
    env = make_env(tmp_path / "claude")
    done = run_cli(env)
    assert done.returncode == 0
    reports = sql(env, "SELECT report_rows FROM ccusage_import_runs")[0]["report_rows"]
    assert set(reports) == {"projects_daily", "sessions", "blocks", "hourly"}


OLD_RELEASE = "12cfc44"  # the release before agents: its importer, schema and queries


@pytest.fixture(params=["embedded", "server"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The embedded store (no settings), or a new database on a server: the stand-in of tests/test_server.py."""
    if request.param == "embedded":
        yield {}
        return
    with stand_in(tmp_path / "server", "UTC") as server:
        yield server.settings(server.database("migrated"))


def test_a_store_of_the_release_before_agents_migrates_without_losing_a_row(tmp_path, make_env, store_settings):
    """On a server, the rebuild's copies and EXCHANGE TABLES run over HTTP."""
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("needs the git history to rebuild the previous release (a git checkout of this repository)")
    from transcripts import generate

    old = tmp_path / "old-release"
    old.mkdir()
    for name in ("ccusage_importer.py", "ccusage_clickhouse_schema.sql", "queries.sql"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_RELEASE}:{name}"], capture_output=True)
        if shown.returncode != 0:
            pytest.skip(f"this checkout lacks the commit {OLD_RELEASE} (a shallow clone?)")
        (old / name).write_bytes(shown.stdout)
    generate(tmp_path / "claude", seed=13, days=40, sessions=30, end=END)  # in the past: no block still active
    env = make_env(tmp_path / "claude", **store_settings)

    def old_release(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, str(old / "ccusage_importer.py"), *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done

    old_release()
    old_release("--force")  # a second version of some rows (its float noise): every raw row must survive
    tables = ("ccusage_usage_daily", "ccusage_usage_monthly", "ccusage_usage_sessions", "ccusage_usage_blocks",
              "ccusage_usage_projects_daily", "ccusage_model_breakdowns", "ccusage_models_used")
    measures = {table: "round(sum(cost), 6)" if table == "ccusage_model_breakdowns" else "sum(is_used)"
                if table == "ccusage_models_used" else "sum(total_tokens)" for table in tables}

    def state(read) -> dict:
        """Each table's raw rows, their measure and its rows after FINAL, in one query (one old-release process)."""
        rows = read(" UNION ALL ".join(
            f"SELECT '{table}' AS t, count() AS raw, {measures[table]} AS measure, "
            f"(SELECT count() FROM {table} FINAL) AS final FROM {table}" for table in tables))
        return {row.pop("t"): row for row in rows}

    before = state(lambda query: [json.loads(line) for line in
                                  old_release("--sql", query, "--format", "json").stdout.splitlines()])
    after = state(lambda query: sql(env, query))
    assert after == before and before["ccusage_usage_daily"]["raw"] > 0
    for table in tables:
        assert sql(env, f"SELECT groupUniqArray(agent) AS agents FROM {table}")[0]["agents"] == ["claude"]
    versions = sql(env, "SELECT version FROM ccusage_schema_migrations ORDER BY version")
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert not sql(env, "SELECT name FROM system.tables WHERE name LIKE '%rebuild%'")
    for _ in range(2):  # the migrated store imports on; the first run may only re-add a month the old release
        done = run_cli(env, "--force")  # summed with float noise (an order-dependent last digit), and fills the
        assert done.returncode == 0, done.stderr  # clock hours that release did not have (and their models)
    runs = sql(env, "SELECT rows_written FROM ccusage_import_runs ORDER BY started_at")
    assert {t for t, n in runs[-2]["rows_written"].items() if n} <= {
        "ccusage_usage_monthly", "ccusage_usage_hourly", "ccusage_models_used"}, runs[-2]
    assert sum(runs[-1]["rows_written"].values()) == 0, runs[-1]
