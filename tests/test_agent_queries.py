"""The coding-agent dimension on the read side: the named queries' `agent` parameter and agent splits, the HTML
dashboard's agent filter and cost-by-agent chart, and the Grafana dashboard's agent variable, on a real store.

One store serves the module: two machines import generated logs with the real importer and the real pinned ccusage
into one embedded chDB store. `desk` has Claude Code, Codex, Gemini CLI and OpenCode (tests/agent_logs.py
generate_machine) and is working right now (a running 5-hour block); `laptop` has Claude Code and Codex only. So a
machine's day has one row per agent, and the machines' agent sets differ. Tokens are checked against each agent's
ground truth (the generators'), costs against ccusage's own `ccusage daily --by-agent`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_logs import generate_codex, generate_machine, machine_env, run_ccusage
from browser import Browser
from conftest import QUERIES, canonical_models, ci, cli_env, named_query, run_cli, sql_many
from test_dashboard import ARTIFACTS, CHARTS_JS, GRAFANA_FILE, assert_offline_and_quiet, grafana_sql, open_page
from transcripts import append_activity, generate

AGENT_QUERIES = [q.name for q in QUERIES if any(p.name == "agent" for p in q.params)]
AGENTS = ("claude", "codex", "gemini", "opencode")
LABELS = {"claude": "Claude Code", "codex": "Codex", "gemini": "Gemini CLI", "opencode": "OpenCode"}
# Parameters that take in all of the generated history (it ends within the last 20 days); others keep defaults.
WHOLE = {"days": "60", "weeks": "20", "months": "24", "limit": "4294967295"}
USAGE_READ = re.compile(r"\b(?:FROM|JOIN)\s+(ccusage_(?:usage_\w+|model_breakdowns|models_used|v_\w+))\b", re.I)

# Queries over usage tables without an `agent` parameter, and why.
WITHOUT_AGENT = {
    "chart_pie_agent_cost": "its slices are the agents",
    "machine_freshness": "about imports, which cover every agent of a machine at once",
    "admin_claude_code_vs_local": "compares Claude Code with the Admin API's Claude Code report: agent claude only",
    "admin_estimated_vs_billed": "Claude Code beside the Admin API's Claude Code report and bill: agent claude only",
}

# For each query with an `agent` parameter whose rows add up over agents: (key columns, additive columns). With
# agent '' a query must give, per key, the sum of what it gives for each agent (a key missing counts as 0). A
# previous period's cost adds up only where every period has a row (calendars, filled series); the monthly trends
# leave months without usage out, so theirs are checked against the truth instead.
ADDITIVE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "daily_cost_30d": (("date",), ("cost_usd", "tokens")),
    "top_days": (("date",), ("cost_usd", "tokens")),  # with every day (limit = all), each agent's days add up
    "daily_tokens_90d": (("date",), ("input", "output", "cache_creation", "cache_read", "tokens", "cost_usd")),
    "daily_cost_change": (("date",), ("cost_usd", "previous_day_cost_usd")),
    "period_comparison": ((), ("current_cost_usd", "previous_cost_usd", "current_tokens", "previous_tokens")),
    "model_cost_all_time": (("model",), ("cost_usd", "input", "output", "cache_creation", "cache_read", "tokens")),
    "model_cost_daily": (("date", "model"), ("cost_usd", "tokens")),
    "model_cost_monthly": (("month", "model"), ("cost_usd", "tokens")),
    "model_comparison": (("model",), ("cost_usd", "tokens")),
    "models_in_blocks": (("model_name",), ("blocks",)),
    "project_cost": (("project_key",), ("cost_usd", "tokens")),
    "project_timeline": (("date", "project_key"), ("cost_usd", "tokens")),
    "most_active_projects": (("project_key",), ("cost_usd", "tokens", "sessions")),
    "project_model_mix": (("project_key", "model_name"), ("cost_usd", "tokens")),
    "top_sessions": (("machine_name", "agent", "session_id"), ("cost_usd", "tokens")),
    "session_stats_daily": (("date",), ("sessions", "cost_usd")),
    "session_length_distribution": (("duration",), ("sessions", "cost_usd")),
    "hourly_pattern": (("hour",), ("blocks", "cost_usd", "tokens", "entries")),
    "weekly_trend": (("week",), ("cost_usd", "tokens", "previous_week_cost_usd")),
    "monthly_trend": (("month",), ("cost_usd", "tokens", "previous_month_cost_usd")),
    "day_of_week_pattern": (("weekday",), ("total_cost_usd",)),
    "cache_efficiency": (("model",), ("input", "cache_creation", "cache_read", "cost_usd")),
    "cache_efficiency_daily": (("date",), ("cost_usd",)),
    "tokens_per_dollar": (("model",), ("cost_usd", "tokens")),
    "active_block": (("machine_name", "agent", "start_time"), ("cost_usd", "tokens")),
    "block_history": (("machine_name", "start_time"), ("cost_usd", "tokens", "entries")),
    "block_stats": (("machine_name",), ("blocks", "total_cost_usd", "usage_limit_hits")),
    "usage_limit_hits": (("machine_name", "start_time"), ("cost_usd", "tokens")),
    "dashboard_summary": ((), ("today_cost_usd", "yesterday_cost_usd", "last_7_days_cost_usd",
                               "last_30_days_cost_usd", "month_to_date_cost_usd", "all_time_cost_usd",
                               "all_time_tokens", "agents", "projects", "sessions", "active_blocks")),
    "month_to_date": ((), ("month_to_date_cost_usd", "same_days_last_month_cost_usd", "last_month_total_cost_usd")),
    "chart_line_daily_cost": (("time",), ("cost_usd", "tokens")),
    "chart_line_cost_by_machine": (("time", "machine_name"), ("cost_usd",)),
    "chart_pie_model_cost": (("label",), ("value",)),
    "chart_pie_project_cost": (("label",), ("value",)),
    "chart_pie_token_types": (("label",), ("value",)),
    "chart_bar_monthly_cost_by_model": (("month", "series"), ("value",)),
    "chart_bar_machine_cost": (("label",), ("value",)),
    "month_end_forecast": ((), ("month_to_date_cost_usd", "avg_daily_cost_usd")),
    "machine_overview": (("machine_name",), ("cost_usd", "tokens", "projects", "sessions")),
    "machine_daily_comparison": (("date", "machine_name"), ("cost_usd", "tokens")),
    "machine_ranking": (("machine_name",), ("cost_usd", "tokens")),
    "machine_top_models": (("machine_name", "model"), ("cost_usd", "tokens")),
    "machine_monthly_trend": (("machine_name", "month"), ("cost_usd", "tokens")),
    "machine_shared_projects": (("project_key",), ("cost_usd",)),
    "agent_summary": (("agent", "machine_name"), ("cost_usd", "tokens", "input", "output", "cache_creation",
                                                  "cache_read", "active_days", "sessions")),
    "agent_cost_daily": (("date", "agent"), ("cost_usd", "tokens")),
    "agent_models": (("agent", "model"), ("cost_usd", "tokens", "input", "output", "cache_creation",
                                               "cache_read")),
    "agent_monthly_trend": (("agent", "month"), ("cost_usd", "tokens")),
    "hour_weekday_cost": (("weekday", "hour_of_day"), ("cost_usd", "tokens", "active_hours")),
    "busiest_hours": (("hour_start",), ("cost_usd", "tokens", "entries")),  # every hour (limit = all)
    "day_by_hour": (("hour_of_day",), ("cost_usd", "tokens", "entries", "running_cost_usd")),  # today: desk works
    "hour_cost_daily": (("date", "hour_of_day"), ("cost_usd", "tokens", "active_hours")),
}
# Queries with an `agent` parameter whose rows do not simply add up, and how they are checked instead.
NOT_ADDITIVE = {
    "cost_forecast": "a regression line over the days: checked to run for every agent",
    "anomaly_days_by_machine": "thresholds per machine: one row per (machine, day), test below",
    "anomaly_days": "mean and deviation over the days of the agents chosen: checked to run for every agent",
    "table_row_counts": "import runs are not per agent: the usage tables add up, test below",
    "data_freshness": "one row per table, machine and agent already: agent '' is their union, test below",
}
# Queries that give one row per day (or per the named key): a machine's day has several agent rows now.
ONE_ROW_PER = {
    "daily_cost_30d": ("date",), "daily_tokens_90d": ("date",), "daily_cost_change": ("date",),
    "top_days": ("date",), "anomaly_days": ("date",), "session_stats_daily": ("date",),
    "cache_efficiency_daily": ("date",), "chart_line_daily_cost": ("time",), "cost_forecast": ("date",),
    "weekly_trend": ("week",), "monthly_trend": ("month",), "day_of_week_pattern": ("weekday",),
    "machine_daily_comparison": ("date", "machine_name"), "chart_line_cost_by_machine": ("time", "machine_name"),
    "anomaly_days_by_machine": ("machine_name", "date"), "machine_monthly_trend": ("machine_name", "month"),
    "machine_overview": ("machine_name",), "machine_ranking": ("machine_name",), "chart_bar_machine_cost": ("label",),
    "agent_cost_daily": ("date", "agent"), "agent_summary": ("agent", "machine_name"),
    "agent_monthly_trend": ("agent", "month"), "model_cost_daily": ("date", "model"),
}


# ----------------------------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------------------------


def counts(totals: Any) -> tuple[int, int, int, int, int]:
    """(input, output, cache write, cache read, total) of a transcripts.Totals or an agent_logs.Usage."""
    return totals.input, totals.output, totals.cache_creation, totals.cache_read, totals.total


@dataclass
class Machine:
    name: str
    env: dict
    truths: dict[str, Any]  # agent: its ground truth (transcripts.GroundTruth for claude, else AgentTruth)
    costs: dict[tuple[str, str], float]  # (agent, date): ccusage's own totalCost

    def days(self, agent: str) -> dict[str, tuple[int, ...]]:
        return {day: counts(t) for day, t in self.truths[agent].by_day().items()} if agent in self.truths else {}

    def sessions(self, agent: str) -> int:
        return len(self.truths[agent].by_session()) if agent in self.truths else 0


@dataclass
class AgentStore:
    machines: dict[str, Machine]
    home: Path

    @property
    def env(self) -> dict:
        return self.machines["desk"].env

    def days(self, agent: str | None = None, machine: str | None = None) -> dict[str, tuple[int, ...]]:
        """Token counts per day, summed over the chosen agents and machines (None: all)."""
        summed: dict[str, list[int]] = defaultdict(lambda: [0] * 5)
        for m in self.machines.values():
            for a in AGENTS:
                if machine in (None, m.name) and agent in (None, a):
                    for day, values in m.days(a).items():
                        summed[day] = [x + y for x, y in zip(summed[day], values, strict=True)]
        return {day: tuple(values) for day, values in summed.items()}

    def cost(self, agent: str | None = None, machine: str | None = None, days: Iterable[str] | None = None) -> float:
        chosen = None if days is None else set(days)
        return sum(cost for m in self.machines.values() if machine in (None, m.name)
                   for (a, day), cost in m.costs.items() if agent in (None, a) and (chosen is None or day in chosen))

    def answers(self, asked: dict[Any, tuple[str, dict[str, str]]]) -> dict[Any, list[dict]]:
        """Rows of named queries (label: name and parameters), as `--query` runs them, in one opening of the store."""
        labels = list(asked)  # any hashable label; sql_many's are text
        rows = sql_many(self.env, {str(index): named_query(*asked[label]) for index, label in enumerate(labels)})
        return {label: rows[str(index)] for index, label in enumerate(labels)}

    def query(self, name: str, **params: str) -> list[dict]:
        return self.answers({name: (name, params)})[name]


def whole(name: str, **extra: str) -> dict[str, str]:
    """The parameters that take in the whole generated history, for the ones the query declares."""
    declared = {p.name for p in ci.find_query(QUERIES, name).params}
    return {key: value for key, value in {**WHOLE, **extra}.items() if key in declared}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> AgentStore:
    base = tmp_path_factory.mktemp("agent-queries")
    home = base / "home"
    home.mkdir()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    desk, laptop = base / "desk", base / "laptop"
    truths = {"desk": generate_machine(desk, seed=21, days=12, end=now - dt.timedelta(hours=6))}
    # desk is working now: its new Claude Code activity opens a 5-hour block that is still running
    truths["desk"]["claude"] = append_activity(desk / "claude", start=now - dt.timedelta(minutes=30), minutes=25)
    truths["laptop"] = {
        "claude": generate(laptop / "claude", seed=31, days=20, sessions=10, end=now - dt.timedelta(hours=2)),
        "codex": generate_codex(laptop / "codex", seed=32, days=8, end=now - dt.timedelta(hours=2)),
    }
    machines = {}
    for name, root in {"desk": desk, "laptop": laptop}.items():
        variables = machine_env(root)
        env = cli_env(ccusage_bin_dir, home, base / "store" / "chdb", root / "claude", name, **variables)
        done = run_cli(env, "--no-hash-projects")
        assert done.returncode == 0, done.stdout + done.stderr
        report = run_ccusage(str(ccusage_bin_dir / "ccusage"), {**variables, "CLAUDE_CONFIG_DIR": str(root / "claude")},
                             home, "daily", "--by-agent", "--json", "--offline", "--timezone", "UTC")
        costs = {(item["agent"], day["period"]): item.get("totalCost", item.get("costUSD"))
                 for day in report["daily"] for item in day["agents"]}
        assert {agent for agent, _ in costs} == set(truths[name])
        machines[name] = Machine(name, env, truths[name], costs)
    return AgentStore(machines, home)


@pytest.fixture(scope="module")
def answers(store: AgentStore) -> dict[tuple[str, str], list[dict]]:
    """Every query with an `agent` parameter over the whole history, for agent '' and for each agent."""
    return store.answers({(name, agent): (name, whole(name, agent=agent))
                          for name in AGENT_QUERIES for agent in ("", *AGENTS)})


# ----------------------------------------------------------------------------------------------------------------
# The parameter (pure)
# ----------------------------------------------------------------------------------------------------------------


def test_every_query_over_usage_takes_an_agent_the_way_it_takes_a_machine():
    reads_usage = {q.name for q in QUERIES if USAGE_READ.search(q.sql)}
    assert set(WITHOUT_AGENT) <= reads_usage, "WITHOUT_AGENT names a query that does not read usage"
    assert sorted(reads_usage - set(WITHOUT_AGENT)) == sorted(AGENT_QUERIES)
    for query in QUERIES:
        agent = next((p for p in query.params if p.name == "agent"), None)
        if agent:
            assert (agent.type, agent.default) == ("String", ""), query.name
            assert query.sql.count("{agent:String}") == 2 * query.sql.count("({agent:String} = '' OR "), query.name
            assert "agent" in query.description, query.name
    assert sorted(ADDITIVE.keys() | NOT_ADDITIVE.keys()) == sorted(AGENT_QUERIES)
    assert not ADDITIVE.keys() & NOT_ADDITIVE.keys()


# ----------------------------------------------------------------------------------------------------------------
# Every query, every agent
# ----------------------------------------------------------------------------------------------------------------


def keyed(rows: list[dict], key: tuple[str, ...], columns: tuple[str, ...]) -> dict[tuple, list[float]]:
    """Additive columns per key; a key given twice is an error (it would be double counted)."""
    result: dict[tuple, list[float]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        assert k not in result, f"key {k} twice"
        result[k] = [row[c] or 0 for c in columns]
    return result


@pytest.mark.parametrize("name", sorted(ADDITIVE))
def test_all_agents_are_the_sum_of_each_agent(answers: dict, name: str):
    key, columns = ADDITIVE[name]
    everyone = keyed(answers[name, ""], key, columns)
    summed: dict[tuple, list[float]] = defaultdict(lambda: [0] * len(columns))
    for agent in AGENTS:
        for k, values in keyed(answers[name, agent], key, columns).items():
            summed[k] = [x + y for x, y in zip(summed[k], values, strict=True)]
    for k in everyone.keys() | summed.keys():
        expected = summed.get(k, [0] * len(columns))
        assert everyone.get(k, [0] * len(columns)) == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, k)
    assert any(any(values) for values in everyone.values()), f"{name}: nothing to add up"


def test_every_agent_query_runs_for_each_agent_and_only_claude_code_has_projects_and_blocks(answers: dict):
    claude_only = {"models_in_blocks", "project_cost", "project_timeline", "most_active_projects",
                   "project_model_mix", "hourly_pattern", "active_block", "block_history", "block_stats",
                   "usage_limit_hits", "chart_pie_project_cost", "machine_shared_projects", "hour_weekday_cost",
                   "busiest_hours", "day_by_hour", "hour_cost_daily"}
    for name in AGENT_QUERIES:
        for agent in AGENTS:
            rows = answers[name, agent]
            if name in claude_only and agent != "claude":
                assert not [r for r in rows if any(r.get(c) for c in ("blocks", "cost_usd", "value", "tokens"))], (
                    name, agent)
    assert len(answers["active_block", "claude"]) == 1  # desk's running block
    assert {r["agent"] for r in answers["active_block", ""]} == {"claude"}
    for agent in AGENTS:  # the regression runs on each agent's own days
        assert [r["kind"] for r in answers["cost_forecast", agent]].count("forecast") == 7


def test_per_agent_days_equal_each_agents_truth_and_ccusages_costs(store: AgentStore, answers: dict):
    for agent in ("", *AGENTS):
        truth = store.days(agent or None)
        rows = answers["daily_tokens_90d", agent]
        assert {r["date"]: (r["input"], r["output"], r["cache_creation"], r["cache_read"], r["tokens"])
                for r in rows} == truth, agent
        cost = {r["date"]: r["cost_usd"] for r in answers["daily_cost_30d", agent]}
        assert cost == pytest.approx({day: store.cost(agent or None, days=[day]) for day in truth}, rel=1e-9), agent
    one = store.query("daily_cost_30d", **whole("daily_cost_30d", agent="codex", machine="laptop"))
    assert {r["date"]: r["tokens"] for r in one} == {d: c[4] for d, c in store.days("codex", "laptop").items()}


def test_agent_splits_equal_the_truth(store: AgentStore, answers: dict):
    machines = store.machines.values()
    summary = {(r["agent"], r["machine_name"]): r for r in answers["agent_summary", ""]}
    assert set(summary) == {(a, m.name) for m in machines for a in m.truths}
    for (agent, name), row in summary.items():
        machine = store.machines[name]
        days = machine.days(agent)
        assert (row["input"], row["output"], row["cache_creation"], row["cache_read"], row["tokens"]) == tuple(
            map(sum, zip(*days.values(), strict=True)))
        assert (row["active_days"], row["first_day"], row["last_day"]) == (len(days), min(days), max(days))
        assert row["cost_usd"] == pytest.approx(store.cost(agent, name), rel=1e-9)
        assert row["sessions"] == machine.sessions(agent), (agent, name)
        reasoning = machine.truths[agent].total("session").reasoning if agent == "codex" else None
        assert row["reasoning_tokens"] == reasoning, (agent, name)
    assert sum(r["cost_share_pct"] for r in summary.values()) == pytest.approx(100, abs=0.05)
    assert [r["cost_usd"] for r in answers["agent_summary", ""]] == sorted(
        (r["cost_usd"] for r in summary.values()), reverse=True)

    daily = answers["agent_cost_daily", ""]
    assert {(r["date"], r["agent"]): r["tokens"] for r in daily} == {
        (day, agent): values[4] for agent in AGENTS for day, values in store.days(agent).items()}
    for row in daily:
        assert row["cost_usd"] == pytest.approx(store.cost(row["agent"], days=[row["date"]]), rel=1e-9)
        assert row["machines"] == sum((row["agent"], row["date"]) in m.costs for m in machines)
    shares = defaultdict(float)
    for row in daily:
        shares[row["date"]] += row["share_of_day_pct"]
    assert all(share == pytest.approx(100, abs=0.05) for share in shares.values())

    # per-model rows carry the four token counts (Gemini CLI's and OpenCode's reasoning is only in a day's total)
    # and the names of one model (claude-sonnet-4-5-20250929, claude-sonnet-4.5) are one row (issue 24.6)
    models = {(r["agent"], r["model"]): (r["input"], r["output"], r["cache_creation"], r["cache_read"])
              for r in answers["agent_models", ""]}
    canonical = canonical_models(store.env)
    expected: dict[tuple[str, str], tuple[int, ...]] = defaultdict(lambda: (0, 0, 0, 0))
    for machine in machines:
        for agent, truth in machine.truths.items():
            per_model = (truth.by_model(loader="daily") if agent == "claude" else truth.by_model()).items()
            for model, totals in per_model:
                if totals.total:
                    key = agent, canonical[model]
                    expected[key] = tuple(x + y for x, y in zip(expected[key], counts(totals)[:4], strict=True))
    assert models == expected
    assert len(set(canonical.values())) < len(canonical)  # the generated logs do name a model in several ways

    pie = {r["label"]: r["value"] for r in store.query("chart_pie_agent_cost", days="60")}
    assert pie == pytest.approx({agent: store.cost(agent) for agent in AGENTS}, rel=1e-9)


def test_monthly_trends_add_agents_up_per_machine_and_split_them_per_agent(store: AgentStore, answers: dict):
    def months(agent: str | None, machine: str | None) -> dict[str, float]:
        by_month: dict[str, float] = defaultdict(float)
        for m in store.machines.values():
            for (a, day), cost in m.costs.items():
                if agent in (None, a) and machine in (None, m.name):
                    by_month[day[:7] + "-01"] += cost
        return by_month

    for row in answers["machine_monthly_trend", ""]:
        expected = months(None, row["machine_name"])
        assert row["cost_usd"] == pytest.approx(expected[row["month"]], rel=1e-9)
        previous = (dt.date.fromisoformat(row["month"]) - dt.timedelta(days=1)).replace(day=1).isoformat()
        assert row["previous_month_cost"] == pytest.approx(expected.get(previous, 0.0), rel=1e-9, abs=1e-12)
    for row in answers["agent_monthly_trend", ""]:
        expected = months(row["agent"], None)
        assert row["cost_usd"] == pytest.approx(expected[row["month"]], rel=1e-9)
        previous = (dt.date.fromisoformat(row["month"]) - dt.timedelta(days=1)).replace(day=1).isoformat()
        assert row["previous_month_cost_usd"] == pytest.approx(expected.get(previous, 0.0), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(ONE_ROW_PER))
def test_queries_of_one_row_per_day_keep_it_with_several_agents_a_day(store: AgentStore, answers: dict, name: str):
    rows = answers[name, ""] if name in AGENT_QUERIES else store.query(name, **whole(name))
    key = ONE_ROW_PER[name]
    keys = [tuple(row[c] for c in key) for row in rows]
    assert len(keys) == len(set(keys)), f"{name}: a key twice"
    assert rows or name in ("anomaly_days", "anomaly_days_by_machine"), f"{name}: no rows"


def test_machine_queries_add_a_machines_agents_up(store: AgentStore, answers: dict):
    overview = {r["machine_name"]: r for r in answers["machine_overview", ""]}
    for name, machine in store.machines.items():
        days = store.days(machine=name)
        row = overview[name]
        assert (row["active_days"], row["first_day"], row["last_day"]) == (len(days), min(days), max(days))
        assert row["agents"] == sorted(machine.truths)
        assert row["tokens"] == sum(values[4] for values in days.values())
        assert row["sessions"] == sum(machine.sessions(agent) for agent in machine.truths)
    ranking = {r["machine_name"]: r["active_days"] for r in answers["machine_ranking", ""]}
    assert ranking == {name: len(store.days(machine=name)) for name in store.machines}
    comparison = answers["machine_daily_comparison", ""]
    assert {(r["date"], r["machine_name"]): r["tokens"] for r in comparison} == {
        (day, name): values[4] for name in store.machines for day, values in store.days(machine=name).items()}
    shares = defaultdict(float)
    for row in comparison:
        shares[row["date"]] += row["share_of_day_pct"]
    assert all(share == pytest.approx(100, abs=0.05) for share in shares.values())
    codex_days = {(r["date"], r["machine_name"]) for r in answers["machine_daily_comparison", "codex"]}
    assert codex_days == {(day, name) for name in store.machines for day in store.days("codex", name)}


def test_rows_of_tables_add_up_over_agents_and_freshness_is_per_agent(answers: dict):
    def rows(agent: str) -> dict[str, int]:
        return {r["table_name"]: r["rows"] for r in answers["table_row_counts", agent]}

    for table, count in rows("").items():
        if table == "ccusage_import_runs":  # a run imports every agent of its machine
            assert all(rows(agent)[table] == count for agent in AGENTS)
        else:
            assert count == sum(rows(agent)[table] for agent in AGENTS), table
    assert rows("gemini")["ccusage_usage_blocks"] == rows("gemini")["ccusage_usage_projects_daily"] == 0

    def freshness(agent: str) -> set[tuple]:
        return {(r["table_name"], r["machine_name"], r["agent"], r["newest_usage"])
                for r in answers["data_freshness", agent]}

    assert freshness("") == set().union(*(freshness(agent) for agent in AGENTS))
    sessions = {r["agent"]: r["newest_usage"] for r in answers["data_freshness", ""]
                if r["table_name"] == "ccusage_usage_sessions" and r["machine_name"] == "desk"}
    assert sessions["gemini"] is None and all(sessions[a] for a in ("claude", "codex", "opencode"))


def test_anomaly_days_by_machine_compare_whole_days(answers: dict):
    for agent in ("", *AGENTS):
        for row in answers["anomaly_days_by_machine", agent]:
            days = [r for r in answers["machine_daily_comparison", agent] if r["machine_name"] == row["machine_name"]]
            assert row["cost_usd"] == pytest.approx(next(r["cost_usd"] for r in days if r["date"] == row["date"]))
            costs = [r["cost_usd"] for r in days]
            assert row["mean_usd"] == pytest.approx(sum(costs) / len(costs), abs=1e-4)


def test_sessions_of_agents_without_activity_times(store: AgentStore, answers: dict):
    buckets = {agent: {r["duration"]: r["sessions"] for r in answers["session_length_distribution", agent]}
               for agent in AGENTS}
    assert buckets["codex"] == {"6: unknown": sum(m.sessions("codex") for m in store.machines.values())}
    assert buckets["opencode"] == {"6: unknown": store.machines["desk"].sessions("opencode")}
    assert buckets["gemini"] == {}  # Gemini CLI reports no activity time, so no session falls in a window
    assert "6: unknown" not in buckets["claude"]
    assert sum(buckets["claude"].values()) == sum(m.sessions("claude") for m in store.machines.values())
    assert {r["agent"] for r in answers["top_sessions", ""]} == {"claude", "codex", "opencode"}
    stats = answers["session_stats_daily", "codex"]
    assert stats and all(r["avg_duration_minutes"] is None for r in stats)


def test_cache_savings_are_estimated_for_claude_models_only(answers: dict):
    rows = answers["cache_efficiency", ""]
    for row in rows:
        if row["model"] == "all":
            continue
        claude = "claude" in row["model"].lower()
        assert (row["net_savings_usd"] is not None) == claude, row["model"]
    assert any("claude" in r["model"] for r in answers["cache_efficiency", "opencode"])  # OpenCode runs Claude too
    assert all(r["net_savings_usd"] is None for r in answers["cache_efficiency_daily", "gemini"])


def test_the_admin_comparison_counts_claude_code_only(store: AgentStore):
    rows = store.query("admin_claude_code_vs_local")
    assert {r["date"]: r["local_tokens"] for r in rows} == {
        day: values[4] for day, values in store.days("claude").items()}


# ----------------------------------------------------------------------------------------------------------------
# The HTML dashboard: agent filter and cost by agent, in a real headless Chromium
# ----------------------------------------------------------------------------------------------------------------




def choose(browser: Browser, select: str, value: str) -> None:
    browser.evaluate(f"(() => {{ const s = document.getElementById({json.dumps(select)});"
                     f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()")


def options(browser: Browser, select: str) -> list[list]:
    return browser.evaluate(f"[...document.getElementById({json.dumps(select)}).options]"
                            ".map((o) => [o.value, o.textContent, o.disabled])")


def text(browser: Browser, selector: str) -> str:
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")


def money(value: float) -> str:
    return f"${value:,.2f}"


def test_dashboard_filters_by_agent_and_draws_cost_by_agent(store: AgentStore, browser: Browser, tmp_path: Path):
    page = tmp_path / "agents.html"
    done = run_cli(store.env, "--dashboard", str(page))
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert open_page(browser, page, 1280, 900) == "ready"
    assert options(browser, "agent") == [["", "All agents", False]] + [[a, LABELS[a], False] for a in AGENTS]

    chart = browser.evaluate("(() => { const c = Chart.getChart('chart-agents'); return {type: c.config.type, "
                             "sums: c.data.datasets.map((d) => [d.label, d.data.reduce((t, v) => t + v, 0)])}; })()")
    assert chart["type"] == "bar"
    by_cost = sorted(AGENTS, key=lambda a: -store.cost(a))
    assert [label for label, _ in chart["sums"]] == [LABELS[a] for a in by_cost]
    assert [total for _, total in chart["sums"]] == pytest.approx([store.cost(a) for a in by_cost], rel=1e-9)
    assert f"Codex {money(store.cost('codex'))}" in text(browser, "#agents-note")
    drawn = {c["id"]: c for c in browser.evaluate(CHARTS_JS)}["chart-agents"]
    assert drawn["width"] > 200 and drawn["painted"] > drawn["width"] * drawn["height"] // 50 and drawn["points"] > 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-agents-desktop.png")

    # One agent: every number is that agent's; only Claude Code has 5-hour blocks and projects.
    choose(browser, "agent", "codex")
    assert text(browser, "#kpi-all .value") == money(store.cost("codex"))
    assert text(browser, "#kpi-tokens .value") == f"{sum(v[4] for v in store.days('codex').values()):,}"
    assert text(browser, "#block-list") == "Only Claude Code has 5-hour blocks; Codex has none."
    assert text(browser, "#projects-note") == "Only Claude Code has projects; Codex has none."
    colours = browser.evaluate("Chart.getChart('chart-agents').data.datasets.map((d) => [d.label, d.backgroundColor])")
    line = browser.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--line').trim()")
    assert [label for label, colour in colours if colour != line] == ["Codex"]  # the others greyed out
    machines = {r["machine_name"] for r in store.query("machine_daily_comparison", days="60", agent="codex")}
    assert sorted(browser.evaluate("Chart.getChart('chart-machines').data.labels")) == sorted(machines)
    choose(browser, "agent", "claude")
    assert text(browser, "#kpi-all .value") == money(store.cost("claude"))
    assert browser.evaluate("[...document.querySelectorAll('#block-list .machine')].map((n) => n.textContent)") == [
        "desk"]

    # Each filter offers only what goes with the other: laptop has Claude Code and Codex only.
    choose(browser, "agent", "")
    choose(browser, "machine", "laptop")
    assert [o[0] for o in options(browser, "agent") if o[2]] == ["gemini", "opencode"]
    choose(browser, "agent", "codex")
    assert text(browser, "#kpi-all .value") == money(store.cost("codex", "laptop"))
    choose(browser, "machine", "")
    choose(browser, "agent", "gemini")
    assert [o[0] for o in options(browser, "machine") if o[2]] == ["laptop"]
    assert text(browser, "#kpi-all .value") == money(store.cost("gemini"))
    browser.evaluate("document.querySelector('#presets button[data-days=\"7\"]').click()")
    today = dt.date.fromisoformat(browser.evaluate("JSON.parse(document.getElementById('ccusage-data').textContent)"
                                                   ".meta.today"))
    week = {(today - dt.timedelta(days=n)).isoformat() for n in range(7)}
    assert text(browser, "#range-cost") == money(store.cost("gemini", days=week))
    assert_offline_and_quiet(browser, page)

    # Dark mode and a phone's width, with the agent filter set.
    browser.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
    assert open_page(browser, page, 1280, 900) == "ready"
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 21, 28)"
    browser.screenshot(ARTIFACTS / "dashboard-agents-dark.png")
    browser.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
    assert open_page(browser, page, 390, 844, mobile=True) == "ready"
    choose(browser, "agent", "opencode")
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert browser.evaluate("[...document.querySelectorAll('.card, .filters')].every((c) => "
                            "c.getBoundingClientRect().right <= window.innerWidth)")
    browser.screenshot(ARTIFACTS / "dashboard-agents-phone.png")
    assert_offline_and_quiet(browser, page)


def test_dashboard_data_has_a_set_per_machine_and_agent_only_where_it_differs(store: AgentStore, tmp_path: Path):
    page = tmp_path / "agents.html"
    assert run_cli(store.env, "--dashboard", str(page), "--quiet").returncode == 0
    html = page.read_text(encoding="utf-8")
    data = json.loads(html.partition('id="ccusage-data">')[2].partition("</script>")[0])
    assert data["agents"] == list(AGENTS)
    scopes = sorted((s["machine"], s["agent"]) for s in data["scopes"])
    assert scopes == sorted([("", ""), ("desk", ""), ("laptop", ""), *(("", a) for a in AGENTS),
                             *(("desk", a) for a in AGENTS), ("laptop", "claude"), ("laptop", "codex")])
    for scope in data["scopes"]:
        assert ("agent_days" in scope["data"]) == (scope["agent"] == ""), scope["machine"]
    assert "agent_cost_daily" in data["meta"]["queries"] and "agent_summary" in data["meta"]["queries"]


# ----------------------------------------------------------------------------------------------------------------
# The Grafana dashboard's agent variable on the real engine
# ----------------------------------------------------------------------------------------------------------------


def test_grafana_agent_variable_reaches_every_panel(store: AgentStore):
    dashboard = json.loads(GRAFANA_FILE.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["agent"]["includeAll"] and variables["agent"]["multi"]
    panels = {panel["title"]: panel["targets"][0]["rawSql"] for panel in dashboard["panels"]}
    for title, raw in panels.items():
        assert "$__conditionalAll(agent IN (${agent:singlequote}), $agent)" in raw, title
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=60)
    asked: dict[str, str] = {"agents": variables["agent"]["query"]["rawSql"]}
    for title, raw in panels.items():
        for choice in (None, ["codex"], ["gemini", "opencode"]):
            asked[f"{title}/{choice}"] = grafana_sql(raw, start, end, None, choice)
    results = sql_many(store.env, asked)
    assert [r["agent"] for r in results.pop("agents")] == list(AGENTS)

    def answer(title: str, choice: list[str] | None) -> list[dict]:
        return results[f"{title}/{choice}"]

    for title in panels:
        assert answer(title, None), title
    assert answer("Spend", ["codex"])[0]["All time"] == pytest.approx(store.cost("codex"), rel=1e-9)
    assert answer("Tokens, all time", ["gemini", "opencode"])[0]["Tokens"] == sum(
        v[4] for agent in ("gemini", "opencode") for v in store.days(agent).values())
    by_agent = answer("Daily cost by agent", None)
    assert {(r["time"][:10], r["agent"]): r["cost"] for r in by_agent} == pytest.approx(
        {(day, agent): store.cost(agent, days=[day]) for agent in AGENTS for day in store.days(agent)}, rel=1e-9)
    assert {r["agent"] for r in answer("Daily cost by agent", ["codex"])} == {"codex"}
    assert answer("Active 5-hour block", ["codex"]) == [] and answer("Top projects", ["codex"]) == []
    assert [r["Machine"] for r in answer("Active 5-hour block", None)] == ["desk"]
    freshness = {r["Machine"]: r["Last usage day"] for r in answer("Data freshness per machine", ["codex"])}
    assert freshness == {name: max(store.days("codex", name)) for name in store.machines}

