"""The demo in one command (issue 24.3): `uv run demo.py` fills a store of its own with three machines' Claude Code,
Codex, Gemini and OpenCode history, writes the dashboard, and prints commands that work on it; the user's own store
is never touched."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, cli_env, run_cli

DEMO = ROOT / "demo.py"


def run_demo(home: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, str(DEMO), *args], env=env, capture_output=True, text=True, timeout=600)


def test_the_demo_fills_its_own_store_and_its_commands_work(tmp_path, ccusage_bin_dir):
    home, folder = tmp_path / "home", tmp_path / "demo"
    home.mkdir()
    done = run_demo(home, ccusage_bin_dir, "--folder", str(folder))
    assert done.returncode == 0, done.stderr
    assert (folder / "ccusage-dashboard.html").stat().st_size > 100_000
    assert not (home / ".local" / "share" / "ccusage-import" / "chdb").exists()  # the user's store stays untouched
    top = [line.split(": ", 1)[1].split(", ") for line in done.stdout.splitlines()
           if line.startswith("Top models on this machine: ")]
    models = [part.rsplit(" $", 1)[0] for line in top for part in line]
    assert len(top) == 3 and models and not [m for m in models if re.search(r"-20\d{6}$|claude-\S*\.", m)], top

    env = cli_env(ccusage_bin_dir, home, folder / "chdb", None, "laptop")
    rows = agent_summary(env)
    assert {(r["machine_name"], r["agent"]) for r in rows} == {
        (machine, agent) for machine in ("laptop", "desk", "build-box")
        for agent in ("claude", "codex", "gemini", "opencode")}
    suggested = [shlex.split(line) for line in done.stdout.splitlines() if line.startswith("  CCUSAGE_IMPORT_DB=")]
    assert len(suggested) >= 3
    for words in suggested:
        assert words[0] == f"CCUSAGE_IMPORT_DB={folder / 'chdb'}" and words[1:4] == ["uv", "run", "ccusage_importer.py"]
        shown = run_cli(env, *words[4:])
        assert shown.returncode == 0 and "(0 rows)" not in shown.stdout, (words, shown.stdout, shown.stderr)

    again = run_demo(home, ccusage_bin_dir, "--folder", str(folder))  # made anew, not added to the first
    assert again.returncode == 0, again.stderr
    assert sorted(agent_summary(env), key=str) == sorted(rows, key=str)


def agent_summary(env: dict) -> list[dict]:
    """Machine, agent, sessions and tokens of each agent on each machine of the store."""
    shown = run_cli(env, "--query", "agent_summary", "--format", "json").stdout.splitlines()
    keys = ("machine_name", "agent", "sessions", "tokens")
    return [{key: row[key] for key in keys} for row in map(json.loads, shown)]


def test_the_demo_never_overwrites_a_folder_of_yours(tmp_path, ccusage_bin_dir):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    done = run_demo(tmp_path, ccusage_bin_dir, "--folder", str(mine))
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        f"error: {mine} is not empty and is not a demo folder: choose another with --folder"]
    assert (mine / "notes.txt").read_text() == "keep me"
