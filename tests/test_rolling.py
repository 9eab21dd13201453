"""A rolling history: about 100 simulated days, imported every few days the way real life shows them.

This is the safety net for imports that read only what changed (issue 13). One generated 100-day history is the
*mirror*: every file ever written, complete. Time is simulated by revealing it to the *live* Claude folder step by
step: a file appears when its first line is written, grows in place as later lines are written, its modification
time is always its last line's, and a file whose last activity is more than 30 days old is deleted, as Claude Code
does. After each step the importer runs with its default settings (names hashed), plainly or every time with
``--force``; projects and sessions are compared by their keyed hashes. The only clock the importer sees is the
files: the simulated steps lie in the past of the wall clock, so an importer must derive what to read from the
files' modification times, not from its own time of day.

After every run, every stored day, month, project-day, session and block must equal the ground truth of everything
written so far (the mirror up to that moment, nothing deleted), and no stored period may shrink. At the end they
must equal the ground truth of the whole mirror and the pinned ccusage run once on it (costs included). Days, months
and project-days follow ccusage's daily loader, sessions and blocks its session/blocks loader (they disagree about
sub-agent replays: docs/design.md). Days are bucketed in America/Los_Angeles, not UTC (and a DST change falls in
the window), so the configured zone's day boundaries do not line up with the files' UTC modification times.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import run_cli
from differential import PERIODS, Hash, Tables, assert_same, ccusage_tables, shrunk, store_hash, stored
from transcripts import GroundTruth, Totals, delete_older_than, generate, ground_truth

TZ = "America/Los_Angeles"
END = datetime(2026, 11, 21, 20, 7, tzinfo=UTC)  # the simulated history's last minute
DAYS = 100
START = END - timedelta(days=DAYS)
RETENTION = timedelta(days=30)  # Claude Code's cleanupPeriodDays
# The days after START around which the importer runs (see run_times): 13 runs in all, for a test under a minute.
EVERY_FEW_DAYS = (7, 16, 25, 34, 43, 52, 61, 70, 79, 88)
@dataclass
class Transcript:
    """One mirror file and the moments it grows: (time a line is written, bytes up to and including it)."""

    data: bytes
    cuts: list[tuple[datetime, int]]

    def size_at(self, now: datetime) -> tuple[int, datetime | None]:
        """Bytes written by ``now`` and the modification time they leave (the last written line's time)."""
        written = [(end, at) for at, end in self.cuts if at <= now]
        return max(written, key=lambda cut: cut[0]) if written else (0, None)


@dataclass
class Simulation:
    """The live Claude folder as time passes, and a folder of everything written so far (nothing deleted)."""

    live: Path
    seen: Path
    transcripts: dict[Path, Transcript]
    sizes: dict[Path, int] = field(default_factory=dict)  # live file sizes
    deleted: set[Path] = field(default_factory=set)
    grown_in_place: int = 0  # times a file that had been imported grew

    def advance(self, now: datetime, imported: dict[Path, int]) -> None:
        """Write every line written by ``now``, then delete what Claude Code's cleanup deletes."""
        for rel, transcript in self.transcripts.items():
            size, mtime = transcript.size_at(now)
            if rel in self.deleted or size <= self.sizes.get(rel, 0):
                continue
            assert mtime is not None
            self.grown_in_place += imported.get(rel, 0) > 0
            for folder in (self.live, self.seen):
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as handle:  # in place: the same file, longer
                    handle.write(transcript.data[self.sizes.get(rel, 0) : size])
                os.utime(path, (mtime.timestamp(), mtime.timestamp()))
            self.sizes[rel] = size
        for path in delete_older_than(self.live, now - RETENTION):
            rel = path.relative_to(self.live)
            # Only a file that was imported whole can go: otherwise the full history would not be knowable.
            assert imported.get(rel) == len(self.transcripts[rel].data), f"{rel} deleted before it was imported whole"
            self.deleted.add(rel)
            del self.sizes[rel]


def _timestamp(raw: bytes) -> datetime | None:
    """A line's own time, or None (a summary line, a damaged line)."""
    try:
        value = json.loads(raw).get("timestamp")
    except (ValueError, AttributeError):
        return None
    return datetime.fromisoformat(value).astimezone(UTC) if isinstance(value, str) else None


def load_mirror(mirror: Path) -> dict[Path, Transcript]:
    """Every mirror file with the moments its lines are written.

    A line is written at its own timestamp, except lines without one (summaries, damaged lines) and the lines a
    resumed session replays from an earlier file (byte for byte, with their old timestamps): those are written
    together with the next line of the file's own.
    """
    files = sorted(mirror.glob("projects/**/*.jsonl"))
    lines = {path: path.read_bytes().splitlines(keepends=True) for path in files}
    ended = {path: path.stat().st_mtime for path in files}
    first_written: dict[bytes, float] = {}  # a line -> the earliest end among the files that hold it
    for path in files:
        for raw in lines[path]:
            first_written[raw] = min(first_written.get(raw, ended[path]), ended[path])
    transcripts = {}
    for path in files:
        cuts, offset = [], 0
        for raw in lines[path]:
            offset += len(raw)
            at = _timestamp(raw)
            if at is not None and first_written[raw] >= ended[path]:  # the file's own line
                cuts.append((at, offset))
        assert cuts and cuts[-1][1] == offset, f"{path} does not end with a line of its own"
        transcripts[path.relative_to(mirror)] = Transcript(path.read_bytes(), cuts)
    return transcripts


def run_times(transcripts: dict[Path, Transcript]) -> list[datetime]:
    """When the importer runs: around each of EVERY_FEW_DAYS, in the middle of the session being written nearest
    that moment (so files grow in place between runs), then an hour after the last of them, then again with
    nothing new, then at the end of the history.
    """
    spans = [(t.cuts[0][0], t.cuts[-1][0]) for rel, t in transcripts.items()
             if len(rel.parts) == 3 and t.cuts[-1][0] - t.cuts[0][0] >= timedelta(minutes=20)]  # main sessions
    middles = [first + (last - first) / 2 for first, last in spans]
    runs = [min(middles, key=lambda middle: abs(middle - START - timedelta(days=day))) for day in EVERY_FEW_DAYS]
    hour_later = runs[-1] + timedelta(hours=1)
    return [*runs, hour_later, hour_later, END]


def _counts(totals: Totals) -> tuple[int, int, int, int]:
    return (totals.input, totals.output, totals.cache_creation, totals.cache_read)


def expected(truth: GroundTruth, key_of: Hash) -> Tables:
    """What the store must hold for a transcript history, per kind and key (daily loader for days and months)."""
    return {
        "day": {(day, ""): _counts(t) for day, t in truth.by_day(TZ).items()},
        "month": {(month, ""): _counts(t) for month, t in truth.by_month(TZ, loader="daily").items()},
        "project_day": {(day, key_of(project)): _counts(t) for (day, project), t in truth.by_day_project(TZ).items()},
        "session": {(key_of(project), key_of(session)): _counts(t) for (project, session), t in
                    truth.by_session().items() if t.total},
        "block": {(start.strftime("%Y-%m-%dT%H:%M:%SZ"), ""): _counts(b.tokens) for start, b in truth.blocks().items()},
    }


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["incremental", "full"])
def test_rolling_history_ends_equal_to_the_full_history(mode, tmp_path, make_env, ccusage_bin_dir):
    mirror, live, seen = tmp_path / "mirror", tmp_path / "claude", tmp_path / "seen"
    full = generate(mirror, seed=13, days=DAYS, sessions=230, lines_per_session=36, end=END)
    assert full.stats["cross_file_duplicates"] > 0 and full.stats["sidechain_replays"] > 0  # resumes, sub-agents
    simulation = Simulation(live, seen, load_mirror(mirror))
    env = make_env(live, "laptop", CCUSAGE_TIMEZONE=TZ)
    flags = ["--force"] if mode == "full" else []
    imported: dict[Path, int] = {}
    key_of: Hash | None = None
    before: Tables = {kind: {} for kind in PERIODS}
    for run, now in enumerate(run_times(simulation.transcripts), 1):
        simulation.advance(now, imported)
        done = run_cli(env, *flags)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
        imported = dict(simulation.sizes)
        key_of = key_of or store_hash(env)  # the first run creates the key
        tokens, costs = stored(env)
        smaller = shrunk(before, tokens, PERIODS)
        assert not smaller, f"run {run} ({now:%Y-%m-%d %H:%M} UTC): stored rows shrank:\n" + "\n".join(smaller)
        before = tokens
        assert_same(f"run {run} ({now:%Y-%m-%d %H:%M} UTC), stored vs everything written so far",
                    expected(ground_truth(seen), key_of), tokens)

    # The simulation did what it claims: files grew in place, old ones were deleted, the live folder lost history.
    assert simulation.grown_in_place >= len(EVERY_FEW_DAYS) and simulation.deleted
    assert ground_truth(live).total().total < full.total().total
    assert all(simulation.sizes[rel] == len(t.data) for rel, t in simulation.transcripts.items()
               if rel not in simulation.deleted)

    assert_same("at the end, stored vs the full history's ground truth", expected(full, key_of), tokens)
    reported, reported_costs = ccusage_tables(ccusage_bin_dir, mirror, key_of, TZ)
    assert_same("at the end, stored vs ccusage on the full history", reported, tokens)
    for kind, want in reported_costs.items():
        assert costs[kind] == pytest.approx(want, rel=1e-9, abs=1e-9), kind
