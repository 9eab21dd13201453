"""The transcript generator's ground truth must equal real ccusage 20.0.24 output.

ccusage is found via $CCUSAGE_BIN (a path or a command line), else ``ccusage`` on PATH,
else ``node_modules/.bin/ccusage`` in the repository or in the npm prefix conftest.py
installs into, else ``npx -y ccusage@20.0.24``. The ccusage tests are skipped only when
none of these exists.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from transcripts import (
    HOSTILE_PROJECTS,
    JUNK_KINDS,
    GroundTruth,
    Totals,
    append_activity,
    delete_older_than,
    generate,
    ground_truth,
    iter_lines,
)

CCUSAGE_VERSION = "20.0.24"
REPO = Path(__file__).resolve().parent.parent
END = datetime(2026, 11, 21, 20, 7, tzinfo=UTC)

Ccusage = Callable[..., Any]


# --------------------------------------------------------------------------------------
# Running ccusage
# --------------------------------------------------------------------------------------


def _ccusage_command() -> list[str] | None:
    if configured := os.environ.get("CCUSAGE_BIN"):
        return shlex.split(configured)
    if found := shutil.which("ccusage"):
        return [found]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    for prefix in (REPO, cache / "ccusage-import-tests" / f"ccusage-{CCUSAGE_VERSION}"):
        local = prefix / "node_modules" / ".bin" / "ccusage"
        if local.exists():
            return [str(local)]
    if npx := shutil.which("npx"):
        return [npx, "-y", f"ccusage@{CCUSAGE_VERSION}"]
    return None


@pytest.fixture(scope="session")
def ccusage(tmp_path_factory: pytest.TempPathFactory) -> Ccusage:
    """``ccusage(root, "claude", "daily", ...)`` -> parsed JSON, with CLAUDE_CONFIG_DIR=root."""
    command = _ccusage_command()
    if command is None:
        pytest.skip("ccusage not found: set CCUSAGE_BIN, put ccusage on PATH or install npx")
    home = tmp_path_factory.mktemp("empty-home")
    env = dict(os.environ, HOME=str(home), LOG_LEVEL="0")
    env.pop("XDG_CONFIG_HOME", None)
    # npx keeps its cache under HOME; keep using the real one instead of the empty HOME.
    env.setdefault("npm_config_cache", str(Path.home() / ".npm"))

    def run(root: Path | None, *args: str) -> Any:
        if root is not None:
            env["CLAUDE_CONFIG_DIR"] = str(root)
        done = subprocess.run([*command, *args], env=env, cwd=home, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command + list(args)} failed:\n{done.stderr}"
        return json.loads(done.stdout) if "--json" in args else done.stdout

    version = run(None, "--version").split()[-1]
    assert version == CCUSAGE_VERSION, (
        f"{command} is ccusage {version}; the ground truth follows {CCUSAGE_VERSION} "
        "(set CCUSAGE_BIN to a 20.0.24 binary)"
    )
    return run


def _totals(row: dict) -> Totals:
    counts = row.get("tokenCounts", row)
    totals = Totals(
        input=counts["inputTokens"],
        output=counts["outputTokens"],
        cache_creation=counts.get("cacheCreationTokens", counts.get("cacheCreationInputTokens")),
        cache_read=counts.get("cacheReadTokens", counts.get("cacheReadInputTokens")),
    )
    assert row["totalTokens"] == totals.total
    return totals


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _assert_same(what: str, expected: dict, actual: dict) -> None:
    """Exact equality with a readable diff of the first few differing keys."""
    if expected == actual:
        return
    missing = sorted(set(expected) - set(actual), key=str)[:5]
    extra = sorted(set(actual) - set(expected), key=str)[:5]
    differ = [k for k in expected if k in actual and expected[k] != actual[k]][:5]
    lines = [f"{what}: {len(expected)} expected keys, {len(actual)} from ccusage"]
    lines += [f"  only in ground truth: {k!r} {expected[k]}" for k in missing]
    lines += [f"  only in ccusage: {k!r} {actual[k]}" for k in extra]
    lines += [f"  {k!r}: truth {expected[k]} != ccusage {actual[k]}" for k in differ]
    pytest.fail("\n".join(lines))


# --------------------------------------------------------------------------------------
# Comparing a whole data set
# --------------------------------------------------------------------------------------


def _per_model(rows: list[dict]) -> dict[str, Totals]:
    """Sum the modelBreakdowns of report rows per model name."""
    per_model: dict[str, Totals] = {}
    for row in rows:
        for part in row["modelBreakdowns"]:
            counts = Totals(
                part["inputTokens"], part["outputTokens"], part["cacheCreationTokens"], part["cacheReadTokens"]
            )
            per_model.setdefault(part["modelName"], Totals()).add(counts)
    return per_model


def _check_daily(ccusage: Ccusage, truth: GroundTruth, tz: str) -> None:
    """claude daily, daily --instances (daily loader) and monthly (main loader) in ``tz``."""
    daily = ccusage(truth.root, "claude", "daily", "--json", "--offline", "--timezone", tz)
    _assert_same(f"per day ({tz})", truth.by_day(tz), {r["date"]: _totals(r) for r in daily["daily"]})
    _assert_same("per model (daily)", truth.by_model("daily"), _per_model(daily["daily"]))
    _assert_same("overall (daily)", {"all": truth.total("daily")}, {"all": _totals(daily["totals"])})

    instances = ccusage(truth.root, "claude", "daily", "--instances", "--json", "--offline", "--timezone", tz)
    rows = [row for rows in instances.get("projects", {}).values() for row in rows]
    actual = {(r["date"], r["project"]): _totals(r) for r in rows}
    assert len(actual) == len(rows), "duplicate (date, project) rows"
    _assert_same(f"per (day, project) ({tz})", truth.by_day_project(tz), actual)

    monthly = ccusage(truth.root, "claude", "monthly", "--json", "--offline", "--timezone", tz)
    _assert_same(f"per month ({tz})", truth.by_month(tz), {r["month"]: _totals(r) for r in monthly["monthly"]})
    _assert_same("overall (monthly)", {"all": truth.total("main")}, {"all": _totals(monthly["totals"])})


def _check_sessions(ccusage: Ccusage, truth: GroundTruth) -> None:
    """claude session (main loader): totals, activity span and models per session."""
    report = ccusage(truth.root, "claude", "session", "--json", "--offline", "--timezone", "UTC")
    sessions = report["sessions"]
    actual = {(s["projectPath"], s["sessionId"]): _totals(s) for s in sessions}
    assert len(actual) == len(sessions), "duplicate (projectPath, sessionId) rows"
    _assert_same("per session", truth.by_session(), actual)

    spans = {key: (_ts(first), _ts(last)) for key, (first, last) in truth.session_activity().items()}
    actual_spans = {(s["projectPath"], s["sessionId"]): (s["firstActivity"], s["lastActivity"]) for s in sessions}
    _assert_same("session first/last activity", spans, actual_spans)
    _assert_same("per model (session)", truth.by_model(), _per_model(sessions))
    _assert_same("overall (session)", {"all": truth.total("main")}, {"all": _totals(report["totals"])})


def _check_blocks(ccusage: Ccusage, truth: GroundTruth) -> None:
    report = ccusage(truth.root, "claude", "blocks", "--json", "--offline")
    blocks = [b for b in report["blocks"] if not b["isGap"]]
    expected = {
        _ts(start): (
            _ts(b.end),
            _ts(b.last_activity),
            b.entries,
            b.tokens,
            sorted(b.models),
            _ts(b.usage_limit_reset) if b.usage_limit_reset else None,
        )
        for start, b in truth.blocks().items()
    }
    actual = {
        b["startTime"]: (
            b["endTime"],
            b["actualEndTime"],
            b["entries"],
            _totals(b),
            sorted(b["models"]),
            b.get("usageLimitResetTime"),
        )
        for b in blocks
    }
    _assert_same("blocks (end, last activity, entries, tokens, models, limit reset)", expected, actual)


def _check_all(ccusage: Ccusage, truth: GroundTruth) -> None:
    _check_daily(ccusage, truth, "UTC")
    _check_sessions(ccusage, truth)
    _check_blocks(ccusage, truth)


# --------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_truth(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    root = tmp_path_factory.mktemp("default")
    return generate(root, seed=7, days=20, sessions=60, lines_per_session=60, end=END)


@pytest.fixture(scope="module")
def hostile_truth(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    root = tmp_path_factory.mktemp("hostile")
    return generate(root, seed=11, days=6, sessions=30, lines_per_session=50, projects=HOSTILE_PROJECTS, end=END)


@pytest.mark.slow
def test_default_dataset_matches_ccusage(ccusage: Ccusage, default_truth: GroundTruth) -> None:
    _check_all(ccusage, default_truth)


@pytest.mark.slow
def test_hostile_project_names_match_ccusage(ccusage: Ccusage, hostile_truth: GroundTruth) -> None:
    assert set(hostile_truth.by_project()) == set(HOSTILE_PROJECTS)
    _check_all(ccusage, hostile_truth)


@pytest.mark.slow
def test_non_utc_timezone_matches_ccusage(ccusage: Ccusage, default_truth: GroundTruth) -> None:
    assert default_truth.by_day("Asia/Tokyo") != default_truth.by_day("UTC")
    _check_daily(ccusage, default_truth, "Asia/Tokyo")


@pytest.mark.slow
def test_sidechain_replays_are_the_only_disagreement(
    ccusage: Ccusage, default_truth: GroundTruth, tmp_path: Path
) -> None:
    """ccusage 20.0.24: only daily drops sidechain replays; without them all reports agree."""
    assert default_truth.total("main").total > default_truth.total("daily").total
    truth = generate(tmp_path, seed=7, sessions=30, end=END, sidechain_replays=False)
    assert truth.stats["sidechain_replays"] == 0
    assert truth.total("daily") == truth.total("main")
    daily = ccusage(truth.root, "claude", "daily", "--json", "--offline", "--timezone", "UTC")
    session = ccusage(truth.root, "claude", "session", "--json", "--offline", "--timezone", "UTC")
    assert _totals(daily["totals"]) == _totals(session["totals"]) == truth.total()


@pytest.mark.slow
def test_append_and_delete_match_ccusage(ccusage: Ccusage, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    before = generate(tmp_path, seed=3, days=8, sessions=16, lines_per_session=40, end=now)
    after = append_activity(tmp_path, start=now - timedelta(minutes=50), minutes=45, lines=200)
    assert after.total().total > before.total().total
    assert max(e.timestamp for e in after.entries["main"]) > now - timedelta(minutes=6)
    _check_all(ccusage, after)  # the last block is active: its totals still have to match

    deleted = delete_older_than(tmp_path, now - timedelta(days=4))
    assert deleted
    pruned = ground_truth(tmp_path)
    assert 0 < pruned.total().total < after.total().total
    _check_all(ccusage, pruned)


# --------------------------------------------------------------------------------------
# The generator writes what it promises (no ccusage needed)
# --------------------------------------------------------------------------------------


def test_generated_data_contains_every_case(default_truth: GroundTruth) -> None:
    stats = default_truth.stats
    assert stats["duplicates"] > 0 and stats["cross_file_duplicates"] > 0
    assert stats["sidechain_replays"] > 0
    assert stats["rejected"] >= len(JUNK_KINDS)
    lines = [raw for _, raw in iter_lines(default_truth.root)]
    for needle in (
        b'"usage": {',
        b'"requestId":null',
        b'"input_tokens":1.0',
        b'"output_tokens":-5',
        b'"version":"unknown"',
        b'"isSidechain":true',
        b'"agentId":',
        b'"model":"<synthetic>"',
        b"Claude AI usage limit reached|",
        b'"type":"summary"',
        b'"toolUseResult":{',
        b'"ephemeral_1h_input_tokens":',
    ):
        assert any(needle in raw for raw in lines), needle
    assert any(_not_json(raw) for raw in lines)
    models = set(default_truth.by_model())
    assert len(models) == 6
    assert any("subagents" in e.file.parts for e in default_truth.entries["daily"])
    assert all(e.request_id for e in default_truth.entries["main"])


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


def test_compact_lines_and_mtimes(tmp_path: Path) -> None:
    truth = generate(tmp_path, seed=5, sessions=24, end=END)
    for _, raw in iter_lines(truth.root):
        if b'"usage": {' not in raw and not _not_json(raw):  # all but two junk kinds
            assert json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode() == raw
    for path in {path for path, _ in iter_lines(truth.root)}:
        last = path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        written = datetime.fromisoformat(json.loads(last)["timestamp"].replace("Z", "+00:00"))
        assert path.stat().st_mtime == pytest.approx(written.timestamp(), abs=0.001)
        assert written <= END


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=9, sessions=5, end=END)
    second = generate(tmp_path / "b", seed=9, sessions=5, end=END)
    files_a = [p.relative_to(tmp_path / "a") for p, _ in iter_lines(tmp_path / "a")]
    files_b = [p.relative_to(tmp_path / "b") for p, _ in iter_lines(tmp_path / "b")]
    assert files_a == files_b
    assert [raw for _, raw in iter_lines(first.root)] == [raw for _, raw in iter_lines(second.root)]
    assert first.by_session() == second.by_session()


def test_lines_total_sizes_the_data_set(tmp_path: Path) -> None:
    truth = generate(tmp_path, seed=2, lines_total=3000, lines_per_session=100, end=END)
    assert 2500 <= truth.stats["lines"] <= 3600


def test_refuses_roots_that_ccusage_misattributes(tmp_path: Path) -> None:
    # ccusage 20.0.24 names the project after the first path component called "projects".
    with pytest.raises(ValueError, match="projects"):
        generate(tmp_path / "projects" / "cfg", sessions=1, end=END)
