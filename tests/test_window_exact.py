"""Hourly imports are exactly as right as a full read, whatever happens to the files (issue 19).

A `World` is ~/.claude as real life treats it: `live` is what the importer sees (files grow in place, each file's
modification time is its last line's, Claude Code's cleanup deletes, users move, touch, hide and restore files),
`seen` holds every line ever written, each file at its latest place. After an import the store must equal ccusage
run once on `seen` (tests/differential.py): days, months, project-days, sessions and 5-hour blocks. The named
cases below are the ones issue 19 found; tests/test_window_property.py explores sequences of such steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import IMPORTER, cli_env, run_cli, sql
from differential import assert_same, ccusage_tables, shrunk, store_hash, stored

TZ = "America/Los_Angeles"
MODEL = "claude-sonnet-4-5-20250929"


def at(text: str) -> datetime:
    """A moment written as in the issue, `11-12 14:05` in UTC of 2026."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def every(start: str, end: str, minutes: int = 10) -> list[datetime]:
    """Line times from start to end (inclusive), `minutes` apart."""
    first, last = at(start), at(end)
    return [first + timedelta(minutes=minutes * n) for n in range(int((last - first) / timedelta(minutes=minutes)) + 1)]


class World:
    """The live Claude folder and `seen`, every line ever written with each file at its latest place."""

    def __init__(self, root: Path):
        self.live, self.seen = root / "claude", root / "seen"
        for folder in (self.live, self.seen):
            (folder / "projects").mkdir(parents=True)
        self.count = 0
        self.hidden: dict[str, Path] = {}

    def line(self, session: str, moment: datetime) -> bytes:
        """One assistant line of Claude Code, compact JSON as it writes it (ccusage ignores `": "` separators)."""
        self.count += 1
        n = self.count
        return json.dumps({
            "type": "assistant", "sessionId": session, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "version": "2.0.31", "requestId": f"req_{n:06d}",
            "message": {"id": f"msg_{n:06d}", "model": MODEL, "usage": {
                "input_tokens": 3 + n % 7, "output_tokens": 100 + 37 * n % 900,
                "cache_creation_input_tokens": 1000 + 113 * n % 5000,
                "cache_read_input_tokens": 20000 + 997 * n % 9000}},
        }, separators=(",", ":")).encode() + b"\n"

    def write(self, rel: str, times: list[datetime], *, long_first_line: int = 0, replay: str | None = None,
              replay_from: int = 0) -> None:
        """Append lines at `times` to projects/REL (a new file may first replay another file from its line
        `replay_from` on, as a resumed session does, or open with a long user line); the file's modification time
        is then its last line's."""
        session = Path(rel).stem
        data = b""
        if not (self.seen / "projects" / rel).exists():
            if replay:
                replayed = (self.seen / "projects" / replay).read_bytes().splitlines(keepends=True)
                data += b"".join(replayed[min(replay_from, len(replayed) - 1):])
            if long_first_line:
                data += json.dumps({"type": "user", "sessionId": session,
                                    "timestamp": times[0].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                    "message": {"role": "user", "content": "x" * long_first_line}},
                                   separators=(",", ":")).encode() + b"\n"
        data += b"".join(self.line(session, moment) for moment in times)
        for folder in (self.live, self.seen):
            path = folder / "projects" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as handle:
                handle.write(data)
            os.utime(path, (times[-1].timestamp(), times[-1].timestamp()))

    def move(self, rel: str, to: str) -> None:
        """A transcript moved to another project folder (mv keeps its modification time)."""
        for folder in (self.live, self.seen):
            (folder / "projects" / to).parent.mkdir(parents=True, exist_ok=True)
            (folder / "projects" / rel).rename(folder / "projects" / to)

    def touch(self, rel: str, moment: datetime) -> None:
        """The live file's modification time set to `moment` (a restore with `cp -p`, a sync tool, `touch`)."""
        os.utime(self.live / "projects" / rel, (moment.timestamp(), moment.timestamp()))

    def clean_up(self, now: datetime, days: int = 30) -> list[str]:
        """Claude Code's cleanup: live transcripts last written more than `days` before `now` are deleted."""
        gone = []
        for path in sorted((self.live / "projects").rglob("*.jsonl")):
            if path.stat().st_mtime < (now - timedelta(days=days)).timestamp():
                path.unlink()
                gone.append(str(path.relative_to(self.live / "projects")))
        return gone

    def hide(self, rel: str, stash: Path) -> None:
        """A live file gone for a while (a sync tool's hiccup, a file moved away and back)."""
        stash.mkdir(parents=True, exist_ok=True)
        self.hidden[rel] = stash / rel.replace("/", "__")
        shutil.move(self.live / "projects" / rel, self.hidden[rel])

    def restore(self) -> None:
        for rel, stash in self.hidden.items():
            shutil.move(stash, self.live / "projects" / rel)
        self.hidden.clear()

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.live / "projects")) for p in (self.live / "projects").rglob("*.jsonl"))


def check(env: dict, world: World, bin_dir: Path, when: str) -> None:
    """The store equals ccusage run once on every line ever written (tokens and costs)."""
    tokens, costs = stored(env)
    want, want_costs = ccusage_tables(bin_dir, world.seen, store_hash(env), env.get("CCUSAGE_TIMEZONE", "UTC"))
    assert_same(f"{when}: stored vs ccusage on every line ever written", want, tokens)
    for kind, expected in want_costs.items():
        assert costs[kind] == pytest.approx(expected, rel=1e-9, abs=1e-9), f"{when}: {kind} costs"


def imported(env: dict, *args: str) -> str:
    done = run_cli(env, *args)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "world")


# -- 5-hour blocks -------------------------------------------------------------------------------------------------

# Issue 19's three minimal cases: what is written before each import (file, first line, last line, 10 min apart).
BLOCK_CASES = {
    "a block written entirely between two imports": [
        [("p/a.jsonl", "11-10 09:10", "11-10 09:40")], [("p/b.jsonl", "11-12 14:05", "11-12 15:20")]],
    "a block stored while in progress, grown since": [
        [("p/a.jsonl", "11-10 09:10", "11-10 09:40")],
        [("p/c.jsonl", "11-11 08:00", "11-11 08:00"), ("p/b.jsonl", "11-12 14:05", "11-12 14:30")],
        [("p/b.jsonl", "11-12 14:40", "11-12 16:40")]],
    "a block across midnight and two projects": [
        [("q/s1.jsonl", "11-13 23:05", "11-13 23:50")], [("r/s2.jsonl", "11-14 00:30", "11-14 02:00")]],
}


@pytest.mark.parametrize("case", BLOCK_CASES)
def test_blocks_imported_hourly_are_the_full_historys(case, world, make_env, ccusage_bin_dir):
    env = make_env(world.live)
    for batch in BLOCK_CASES[case]:
        for rel, first, last in batch:
            world.write(rel, every(first, last))
        imported(env)
    check(env, world, ccusage_bin_dir, f"{case}, after the last import")


def test_a_line_on_a_stored_blocks_start_that_belongs_to_the_block_before_stays_there(world, make_env,
                                                                                      ccusage_bin_dir):
    """The 15:00 block holds the line at 20:00:00 (not more than 5 hours after its start); the 20:00 block begins
    with 20:10. A later window whose blocks report starts at the stored 20:00 start must not read that line into it."""
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 15:00", "11-10 20:20"))
    imported(env)
    world.write("p/b.jsonl", every("11-11 09:00", "11-11 09:30"))
    imported(env)
    check(env, world, ccusage_bin_dir, "after the next day's session")


def test_an_active_block_is_right_after_every_hourly_import(world, make_env, ccusage_bin_dir):
    """Eight hours of work without a 5-hour gap, imported every hour: two blocks, each right after every run."""
    env = make_env(world.live, CCUSAGE_TIMEZONE=TZ)
    world.write("p/early.jsonl", every("11-16 01:00", "11-16 02:00"))
    imported(env)
    for hour in range(8, 16):
        world.write(f"p/s{hour % 3}.jsonl", every(f"11-16 {hour:02d}:05", f"11-16 {hour:02d}:55", 25))
        imported(env)
        check(env, world, ccusage_bin_dir, f"after {hour}:55")


# -- sessions with a long first line -------------------------------------------------------------------------------

def test_a_session_whose_first_line_is_over_64_kib_keeps_its_history_past_midnight(world, make_env, ccusage_bin_dir):
    env = make_env(world.live)
    world.write("p/long.jsonl", every("11-10 22:00", "11-10 23:50"), long_first_line=70_000)
    imported(env)
    world.write("p/long.jsonl", every("11-11 00:10", "11-11 01:30"))
    imported(env)
    check(env, world, ccusage_bin_dir, "after the next day's lines")
    imported(env, "--force")
    check(env, world, ccusage_bin_dir, "after --force")


def test_a_session_resumed_after_a_compaction_takes_the_responses_it_replays(world, make_env, ccusage_bin_dir):
    """A resumed session's new file replays its original from a later line on and sorts first by path: ccusage
    credits the replayed responses to it (a tie goes to the first path), so the original's row shrinks. The window
    reaches back to the original's first line to compare it whole; a session of the same project that shares no
    response is left as stored. (The original's lines fall on the hour, where blocks start.)"""
    env = make_env(world.live)
    world.write("p/original.jsonl", every("11-10 09:00", "11-11 10:00", 60))
    world.write("p/other.jsonl", every("11-10 20:10", "11-11 02:10", 30))
    imported(env)
    world.write("p/a-resumed.jsonl", every("11-11 11:00", "11-11 12:00"), replay="p/original.jsonl", replay_from=20)
    assert "Read 2026-11-10…2026-11-11 from 3 of 3 transcripts." in imported(env)
    check(env, world, ccusage_bin_dir, "after the resumed session")
    world.write("p/b.jsonl", every("11-11 12:10", "11-11 12:40"))
    assert "Read 2026-11-11…2026-11-11 from 4 of 4 transcripts." in imported(env)  # shares nothing: no pull-back
    check(env, world, ccusage_bin_dir, "after a session that shares nothing")


# -- files that change behind the window's back --------------------------------------------------------------------

def test_a_grown_file_whose_modification_time_went_back_is_read(world, make_env, ccusage_bin_dir):
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:00", "11-10 10:00"))
    world.write("p/b.jsonl", every("11-10 11:00", "11-10 11:30"))
    imported(env)
    world.write("p/a.jsonl", every("11-11 09:00", "11-11 10:00"))
    world.write("p/b.jsonl", every("11-11 10:30", "11-11 11:00"))
    world.touch("p/a.jsonl", at("11-10 10:00"))  # restored from a backup with `cp -p`: its old time
    out = imported(env)
    assert "modification time went back" in out, out
    check(env, world, ccusage_bin_dir, "after a grew and its time went back")
    assert "No transcript changed" in imported(env)


def test_a_transcript_moved_to_another_project_folder_is_counted_once(world, make_env, ccusage_bin_dir):
    env = make_env(world.live, CCUSAGE_TIMEZONE=TZ)
    world.write("old-name/s.jsonl", every("11-10 09:00", "11-10 12:00"))
    world.write("old-name/t.jsonl", every("11-10 13:00", "11-10 14:00"))
    imported(env)
    world.move("old-name/s.jsonl", "new-name/s.jsonl")
    world.write("new-name/u.jsonl", every("11-11 09:00", "11-11 10:00"))
    imported(env)
    check(env, world, ccusage_bin_dir, "after the move")
    imported(env, "--force")
    check(env, world, ccusage_bin_dir, "after --force")


def test_a_briefly_hidden_transcript_never_shrinks_history(world, make_env, ccusage_bin_dir, tmp_path):
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:00", "11-10 12:00"))
    world.write("p/b.jsonl", every("11-10 12:30", "11-10 13:00"))
    imported(env)
    before = stored(env)[0]
    world.hide("p/a.jsonl", tmp_path / "stash")
    world.write("p/b.jsonl", every("11-10 13:10", "11-10 13:40"))
    imported(env)
    assert not shrunk(before, stored(env)[0]), "history shrank while a transcript was away"
    world.restore()
    imported(env)
    check(env, world, ccusage_bin_dir, "after the transcript came back")


def test_transcripts_away_at_two_imports_in_a_row_leave_nothing_unproven(world, make_env, ccusage_bin_dir,
                                                                         tmp_path):
    """f is away while a's 16:55 line joins f's hour (not provable then), back at the next import while g is away
    (still not provable: g was written after it), and g comes back at the third, whose window alone starts after
    that hour: the state remembers from where the periods left unproven while g was away must be read again."""
    env = make_env(world.live, CCUSAGE_TIMEZONE=TZ)
    world.write("p/a.jsonl", every("11-10 16:00", "11-10 16:20"))
    world.write("q/f.jsonl", every("11-10 16:30", "11-10 16:50"))
    imported(env)
    world.write("p/a.jsonl", [at("11-10 16:55")])
    world.write("r/g.jsonl", every("11-11 10:00", "11-11 10:20"))
    world.hide("q/f.jsonl", tmp_path / "stash")
    imported(env)
    world.restore()
    world.hide("r/g.jsonl", tmp_path / "stash")
    imported(env)
    world.restore()
    imported(env)
    check(env, world, ccusage_bin_dir, "after both came back")


def test_an_unreadable_transcript_is_not_recorded_as_imported(ccusage_bin_dir):
    """A transcript the importer cannot read (written by `sudo claude`): the run says so and exits 1, nothing
    stored shrinks, and the next run that can read it imports it. Root reads every file, so as root the importer
    runs as `nobody` (uid 65534) in a folder that user owns, and the transcript is made root's own."""
    as_root = os.geteuid() == 0
    shared = Path(tempfile.mkdtemp(prefix="ccusage-unreadable-"))
    try:
        world = World(shared / "world")
        bin_dir = ccusage_bin_dir
        if as_root:
            shutil.copytree(ccusage_bin_dir.parent.parent, shared / "ccusage", symlinks=True)
            bin_dir = shared / "ccusage" / "node_modules" / ".bin"
        env = cli_env(bin_dir, shared / "home", shared / "store" / "chdb", world.live, "laptop")
        (shared / "home").mkdir()
        python = [sys.executable]
        if as_root:  # this venv's interpreter may live in root's home: the system's, with this venv's packages
            python = [f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]
            env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
            probe = subprocess.run([*python, "-c", "import chdb, clickhouse_connect"], env=env, capture_output=True,
                                   text=True, user=65534, group=65534) if Path(python[0]).exists() else None
            if probe is None or probe.returncode:
                pytest.skip(f"the user nobody cannot run this venv's packages with {python[0]}: "
                            f"{probe.stderr.strip()[-200:] if probe else 'no such interpreter'}")

        def run() -> subprocess.CompletedProcess:
            if as_root:  # hand the folder to nobody (reads in this process may have left root's files there)
                for path in [shared, *shared.rglob("*")]:
                    if path != world.live / "projects" / "p" / "a.jsonl" or os.stat(path).st_uid != 0:
                        os.chown(path, 65534, 65534, follow_symlinks=False)
            return subprocess.run([*python, str(IMPORTER)], env=env, capture_output=True, text=True, timeout=300,
                                  **({"user": 65534, "group": 65534} if as_root else {}))

        world.write("p/a.jsonl", every("11-10 09:00", "11-10 10:00"))
        world.write("p/b.jsonl", every("11-10 10:30", "11-10 11:00"))
        first = run()
        assert first.returncode == 0, first.stdout + first.stderr
        before = stored(env)[0]
        world.write("p/a.jsonl", every("11-10 11:10", "11-10 11:40"))
        world.write("p/b.jsonl", every("11-10 11:50", "11-10 12:20"))
        unreadable = world.live / "projects" / "p" / "a.jsonl"
        if as_root:
            os.chown(unreadable, 0, 0)
        os.chmod(unreadable, 0o600 if as_root else 0)
        hidden = run()
        assert hidden.returncode == 1 and "Traceback" not in hidden.stderr, hidden.stdout + hidden.stderr
        assert "could not be read" in hidden.stdout and "a.jsonl" in hidden.stdout, hidden.stdout
        assert not shrunk(before, stored(env)[0]), "history shrank while a transcript could not be read"
        os.chmod(unreadable, 0o644)
        if as_root:
            os.chown(unreadable, 65534, 65534)
        again = run()
        assert again.returncode == 0 and "No transcript changed" not in again.stdout, again.stdout + again.stderr
        check(env, world, ccusage_bin_dir, "after the transcript could be read again")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# -- settings and state ---------------------------------------------------------------------------------------------

def test_a_change_of_time_zone_is_refused_and_writes_nothing(world, make_env):
    env = make_env(world.live, CCUSAGE_TIMEZONE="UTC")
    world.write("p/a.jsonl", every("11-10 22:00", "11-11 02:00"))
    imported(env)
    rows = sql(env, "SELECT count() AS runs FROM ccusage_import_runs")[0]["runs"]
    moved = run_cli({**env, "CCUSAGE_TIMEZONE": "Asia/Tokyo"})
    assert moved.returncode == 2, moved.stdout + moved.stderr
    error = (moved.stdout + moved.stderr).strip()
    assert len(error.splitlines()) == 1 and "Asia/Tokyo" in error and "UTC" in error and "Traceback" not in error
    assert sql(env, "SELECT count() AS runs FROM ccusage_import_runs")[0]["runs"] == rows
    assert imported(env)  # the old zone still imports


def test_a_store_emptied_behind_the_state_is_read_again(world, make_env, ccusage_bin_dir, tmp_path):
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:00", "11-10 12:00"))
    imported(env)
    store = Path(env["CCUSAGE_IMPORT_DB"])
    for name in ("data", "store", "metadata"):
        shutil.rmtree(store / name)
    out = imported(env)
    assert "No transcript changed" not in out and "Read all 1 transcripts" in out, out
    check(env, world, ccusage_bin_dir, "after the store was emptied")


def test_a_damaged_state_file_is_a_warning_and_a_full_read(world, make_env, ccusage_bin_dir):
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:00", "11-10 12:00"))
    imported(env)
    (Path(env["CCUSAGE_IMPORT_DB"]) / "ccusage-import-state.json").write_text('{"machines": 5}')
    world.write("p/a.jsonl", every("11-10 12:10", "11-10 12:20"))
    out = imported(env)
    assert "Read all 1 transcripts" in out and "state" in out, out
    check(env, world, ccusage_bin_dir, "after the state file was damaged")


# -- clock hours (issue 22) ----------------------------------------------------------------------------------------

def test_hours_stay_exact_through_a_new_hour_a_new_day_and_the_cleanup(world, make_env, ccusage_bin_dir):
    """Every stored clock hour equals `ccusage claude blocks --session-length 1` on every line ever written: after a
    full import, an import of one new hour, of a new day, and after Claude Code's cleanup deleted the oldest
    transcripts (whose hours the store keeps). The line written at 10:00 sharp counts to the 9:00 hour, as in
    ccusage's blocks."""
    env = make_env(world.live, CCUSAGE_TIMEZONE=TZ)
    world.write("p/a.jsonl", every("10-20 09:05", "10-20 11:55", 25))
    world.write("q/b.jsonl", every("10-20 11:10", "10-20 12:40", 15))
    imported(env)
    check(env, world, ccusage_bin_dir, "after the full import")
    world.write("q/b.jsonl", every("10-20 13:05", "10-20 13:55", 25))
    assert "Read 2026-10-20" in imported(env)
    check(env, world, ccusage_bin_dir, "after a new hour")
    world.write("p/c.jsonl", every("11-25 07:30", "11-25 09:10", 20))
    imported(env)
    check(env, world, ccusage_bin_dir, "after a new day")
    assert world.clean_up(at("11-25 09:10")) == ["p/a.jsonl", "q/b.jsonl"]
    world.write("p/c.jsonl", every("11-25 09:20", "11-25 10:00", 20))
    imported(env)
    check(env, world, ccusage_bin_dir, "after the cleanup and one more hour")
    assert len(stored(env)[0]["hour"]) == 8


def test_an_hour_shared_with_a_gone_transcript_keeps_its_lines(world, make_env, ccusage_bin_dir):
    """a's last line (10:50) and b's lines share the 10:00 hour. Once a is gone, ccusage sees only b's part of it,
    in a window that starts at midnight: the hour is not exact (it began before the newest line ccusage can no
    longer see) and keeps what it had; the hour after it is exact. (The day keeps its stored row and leaves b's new
    lines out, as docs/design.md says of a day a gone transcript wrote in; the hours have them.)"""
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:00", "11-10 10:50"))
    world.write("p/b.jsonl", every("11-10 10:05", "11-10 10:45", 20))
    imported(env)
    (world.live / "projects" / "p" / "a.jsonl").unlink()  # deleted by a person: `seen` keeps its lines
    world.write("p/b.jsonl", every("11-10 11:05", "11-10 11:45", 20))
    imported(env)
    want = ccusage_tables(ccusage_bin_dir, world.seen, store_hash(env), "UTC")[0]["hour"]
    assert stored(env)[0]["hour"] == want and len(want) == 3


def test_hours_in_a_zone_of_half_hours_are_exact_across_its_midnight(world, make_env, ccusage_bin_dir):
    """In Asia/Kolkata (UTC+5:30) midnight falls in the middle of a clock hour (18:30 UTC): the window reads from
    there, and the hour that straddles it is left as stored."""
    env = make_env(world.live, CCUSAGE_TIMEZONE="Asia/Kolkata")
    world.write("p/a.jsonl", every("11-10 17:50", "11-10 18:20"))
    imported(env)
    world.write("q/b.jsonl", every("11-10 18:35", "11-10 19:40"))
    imported(env)
    check(env, world, ccusage_bin_dir, "after b")
    assert {key for key, _ in stored(env)[0]["hour"]} == {"2026-11-10T17:00:00Z", "2026-11-10T18:00:00Z",
                                                          "2026-11-10T19:00:00Z"}
