"""cron's hourly runs (`--defer`) keep an hour's reports in the journal instead of opening the embedded engine (issue
23), and every opening of the store files them first. These tests hold the journal to what imports that open the
store every hour store: the same rows, each under its own machine and settings, never twice, and runs that open
the store whenever the journal could not serve.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from conftest import run_admin, run_cli, sql, sql_many
from hypothesis import given, settings
from hypothesis import strategies as st
from test_incremental import SNAPSHOT
from transcripts import append_activity, generate

import ccusage_importer as ci

END = dt.datetime(2026, 11, 21, 20, 7, tzinfo=dt.UTC)
FILED = {**SNAPSHOT,
         "hours": "SELECT hour, total_tokens, total_cost FROM ccusage_usage_hourly FINAL ORDER BY ALL",
         "machines": "SELECT DISTINCT machine_name FROM ccusage_usage_daily ORDER BY ALL",
         "runs": "SELECT status, rows_written, files_fingerprint != '' AS fingerprinted FROM ccusage_import_runs "
                 "ORDER BY started_at"}


def status(stdout: str) -> str:
    found = re.search(r"^Status: (\w+) \(", stdout, re.MULTILINE)
    assert found, stdout
    return found.group(1)


def journal_file(env: dict) -> Path:
    return Path(env["CCUSAGE_IMPORT_DB"]) / "ccusage-import-pending-runs.jsonl"


def history(tmp_path: Path) -> Path:
    claude = tmp_path / "claude"
    generate(claude, seed=71, days=20, sessions=40, end=END)
    return claude


def test_hours_kept_in_the_journal_store_what_hourly_imports_store(tmp_path, make_env):
    """Three new hours, a transcript deleted by Claude Code's cleanup and an hour with nothing new, imported with
    --defer into one store and without it into another: once a reader (another machine name and zone in its
    shell) opens the first, both hold the same rows, and each filed run wrote what its direct twin wrote."""
    claude = history(tmp_path)
    deferred = make_env(claude, db=tmp_path / "deferred" / "chdb")
    assert status(run_cli(deferred, "--defer").stdout) == "ok"  # a first import reads all
    shutil.copytree(tmp_path / "deferred", tmp_path / "direct", symlinks=True)  # the same history and hash key
    direct = make_env(claude, db=tmp_path / "direct" / "chdb")

    def oldest_transcript() -> None:
        min(claude.rglob("*.jsonl"), key=lambda path: path.stat().st_mtime).unlink()

    steps = [lambda: append_activity(claude, start=END + dt.timedelta(hours=1), seed=72),
             lambda: (append_activity(claude, start=END + dt.timedelta(hours=2), seed=73), oldest_transcript()),
             lambda: None,
             lambda: append_activity(claude, start=END + dt.timedelta(hours=4), seed=74)]
    statuses = []
    for step in steps:
        step()
        kept = run_cli(deferred, "--defer")
        assert kept.returncode == 0 and "Traceback" not in kept.stderr, kept.stdout + kept.stderr
        statuses.append(status(kept.stdout))
        assert run_cli(direct).returncode == 0
    assert statuses == ["deferred", "deferred", "unchanged", "deferred"]
    assert stat.S_IMODE(journal_file(deferred).stat().st_mode) == 0o600
    kept_lines = journal_file(deferred).read_text().splitlines()
    assert len(kept_lines) == 4 and sum('"deferred": {' in line for line in kept_lines) == 3

    reader = {**deferred, "MACHINE_NAME": "reader", "CCUSAGE_TIMEZONE": "Asia/Kolkata"}
    assert sql_many(reader, FILED) == sql_many(direct, FILED)
    assert not journal_file(deferred).exists()
    assert sql(deferred, "SELECT DISTINCT machine_name FROM ccusage_usage_daily") == [{"machine_name": "laptop"}]


def test_a_journal_filed_twice_counts_once(tmp_path, make_env):
    """A reader cut short after filing leaves the journal behind: the next opening skips the runs stored already,
    and the next import still reads only its window."""
    claude = history(tmp_path)
    env = make_env(claude)
    assert run_cli(env, "--defer").returncode == 0
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    assert status(run_cli(env, "--defer").stdout) == "deferred"
    run_cli(env, "--defer")  # nothing new: a plain run row in the journal
    copy = journal_file(env).read_bytes()
    filed = sql_many(env, FILED)
    journal_file(env).write_bytes(copy)
    assert sql_many(env, FILED) == filed
    append_activity(claude, start=END + dt.timedelta(hours=2), seed=73)
    hour = run_cli(env)
    assert status(hour.stdout) == "ok" and re.search(r"^Read \S+ from \d+ of", hour.stdout, re.MULTILINE), hour.stdout


@pytest.mark.parametrize("why", ["journal six hours old", "own hash key", "budget", "forced"])
def test_a_deferrable_run_opens_the_store_when_the_journal_cannot_serve(tmp_path, make_env, why):
    """--defer keeps nothing when the store must be current or the key is the user's: a journal older than
    JOURNAL_FILED_AFTER (filed now), CCUSAGE_HASH_KEY, a budget, --force. The run imports as without --defer."""
    claude = history(tmp_path)
    extra = {"own hash key": {"CCUSAGE_HASH_KEY": "a key of my own"},
             "budget": {"CCUSAGE_BUDGET_DAILY_USD": "100000"}}.get(why, {})
    env = make_env(claude, **extra)
    assert run_cli(env, "--defer").returncode == 0
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    if why == "journal six hours old":
        assert status(run_cli(env, "--defer").stdout) == "deferred"
        lines = journal_file(env).read_text().splitlines()
        first = json.loads(lines[0])
        first["started_at"] = (ci.now() - ci.JOURNAL_FILED_AFTER - dt.timedelta(minutes=1)).isoformat()
        journal_file(env).write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
        append_activity(claude, start=END + dt.timedelta(hours=2), seed=73)
    done = run_cli(env, "--defer", *(["--force"] if why == "forced" else []))
    assert done.returncode == 0 and status(done.stdout) == "ok", done.stdout + done.stderr
    assert not journal_file(env).exists()
    runs = sql(env, "SELECT status FROM ccusage_import_runs ORDER BY started_at")
    assert [run["status"] for run in runs] == ["ok"] * (3 if why == "journal six hours old" else 2)


def test_an_import_that_builds_on_another_store_is_not_filed(tmp_path, make_env):
    """An entry read against a store that is no longer as it was (here: the entry says so) is not filed but named
    in ccusage_import_runs, and the next import, --defer or not, reads everything: the totals are whole."""
    claude = history(tmp_path)
    env = make_env(claude)
    assert run_cli(env, "--defer").returncode == 0
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    assert status(run_cli(env, "--defer").stdout) == "deferred"
    entry = json.loads(journal_file(env).read_text())
    entry["deferred"]["previous_fingerprint"] = "0" * 64
    journal_file(env).write_text(json.dumps(entry) + "\n")
    runs = sql(env, "SELECT status, error_text FROM ccusage_import_runs ORDER BY started_at")
    assert [run["status"] for run in runs] == ["ok", "skipped"] and "not filed" in runs[1]["error_text"]
    append_activity(claude, start=END + dt.timedelta(hours=2), seed=73)
    again = run_cli(env, "--defer")  # a new hour, but the store lacks the last: everything is read, nothing kept
    assert status(again.stdout) == "ok", again.stdout
    assert "Read all " in again.stdout and "the store is not what the local state describes" in again.stdout
    reference = make_env(claude, db=tmp_path / "reference" / "chdb")
    assert run_cli(reference).returncode == 0
    totals = "SELECT sum(total_tokens) AS tokens, round(sum(total_cost), 6) AS cost FROM ccusage_usage_daily FINAL"
    assert sql(env, totals) == sql(reference, totals)


times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1),
                     timezones=st.just(dt.UTC))
names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(since=st.none() | st.dates(), start=st.none() | times, sessions=st.frozensets(st.tuples(names, names)),
       earliest=st.none() | times, unread=st.none() | times, anchor=st.none() | times,
       floor=st.integers(0, 2**62), gone=st.dictionaries(names, st.integers(0, 2**62)),
       reach=st.none() | st.integers(0, 2**62), starts=st.lists(times, max_size=5),
       files=st.dictionaries(st.tuples(names, names), st.integers(1, 50)))
def test_a_journal_entry_reads_back_as_the_plan_took_it(since, start, sessions, earliest, unread, anchor, floor,
                                                         gone, reach, starts, files):
    """Everything the plan takes from a deferred run comes back from the journal's JSON unchanged."""
    config = ci.Config.from_env({"HOME": "/nonexistent", "CCUSAGE_AGENTS": "claude,codex",
                                 "CCUSAGE_TIMEZONE": "Europe/Berlin"})
    window = ci.Window(since, start, ("a.jsonl",), sessions, earliest=earliest, unread_before=unread,
                       blocks_from=anchor)
    went = ci.GoneTranscripts(floor, gone, unproven=dict(list(gone.items())[:2]), reach_back_ns=reach)
    starts = [moment.replace(microsecond=moment.microsecond) for moment in starts]
    entry = ci.journal_entry("f" * 64, config, {"blocks": {"blocks": []}}, window, went, starts, files)
    back = ci.deferred_import(json.loads(json.dumps(entry)))
    assert back.window == ci.dataclasses.replace(window, files=())
    assert (back.window.first_hour, back.window.read_from) == (window.first_hour, window.read_from)
    assert back.gone == went and back.block_starts == tuple(starts) and back.session_files == files
    assert back.settings == {"timezone": "Europe/Berlin", "hash_projects": True, "agents": ["claude", "codex"],
                             "ccusage_version": ci.DEFAULT_CCUSAGE_VERSION}


def test_the_journal_is_private_and_holds_no_secret(tmp_path, make_env):
    """The journal holds what ccusage printed (project paths: as private as names.json), never a secret; --check
    names what waits in it."""
    claude = history(tmp_path)
    env = make_env(claude, CH_PASSWORD="pw-not-for-files", CCUSAGE_ALERT_WEBHOOK="https://hooks.example/s3cr3t")
    assert run_cli(env, "--defer").returncode == 0
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    assert status(run_cli(env, "--defer").stdout) == "deferred"
    text = journal_file(env).read_text()
    assert "pw-not-for-files" not in text and "s3cr3t" not in text
    assert stat.S_IMODE(journal_file(env).stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(journal_file(env).parent).st_mode) & 0o077 == 0
    check = run_cli(env, "--check")  # opens the store without filing the journal, and says what waits in it
    assert "1 later import kept in the journal (--defer), filed at the next opening" in check.stdout, check.stdout
    shutil.rmtree(tmp_path / "claude")  # the transcripts gone before the journal is filed: its reports are kept
    assert sql(env, "SELECT count() AS n FROM ccusage_import_runs WHERE status = 'ok'") == [{"n": 2}]


def test_a_run_after_a_journal_line_cut_short_keeps_its_own_line(tmp_path):
    """A crash while appending leaves a line without its end; the next run's line starts on a line of its own, so
    only the cut line is lost (its run saved no state after it), never the next."""
    state = ci.LocalState(tmp_path)
    run = {column: "x" for column in ci.RUN_COLUMNS} | {
        "run_id": "6f1c3d0e-0000-4000-8000-000000000001", "started_at": "2026-12-07T06:00:00+00:00",
        "finished_at": "2026-12-07T06:00:01+00:00"}
    state.add_pending_run(run)
    with state.pending_file.open("a") as handle:
        handle.write('{"run_id": "6f1c3d0e-0000-4000-8000-0000000')  # cut short
    state.add_pending_run({**run, "run_id": "6f1c3d0e-0000-4000-8000-000000000003"}, {"window": {}})
    kept = state.pending_runs()
    assert [str(r["run_id"])[-1] for r, _ in kept] == ["1", "3"] and kept[1][1] == {"window": {}}
    assert stat.S_IMODE(state.pending_file.stat().st_mode) == 0o600


def test_the_admin_importer_files_the_journal_before_it_compares_days(tmp_path, make_env):
    """The Admin API importer holds Claude Code's days as ccusage counted them against the API's: it opens the store
    through open_store too, so an hour kept by cron is in the days it compares."""
    claude = history(tmp_path)
    env = make_env(claude)
    assert run_cli(env, "--defer").returncode == 0
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    assert status(run_cli(env, "--defer").stdout) == "deferred"
    done = run_admin(env, "--validate")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert not journal_file(env).exists()
    assert [r["status"] for r in sql(env, "SELECT status FROM ccusage_import_runs ORDER BY started_at")] == ["ok", "ok"]


def test_an_import_by_hand_after_cron_kept_hours_files_them_and_shows_them(tmp_path, make_env):
    """With nothing new since cron's last run, an import by hand still opens the store when the journal holds
    imports: its totals then include the hours cron kept (the nothing-new shortcut would show the last opening's)."""
    claude = history(tmp_path)
    env = make_env(claude)
    first = run_cli(env, "--defer")
    append_activity(claude, start=END + dt.timedelta(hours=1), seed=72)
    kept = run_cli(env, "--defer")
    assert status(kept.stdout) == "deferred"
    totals = re.compile(r"^\* laptop: .*$", re.MULTILINE)
    assert totals.search(kept.stdout).group() == totals.search(first.stdout).group()  # as of the last opening
    by_hand = run_cli(env)
    assert status(by_hand.stdout) == "unchanged" and not journal_file(env).exists(), by_hand.stdout
    assert totals.search(by_hand.stdout).group() != totals.search(first.stdout).group()
    assert status(run_cli(env, "--defer").stdout) == "unchanged"  # cron's run: nothing to file, nothing opened
