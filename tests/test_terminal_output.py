"""Output that fits a terminal (issue 14.5): tables are cut to the terminal's width with …, arrays are compact,
`--query list` wraps its descriptions; files, pipes, CSV and JSON get every value in full."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import IMPORTER, run_cli
from transcripts import generate

import ccusage_importer as ci


def on_a_terminal(env: dict, *args: str, columns: int = 80) -> str:
    """The CLI's output as a terminal of `columns` characters shows it (a pseudo-terminal, COLUMNS set)."""
    controller, terminal = pty.openpty()
    with subprocess.Popen([sys.executable, str(IMPORTER), *args], env={**env, "COLUMNS": str(columns)},
                          stdout=terminal, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=120)
    os.close(controller)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_query_list_wraps_to_the_terminal_and_shows_parameters_on_request(make_env):
    env = make_env(None)
    listing = on_a_terminal(env, "--query", "list")
    assert max(len(line) for line in listing.splitlines()) <= 80
    assert not [line for line in listing.splitlines() if line.strip().startswith("params: ")]
    assert "`--query list --verbose` shows their parameters" in " ".join(listing.split())
    verbose = on_a_terminal(env, "--query", "list", "--verbose")
    assert max(len(line) for line in verbose.splitlines()) <= 80
    assert [line for line in verbose.splitlines() if line.strip().startswith("params: days:UInt32=")]
    piped = run_cli(env, "--query", "list", "--format", "json").stdout
    assert '"params": ' in piped  # full values off the terminal


def test_wide_query_results_fit_the_terminal_and_stay_whole_in_a_pipe(tmp_path, make_env):
    generate(tmp_path / "claude", seed=51, days=6, sessions=12)
    env = make_env(tmp_path / "claude", "a-machine-with-a-rather-long-name")
    assert run_cli(env).returncode == 0
    shown = on_a_terminal(env, "--query", "top_sessions", columns=100)
    assert max(len(line) for line in shown.splitlines()) <= 100 and "…" in shown, shown
    assert "['" not in shown  # arrays as `a, b`, not Python lists
    piped = run_cli(env, "--query", "top_sessions").stdout
    assert "…" not in piped and max(len(line) for line in piped.splitlines()) > 100


def test_table_cells_are_cut_widest_first():
    rows = [("short", "x" * 60, ["claude-opus-4-5", "claude-haiku-4-5"])]
    text = ci.format_table(["a", "long", "models"], rows, "table", width=50)
    assert all(len(line) <= 50 for line in text.splitlines())
    assert "…" in text and text.splitlines()[2].startswith("short")
    assert "claude-opus-4-5, claude-haiku-4-5" in ci.format_table(["models"], [rows[0][2:]], "table")
