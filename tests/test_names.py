"""Names you can read on your own machine (issue 14.3): the tables hold keyed hashes of project paths and session
ids; the machine that imported them keeps hash -> name in a 0600 file of its own, never in the database, and shows
the names in --query, --sql and --dashboard (--no-names: hashes only)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from conftest import run_cli, sql, sql_many
from transcripts import generate, ground_truth

HASH = re.compile(r"[0-9a-f]{16}")


def test_names_are_shown_locally_and_never_stored(tmp_path, make_env):
    claude = tmp_path / "claude"
    generate(claude, seed=71, days=5, sessions=8)
    truth = ground_truth(claude)
    projects = {project for project, _ in truth.by_session()}
    sessions = {session for _, session in truth.by_session()}
    env = make_env(claude)
    assert run_cli(env).returncode == 0

    names_file = Path(env["CCUSAGE_IMPORT_DB"]) / "ccusage-import-names.json"
    assert stat.S_IMODE(names_file.stat().st_mode) == 0o600
    tables = [r["name"] for r in sql(env, "SELECT name FROM system.tables WHERE database = currentDatabase() "
                                          "AND engine NOT LIKE '%View%'")]
    dumps = sql_many(env, {table: f"SELECT toString(tuple(*)) AS row FROM {table}" for table in tables})
    stored = "\n".join(r["row"] for rows in dumps.values() for r in rows)
    assert stored and not [name for name in projects | sessions if name in stored]  # the database holds no name

    query = "SELECT DISTINCT project_name, session_id FROM ccusage_usage_sessions FINAL ORDER BY ALL"
    shown = run_cli(env, "--sql", query, "--format", "csv").stdout.splitlines()[1:]
    assert {tuple(line.split(",")) for line in shown} == set(truth.by_session())
    hashed = run_cli(env, "--sql", query, "--format", "csv", "--no-names").stdout.splitlines()[1:]
    assert all(HASH.fullmatch(part) for line in hashed for part in line.split(","))

    listing = run_cli(env, "--query", "project_cost", "--format", "json").stdout
    assert any(project in listing for project in projects)
    page = tmp_path / "dashboard.html"
    assert run_cli(env, "--dashboard", str(page)).returncode == 0
    html = page.read_text()
    assert any(project in html for project in projects)
    assert run_cli(env, "--dashboard", str(page), "--no-names").returncode == 0
    assert not any(project in page.read_text() for project in projects)


def test_a_machine_without_the_map_shows_hashes(tmp_path, make_env):
    claude = tmp_path / "claude"
    generate(claude, seed=72, days=2, sessions=3)
    env = make_env(claude)
    assert run_cli(env).returncode == 0
    (Path(env["CCUSAGE_IMPORT_DB"]) / "ccusage-import-names.json").unlink()
    shown = run_cli(env, "--sql", "SELECT DISTINCT project_name FROM ccusage_usage_sessions", "--format", "csv")
    assert all(HASH.fullmatch(line) for line in shown.stdout.splitlines()[1:])


def test_a_name_filters_where_its_key_does(tmp_path, make_env):
    """Issue 24.1: `--param project=` takes the name --query shows, as well as its key; the key column shows the key
    beside the name, not the name twice."""
    claude = tmp_path / "claude"
    generate(claude, seed=73, days=4, sessions=6)
    env = make_env(claude)
    assert run_cli(env).returncode == 0
    names = json.loads((Path(env["CCUSAGE_IMPORT_DB"]) / "ccusage-import-names.json").read_text())
    everything = [json.loads(line) for line in run_cli(
        env, "--query", "project_timeline", "--param", "limit=100", "--format", "json").stdout.splitlines()]
    row = everything[0]
    assert HASH.fullmatch(row["project_key"]) and names[row["project_key"]] == row["project"]

    wanted = [r for r in everything if r["project"] == row["project"]]
    for given in (row["project"], row["project_key"]):
        done = run_cli(env, "--query", "project_timeline", "--param", f"project={given}", "--format", "json")
        assert [json.loads(line) for line in done.stdout.splitlines()] == wanted, given
    unknown = run_cli(env, "--query", "project_timeline", "--param", "project=no-such-project", "--format", "json")
    assert unknown.returncode == 0 and unknown.stdout.strip() == "[]"
