"""Output that fits a terminal (issues 14.5, 24.2): tables fit its width without cutting a number or a date, arrays
are compact, `--query list` wraps its descriptions; files, pipes, CSV and JSON get every value in full."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

from agent_logs import generate_machine, machine_env
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
    assert max(len(line) for line in shown.splitlines()) <= 100 and "-- row 1 --" in shown, shown
    assert "['" not in shown  # arrays as `a, b`, not Python lists
    piped = run_cli(env, "--query", "top_sessions").stdout
    assert "…" not in piped and max(len(line) for line in piped.splitlines()) > 100


def test_table_cells_are_cut_widest_first():
    rows = [("short", "x" * 60, ["claude-opus-4-5", "claude-haiku-4-5"])]
    text = ci.format_table(["a", "long", "models"], rows, "table", width=50)
    assert all(len(line) <= 50 for line in text.splitlines())
    assert "…" in text and text.splitlines()[2].startswith("short")
    assert "`--format csv`" in text  # says how to see the cut cells whole
    assert "claude-opus-4-5, claude-haiku-4-5" in ci.format_table(["models"], [rows[0][2:]], "table")


WIDE_QUERIES = ("agent_summary", "top_sessions", "project_timeline", "model_cost_all_time", "daily_cost_30d")
DATE_TIME = re.compile(r"(\d{4}-\d\d-\d\d)(?:[ T](\d\d:\d\d:\d\d))?")


def shown_whole(value: object) -> list[str]:
    """The texts a terminal must show whole for one JSON value: a number as the table writes it, a date or time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [ci._cell_text(value)]
    if isinstance(value, str) and (moment := DATE_TIME.match(value)):
        return [" ".join(part for part in moment.groups() if part)]
    return []


def test_tables_never_cut_a_number_or_a_date_at_60_80_or_120_columns(tmp_path, make_env):
    """Issue 24.2: in a real pseudo-terminal of 60, 80 and 120 columns every line fits, and every number and date
    of the result is on the screen whole (text may be cut with …, or rows become blocks of lines)."""
    generate_machine(tmp_path / "machine", seed=24, days=5)
    env = make_env(tmp_path / "machine" / "claude", "a-machine-with-a-rather-long-name",
                   **machine_env(tmp_path / "machine"))
    assert run_cli(env).returncode == 0
    for name in WIDE_QUERIES:
        rows = [json.loads(line) for line in run_cli(env, "--query", name, "--format", "json").stdout.splitlines()]
        assert rows and rows != [[]], name
        whole = {text for row in rows for value in row.values() for text in shown_whole(value)}
        for columns in (60, 80, 120):
            shown = on_a_terminal(env, "--query", name, columns=columns)
            assert max(len(line) for line in shown.splitlines()) <= columns, (name, columns, shown)
            words = set(re.split(r"\s{2,}|^\s+|\s+$|, ", shown, flags=re.M)) | set(shown.split())
            missing = sorted(text for text in whole if text not in words and f" {text}" not in shown)
            assert not missing, (name, columns, missing[:5], shown)
            if max(len(line) for line in run_cli(env, "--query", name).stdout.splitlines()) > columns:
                assert "--format csv" in " ".join(shown.split()), (name, columns)  # says how to see it all
