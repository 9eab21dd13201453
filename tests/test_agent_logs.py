"""The Codex, Gemini CLI and OpenCode generators' ground truth must equal the pinned ccusage 20.0.24.

Per-agent reports (``ccusage <agent> daily|session``) are compared per day, per (day, model) and per session,
in UTC and in a non-UTC zone; the unified reports (``daily --by-agent`` and ``session --sections
daily,session --by-agent``) on a mixed machine (Claude transcripts from transcripts.py plus the three agents)
are compared per agent. Each data set is generated once and each report run once per session.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agent_logs import (
    ENV_VARS,
    RECORDING_DATASET,
    RECORDINGS,
    AgentTruth,
    Usage,
    append_codex_activity,
    append_gemini_activity,
    append_opencode_activity,
    codex_truth,
    delete_older_than,
    gemini_truth,
    generate_codex,
    generate_gemini,
    generate_machine,
    generate_opencode,
    machine_env,
    run_ccusage,
)
from conftest import CCUSAGE_VERSION
from transcripts import GroundTruth

END = datetime(2026, 11, 21, 20, 7, tzinfo=UTC)
LOCAL_ZONE = "America/Los_Angeles"  # Codex rollout paths of the default data set use this zone
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agents"
AGENTS = ("codex", "gemini", "opencode")
GENERATORS: dict[str, Callable[..., AgentTruth]] = {
    "codex": generate_codex,
    "gemini": generate_gemini,
    "opencode": generate_opencode,
}

Ccusage = Callable[..., dict]


# --------------------------------------------------------------------------------------
# Running ccusage (once per environment and arguments)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ccusage_uncached(ccusage_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Ccusage:
    """``ccusage(env, *args)`` -> parsed JSON, with an empty HOME, TZ=UTC and only ``env``'s agent folders."""
    binary = ccusage_bin_dir / "ccusage"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert version.split()[-1] == CCUSAGE_VERSION, f"{binary} is {version!r}; the truth follows {CCUSAGE_VERSION}"
    home = tmp_path_factory.mktemp("ccusage-home")

    def run(env: dict[str, str], *args: str) -> dict:
        return run_ccusage(str(binary), env, home, *args)

    return run


@pytest.fixture(scope="session")
def ccusage(ccusage_uncached: Ccusage) -> Ccusage:
    """Like ``ccusage_uncached``, but each (environment, arguments) runs once: for data sets nobody changes."""
    reports: dict[tuple, dict] = {}

    def run(env: dict[str, str], *args: str) -> dict:
        key = (tuple(sorted(env.items())), args)
        if key not in reports:
            reports[key] = ccusage_uncached(env, *args)
        return reports[key]

    return run


@pytest.fixture(scope="session")
def empty_machine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty-machine")


def _env(empty_machine: Path, agent: str, root: Path) -> dict[str, str]:
    """Only ``agent``'s data: every other agent's variable points at an empty folder."""
    return machine_env(empty_machine) | {ENV_VARS[agent]: str(root)}


def _report(ccusage: Ccusage, env: dict[str, str], agent: str, report: str, tz: str = "UTC") -> dict:
    return ccusage(env, agent, report, "--json", "--offline", "--timezone", tz)


# --------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def truths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AgentTruth]:
    """The default data set of each agent (Codex paths in LOCAL_ZONE)."""
    root = tmp_path_factory.mktemp("agents")
    return {
        "codex": generate_codex(root / "codex", seed=7, end=END, tz=LOCAL_ZONE),
        "gemini": generate_gemini(root / "gemini", seed=7, end=END),
        "opencode": generate_opencode(root / "opencode", seed=7, end=END),
    }


@pytest.fixture(scope="session")
def machine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A machine with Claude Code (sidechain replays included) and the three agents."""
    root = tmp_path_factory.mktemp("machine")
    return root, generate_machine(root, seed=3, days=6, end=END, scale=2)


# --------------------------------------------------------------------------------------
# Reading reports
# --------------------------------------------------------------------------------------


def _usage(row: dict, agent: str) -> Usage:
    """A report row as Usage; outside Codex, reasoning is what totalTokens holds beyond the four counts."""
    usage = Usage(row["inputTokens"], row["outputTokens"], row["cacheCreationTokens"], row["cacheReadTokens"])
    usage.total = row["totalTokens"]
    if agent == "codex" and "reasoningOutputTokens" in row:
        usage.reasoning = row["reasoningOutputTokens"]
    elif agent != "codex":
        usage.reasoning = usage.total - (usage.input + usage.output + usage.cache_creation + usage.cache_read)
    return usage


def _four(usage: Usage) -> tuple[int, int, int, int]:
    """What a modelBreakdowns entry carries (no totals)."""
    return usage.input, usage.output, usage.cache_creation, usage.cache_read


def _breakdowns(rows: list[dict], key: str) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    found = {}
    for row in rows:
        for part in row["modelBreakdowns"]:
            counts = (part["inputTokens"], part["outputTokens"], part["cacheCreationTokens"], part["cacheReadTokens"])
            assert (row[key], part["modelName"]) not in found
            found[(row[key], part["modelName"])] = counts
    return found


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


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_daily(ccusage: Ccusage, env: dict[str, str], truth: AgentTruth, tz: str) -> None:
    agent = truth.agent
    daily = _report(ccusage, env, agent, "daily", tz)
    _assert_same(f"{agent} per day ({tz})", truth.by_day(tz), {r["date"]: _usage(r, agent) for r in daily["daily"]})
    _assert_same(f"{agent} overall", {"all": truth.total()}, {"all": _usage(daily["totals"], agent)})
    if agent == "codex":  # a full usage per (day, model), and which models ccusage had to assume
        actual = {(r["date"], m): _usage(u, agent) for r in daily["daily"] for m, u in r["models"].items()}
        _assert_same(f"codex per (day, model) ({tz})", truth.by_day_model(tz), actual)
        if tz == "UTC":
            flagged = {(r["date"], m) for r in daily["daily"] for m, u in r["models"].items() if u["isFallback"]}
            assert flagged == truth.fallback_models()
    else:
        expected = {key: _four(usage) for key, usage in truth.by_day_model(tz).items()}
        _assert_same(f"{agent} per (day, model) ({tz})", expected, _breakdowns(daily["daily"], "date"))


def _check_sessions(ccusage: Ccusage, env: dict[str, str], truth: AgentTruth) -> None:
    agent = truth.agent
    report = _report(ccusage, env, agent, "session")
    sessions = report["sessions"]
    actual = {s["sessionId"]: _usage(s, agent) for s in sessions}
    assert len(actual) == len(sessions), "duplicate session rows"
    _assert_same(f"{agent} per session", truth.by_session(), actual)
    overall = {"all": _usage(report["totals"], agent)}
    _assert_same(f"{agent} overall (session)", {"all": truth.total("session")}, overall)
    if agent == "codex":
        spans = {s: _ts(t) for s, t in truth.last_activity().items()}
        _assert_same("codex lastActivity", spans, {s["sessionId"]: s["lastActivity"] for s in sessions})
        for row in sessions:
            assert row["directory"] == row["sessionId"].rpartition("/")[0]
            assert row["sessionFile"] == row["sessionId"].rpartition("/")[2]
        per_model = {(s["sessionId"], m): _usage(u, agent) for s in sessions for m, u in s["models"].items()}
        _assert_same("codex per (session, model)", truth.by_session_model(), per_model)
    else:
        expected = {key: _four(usage) for key, usage in truth.by_session_model().items()}
        _assert_same(f"{agent} per (session, model)", expected, _breakdowns(sessions, "sessionId"))


# --------------------------------------------------------------------------------------
# Per-agent reports
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", LOCAL_ZONE])
@pytest.mark.parametrize("agent", AGENTS)
def test_daily_matches_ccusage(
    ccusage: Ccusage, truths: dict[str, AgentTruth], empty_machine: Path, agent: str, tz: str
) -> None:
    truth = truths[agent]
    assert truth.by_day(tz) != truth.by_day("UTC" if tz != "UTC" else LOCAL_ZONE)  # the zone matters
    _check_daily(ccusage, _env(empty_machine, agent, truth.root), truth, tz)


@pytest.mark.parametrize("agent", AGENTS)
def test_sessions_match_ccusage(
    ccusage: Ccusage, truths: dict[str, AgentTruth], empty_machine: Path, agent: str
) -> None:
    _check_sessions(ccusage, _env(empty_machine, agent, truths[agent].root), truths[agent])


def test_codex_session_ids_are_local_date_paths(truths: dict[str, AgentTruth]) -> None:
    truth = truths["codex"]
    assert truth.stats["path_date_differs"] > 0  # local dates that are not the UTC date
    for session in truth.by_session():
        folder, _, name = session.rpartition("/")
        assert name.startswith("rollout-") and (folder == "" or folder.count("/") == 2)
        if folder:
            assert name[len("rollout-") : len("rollout-") + 10] == folder.replace("/", "-")


def test_opencode_stored_costs_are_used(
    ccusage: Ccusage, truths: dict[str, AgentTruth], empty_machine: Path
) -> None:
    """A session made only of messages with a stored cost costs exactly their sum."""
    truth = truths["opencode"]
    stored = truth.stored_costs()
    assert stored
    report = _report(ccusage, _env(empty_machine, "opencode", truth.root), "opencode", "session")
    costs = {row["sessionId"]: row["totalCost"] for row in report["sessions"]}
    for session, cost in stored.items():
        assert costs[session] == pytest.approx(cost, rel=1e-9, abs=1e-12)


def test_codex_archived_copy_is_the_only_disagreement(
    ccusage: Ccusage, truths: dict[str, AgentTruth], empty_machine: Path, tmp_path: Path
) -> None:
    """ccusage 20.0.24: a rollout in both sessions/ and archived_sessions/ counts once per day, twice per
    session; without such a copy the daily and session totals agree."""
    truth = truths["codex"]
    assert truth.stats["cross_file_duplicates"] > 0
    assert truth.total("session").total > truth.total("daily").total
    clean = generate_codex(tmp_path, seed=7, end=END, tz=LOCAL_ZONE, archived_copies=False)
    assert clean.stats["cross_file_duplicates"] == 0 and clean.stats["archived_files"] > 0
    assert clean.total("daily") == clean.total("session")
    env = _env(empty_machine, "codex", tmp_path)
    daily, session = _report(ccusage, env, "codex", "daily"), _report(ccusage, env, "codex", "session")
    assert _usage(daily["totals"], "codex") == _usage(session["totals"], "codex") == clean.total()


# --------------------------------------------------------------------------------------
# Unified reports on a mixed machine
# --------------------------------------------------------------------------------------


def _claude(truth: GroundTruth, loader: str, by: Callable) -> dict:
    """Claude totals as unified rows carry them: (input, output, cache_creation, cache_read, total)."""
    grouped: dict = {}
    for entry in truth.entries[loader]:
        t = entry.tokens
        counts = grouped.setdefault(by(entry), [0, 0, 0, 0, 0])
        for index, value in enumerate((t.input, t.output, t.cache_creation, t.cache_read, t.total)):
            counts[index] += value
    return {key: tuple(value) for key, value in grouped.items()}


def test_unified_daily_by_agent_matches_each_agent(ccusage: Ccusage, machine: tuple[Path, dict]) -> None:
    root, truths = machine
    env = machine_env(root)
    report = ccusage(env, "daily", "--by-agent", "--json", "--offline", "--timezone", "UTC")
    actual = {(row["period"], part["agent"]): _usage(part, part["agent"]).counts()
              for row in report["daily"] for part in row["agents"]}
    claude = truths["claude"]
    assert claude.total("daily") != claude.total("main")  # sidechain replays: only the daily loader drops them
    expected = {(day, "claude"): counts
                for day, counts in _claude(claude, "daily", lambda e: e.timestamp.date().isoformat()).items()}
    for agent in AGENTS:
        expected |= {(day, agent): usage.counts() for day, usage in truths[agent].by_day().items()}
    _assert_same("unified daily (day, agent)", expected, actual)
    for row in report["daily"]:
        assert row["agent"] == "all" and row["metadata"]["agents"] == [p["agent"] for p in row["agents"]]
        assert all("reasoningOutputTokens" not in part for part in row["agents"])
        assert row["totalTokens"] == sum(part["totalTokens"] for part in row["agents"])
    for agent in ("claude", *AGENTS):  # the per-agent reports price each day the same way
        own = ccusage(env, agent, "daily", "--json", "--offline", "--timezone", "UTC")["daily"]
        own_costs = {row["date"]: row.get("costUSD", row.get("totalCost")) for row in own}
        unified = {row["period"]: part["totalCost"] for row in report["daily"] for part in row["agents"]
                   if part["agent"] == agent}
        assert unified.keys() == own_costs.keys()
        for day, cost in unified.items():
            assert cost == pytest.approx(own_costs[day], rel=1e-9, abs=1e-12), (agent, day)


def test_unified_sessions_match_each_agent(ccusage: Ccusage, machine: tuple[Path, dict]) -> None:
    root, truths = machine
    env = machine_env(root)
    report = ccusage(env, "session", "--sections", "daily,session", "--by-agent", "--json", "--offline",
                     "--timezone", "UTC")
    rows = report["session"]
    actual = {(row["agent"], row["period"]): _usage(row, row["agent"]).counts() for row in rows}
    assert len(actual) == len(rows)
    claude = truths["claude"]
    expected = {("claude", session): counts
                for session, counts in _claude(claude, "main", lambda e: e.session).items()}
    activity = {("claude", s): _ts(last) for (_, s), (_, last) in claude.session_activity().items()}
    for agent in AGENTS:
        expected |= {(agent, s): usage.counts() for s, usage in truths[agent].by_session().items()}
        if agent != "gemini":
            activity |= {(agent, s): _ts(last) for s, last in truths[agent].last_activity().items()}
    _assert_same("unified sessions (agent, session)", expected, actual)
    _assert_same("unified lastActivity", activity,
                 {(r["agent"], r["period"]): r["metadata"]["lastActivity"] for r in rows if "metadata" in r})
    reasoning = {(r["agent"], r["period"]): r["metadata"]["reasoningOutputTokens"] for r in rows
                 if r["agent"] == "codex"}
    assert reasoning == {("codex", s): u.reasoning for s, u in truths["codex"].by_session().items()}
    # The daily section is the daily report; the totals are the session section's.
    daily = ccusage(env, "daily", "--by-agent", "--json", "--offline", "--timezone", "UTC")
    assert report["daily"] == daily["daily"]
    session_total = sum(counts[4] for counts in expected.values())
    assert report["totals"]["totalTokens"] == session_total != daily["totals"]["totalTokens"]


# --------------------------------------------------------------------------------------
# The traps are there, and they matter
# --------------------------------------------------------------------------------------

TRAPS = {
    "codex": ("info_null", "unchanged_totals", "replayed", "forks", "subagents", "model_changes",
              "fallback_events", "archived_files", "cross_file_duplicates", "path_date_differs"),
    "gemini": ("json_files", "jsonl_files", "subagent_files", "reappended", "set_records", "set_messages",
               "rewinds", "no_tokens", "with_cached", "with_thoughts", "with_tool", "repeated_in_resumed"),
    "opencode": ("json_in_db", "json_only", "user_messages", "empty_messages", "with_reasoning",
                 "with_stored_cost", "with_recorded_total", "parts", "subsessions"),
}


@pytest.mark.parametrize("agent", AGENTS)
def test_traps_are_present_and_a_naive_count_differs(
    ccusage: Ccusage, truths: dict[str, AgentTruth], empty_machine: Path, agent: str
) -> None:
    truth = truths[agent]
    absent = [name for name in TRAPS[agent] if truth.stats[name] <= 0]
    assert not absent, f"{agent}: no {absent} in the data set"
    reported = _usage(_report(ccusage, _env(empty_machine, agent, truth.root), agent, "daily")["totals"], agent)
    assert reported.total == truth.total().total
    assert truth.naive.total > reported.total * 1.05  # ignoring the rules over-counts


# --------------------------------------------------------------------------------------
# Appending and deleting
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
def test_append_and_delete_match_ccusage(
    ccusage_uncached: Ccusage, empty_machine: Path, tmp_path: Path, agent: str
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    before = GENERATORS[agent](tmp_path, seed=5, days=8, sessions=8, turns_per_session=3, end=now - timedelta(hours=1))
    append = {"codex": append_codex_activity, "gemini": append_gemini_activity,
              "opencode": append_opencode_activity}[agent]
    after = append(tmp_path, start=now - timedelta(minutes=50), minutes=45)
    assert after.total().total > before.total().total
    assert now - timedelta(minutes=50) < max(e.timestamp for e in after.events["daily"]) <= now - timedelta(minutes=5)
    grown = {s for s, u in after.by_session().items() if s in before.by_session() and u != before.by_session()[s]}
    assert grown, "the newest session was continued"
    env = _env(empty_machine, agent, tmp_path)
    _check_daily(ccusage_uncached, env, after, "UTC")
    _check_sessions(ccusage_uncached, env, after)
    if agent == "opencode":
        with pytest.raises(ValueError, match="one database"):
            delete_older_than(tmp_path, now)
        return
    deleted = delete_older_than(tmp_path, now - timedelta(days=4))
    assert deleted
    pruned = {"codex": codex_truth, "gemini": gemini_truth}[agent](tmp_path)
    assert 0 < pruned.total().total < after.total().total
    _check_daily(ccusage_uncached, env, pruned, "UTC")
    _check_sessions(ccusage_uncached, env, pruned)


# --------------------------------------------------------------------------------------
# The generators write what they promise (no ccusage needed)
# --------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, object]:
    """Every file's bytes (the database as SQL), keyed by relative path."""
    files: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".db":
            connection = sqlite3.connect(path)
            files[str(path.relative_to(root))] = list(connection.iterdump())
            connection.close()
        else:
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


@pytest.mark.parametrize("agent", AGENTS)
def test_same_seed_same_bytes(tmp_path: Path, agent: str) -> None:
    first = GENERATORS[agent](tmp_path / "a", seed=9, sessions=5, end=END)
    second = GENERATORS[agent](tmp_path / "b", seed=9, sessions=5, end=END)
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    assert first.by_session() == second.by_session()
    other = GENERATORS[agent](tmp_path / "c", seed=10, sessions=5, end=END)
    assert other.by_session() != first.by_session()


def test_mtimes_are_the_last_activity(truths: dict[str, AgentTruth]) -> None:
    for truth in truths.values():
        assert max(event.timestamp for event in truth.events["daily"]) <= END
    codex = truths["codex"].root
    for path in codex.rglob("*.jsonl"):
        lines = path.read_bytes().rstrip(b"\n").split(b"\n")
        for raw in lines:  # compact JSON, as Codex writes it
            assert json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode() == raw
        last = datetime.fromisoformat(json.loads(lines[-1])["timestamp"].replace("Z", "+00:00"))
        assert path.stat().st_mtime == pytest.approx(last.timestamp(), abs=0.001)
        assert last <= END
    for path in (p for p in truths["gemini"].root.rglob("*.json*") if "chats" in p.parts):
        stamps = [datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
                  for s in _iso_strings(path.read_text(encoding="utf-8"))]
        assert path.stat().st_mtime == pytest.approx(max(stamps), abs=0.001)
    opencode = truths["opencode"].root
    connection = sqlite3.connect(opencode / "opencode.db")
    latest = connection.execute("SELECT max(time_updated) FROM message").fetchone()[0]
    connection.close()
    assert (opencode / "opencode.db").stat().st_mtime == pytest.approx(latest / 1000, abs=0.001)
    for path in (opencode / "storage" / "message").rglob("*.json"):
        times = json.loads(path.read_text(encoding="utf-8"))["time"]
        assert path.stat().st_mtime == pytest.approx(times.get("completed", times["created"]) / 1000, abs=0.001)


def _iso_strings(text: str) -> list[str]:
    """Every ``"2026-...Z"`` timestamp string in a file."""
    found, start = [], 0
    while (at := text.find('"20', start)) >= 0:
        end = text.find('"', at + 1)
        candidate = text[at + 1 : end]
        if len(candidate) == 24 and candidate.endswith("Z") and candidate[10] == "T":
            found.append(candidate)
        start = end + 1
    return found


@pytest.mark.parametrize("agent", AGENTS)
def test_events_total_sizes_the_data_set(tmp_path: Path, agent: str) -> None:
    truth = GENERATORS[agent](tmp_path, seed=2, days=30, events_total=1200, end=END)
    assert 800 <= len(truth.events["daily"]) <= 1800


# --------------------------------------------------------------------------------------
# The recordings in tests/fixtures/agents are what the README says
# --------------------------------------------------------------------------------------


def test_recordings_are_reproducible(ccusage: Ccusage, tmp_path: Path) -> None:
    """Regenerating the recording data set and re-running each command gives the recorded JSON."""
    generate_machine(tmp_path, **RECORDING_DATASET)
    env = machine_env(tmp_path)
    for name, args in RECORDINGS.items():
        recorded = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        assert ccusage(env, *args) == recorded, f"{name}: regenerate with python tests/agent_logs.py record"
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name, args in RECORDINGS.items():
        assert name in readme and " ".join(args) in readme, name
