"""Differential checks: what the store holds for one machine against ccusage run once on every line ever written.

Used by the rolling history (tests/test_rolling.py) and the window's property test (tests/test_window_exact.py).
Days, months and project-days follow ccusage's daily loader, sessions, blocks and hours (one-hour blocks) its
session/blocks loader (they disagree about sub-agent replays: docs/design.md); months are summed from ccusage's
days, as the store sums them. Projects and sessions are compared by their keyed hashes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

from conftest import run_ccusage, sql

TOKENS = "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens"
PERIODS = ("day", "month", "project_day", "block", "hour")  # tables versioned by their total: never smaller
KINDS = (*PERIODS, "session")

Key = tuple[str, str]
Hash = Callable[[str], str]  # a project or session name -> its keyed hash, as the store's key makes it
Tables = dict[str, dict[Key, tuple[int, int, int, int]]]
Costs = dict[str, dict[Key, float]]


def stored_sql(machine: str) -> str:
    """Every stored row of a machine these checks compare, one query (each read starts the engine): kind, key,
    tokens, cost. `machine` is a test's own constant name."""
    where = f"machine_name = '{machine}'"
    return f"""
SELECT 'day' AS kind, toString(date) AS k1, '' AS k2, {TOKENS}, total_cost AS cost
FROM ccusage_usage_daily FINAL WHERE {where}
UNION ALL SELECT 'month', formatDateTime(month, '%Y-%m'), '', {TOKENS}, total_cost
FROM ccusage_usage_monthly FINAL WHERE {where}
UNION ALL SELECT 'project_day', toString(date), project_key, {TOKENS}, total_cost
FROM ccusage_usage_projects_daily FINAL WHERE {where}
UNION ALL SELECT 'session', project_key, session_key, {TOKENS}, total_cost
FROM ccusage_usage_sessions FINAL WHERE {where} AND total_tokens > 0
UNION ALL SELECT 'block', formatDateTime(start_time, '%Y-%m-%dT%H:%i:%SZ', 'UTC'), '', {TOKENS}, cost_usd
FROM ccusage_usage_blocks FINAL WHERE {where}
UNION ALL SELECT 'hour', formatDateTime(hour, '%Y-%m-%dT%H:%i:%SZ', 'UTC'), '', {TOKENS}, total_cost
FROM ccusage_usage_hourly FINAL WHERE {where}
"""


def stored(env: dict, machine: str = "laptop", apart: bool = False) -> tuple[Tables, Costs]:
    """Token counts and costs of every stored row these checks compare, per kind and key."""
    tokens: Tables = {kind: {} for kind in KINDS}
    costs: Costs = {kind: {} for kind in KINDS}
    for row in sql(env, stored_sql(machine), apart):
        key = (row["k1"], row["k2"])
        assert key not in tokens[row["kind"]], f"two stored {row['kind']} rows for {key}"
        tokens[row["kind"]][key] = (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"],
                                    row["cache_read_tokens"])
        costs[row["kind"]][key] = row["cost"]
    return tokens, costs


def store_hash(env: dict, apart: bool = False) -> Hash:
    """The keyed hash the store names projects and sessions with (HMAC-SHA256 of its key, 16 hex digits)."""
    key = bytes.fromhex(sql(env, "SELECT value FROM ccusage_settings WHERE name = 'hash_key'", apart)[0]["value"])
    return lambda name: hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:16]


def differences(what: str, want: dict, got: dict) -> list[str]:
    """Every differing key of one table, as `what key: expected X, got Y` (first ten)."""
    keys = sorted(set(want) | set(got), key=str)
    return [f"{what} {key}: expected {want.get(key)}, got {got.get(key)}" for key in keys
            if want.get(key) != got.get(key)][:10]


def assert_same(when: str, want: Tables, got: Tables) -> None:
    problems = [line for kind in want for line in differences(kind, want[kind], got[kind])]
    assert not problems, f"{when}:\n" + "\n".join(problems)


def ccusage_tables(bin_dir: Path, claude: Path, key_of: Hash, tz: str) -> tuple[Tables, Costs]:
    """ccusage's own reports on a Claude folder, keyed like the stored rows (months summed from its days)."""
    tokens: Tables = {kind: {} for kind in KINDS}
    costs: Costs = {kind: {} for kind in KINDS}

    def put(kind: str, key: Key, row: dict) -> None:
        parts = row.get("tokenCounts", row)  # blocks nest their counts, and name the cache counts ...InputTokens
        counts = (parts["inputTokens"], parts["outputTokens"],
                  parts.get("cacheCreationTokens", parts.get("cacheCreationInputTokens")),
                  parts.get("cacheReadTokens", parts.get("cacheReadInputTokens")))
        assert key not in tokens[kind], f"ccusage reports {kind} {key} twice"
        tokens[kind][key], costs[kind][key] = counts, row.get("totalCost", row.get("costUSD"))

    for row in run_ccusage(bin_dir, claude, "daily", "--timezone", tz)["daily"]:
        put("day", (row["date"], ""), row)
        month = (row["date"][:7], "")
        sums = tokens["month"].get(month, (0, 0, 0, 0))
        tokens["month"][month] = (sums[0] + row["inputTokens"], sums[1] + row["outputTokens"],
                                  sums[2] + row["cacheCreationTokens"], sums[3] + row["cacheReadTokens"])
        costs["month"][month] = costs["month"].get(month, 0.0) + row["totalCost"]
    instances = run_ccusage(bin_dir, claude, "daily", "--instances", "--timezone", tz)["projects"]
    for project, rows in instances.items():
        for row in rows:
            put("project_day", (row["date"], key_of(project)), row)
    for row in run_ccusage(bin_dir, claude, "session", "--timezone", tz)["sessions"]:
        if row["totalTokens"]:
            put("session", (key_of(row["projectPath"]), key_of(row["sessionId"])), row)
    for kind, length in (("block", "5"), ("hour", "1")):
        for row in run_ccusage(bin_dir, claude, "blocks", "--session-length", length)["blocks"]:
            if not row["isGap"]:
                put(kind, (row["startTime"].replace(".000Z", "Z"), ""), row)
    return tokens, costs


def shrunk(before: Tables, after: Tables, kinds: tuple[str, ...] = ("day", "month")) -> list[str]:
    """Stored periods whose total went down between two reads (history is never lost)."""
    return [f"{kind} {key}: was {sum(old)}, now {sum(after[kind].get(key, ()))}" for kind in kinds
            for key, old in before.get(kind, {}).items() if sum(after[kind].get(key, ())) < sum(old)]
