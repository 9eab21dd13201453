"""queries.sql: its format, and every named query run against real imports of three machines.

One store serves the whole module (imports are the slow part): machines A, B and C import generated transcripts with
the real pinned ccusage into one embedded chDB store. The store is then made awkward on purpose, the way real ones
get: A keeps working and is imported again (its grown rows are written again under the same keys), every usage row of
B is written a second time (as a re-import that rewrote everything would leave it until a merge), and C's only
import is made three hours old. Every query must run; a chosen set must equal the generator's ground truth and
ccusage's own costs exactly. The tests run the queries as `--query NAME --param ...` does, many in one opening of
the store (conftest.sql_many); the CLI's own `--query` is tested on its output formats and errors.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path

import pytest
import store_reader
from conftest import QUERIES, ROOT, canonical_models, ci, cli_env, named_query, run_ccusage, run_cli, sql_many
from transcripts import DEFAULT_PROJECTS, Entry, GroundTruth, Totals, append_activity, generate

NAMES = [q.name for q in QUERIES]
TOKEN_KEYS = ("input", "output", "cache_creation", "cache_read")
DEDUPLICATED_TABLES = (*(table.name for table in ci.USAGE_TABLES), *ci.CHILD_TABLES)

ADMIN_SECTION = "-- == Anthropic Admin API ==\n"
# Queries that may rightly return no rows on the generated data, and why.
MAY_BE_EMPTY = {
    "import_failures": "every import in this store succeeds",
    "anomaly_days": "depends on whether one day's cost is 2 standard deviations above the mean",
    "anomaly_days_by_machine": "as anomaly_days",
} | {
    q.name: "reads the Admin API tables, which only claude_admin_importer.py fills (tests/test_admin_api.py)"
    for q in ci.parse_queries(ci.QUERIES_FILE.read_text(encoding="utf-8").partition(ADMIN_SECTION)[2])
}


# ----------------------------------------------------------------------------------------------------------------
# The format (pure)
# ----------------------------------------------------------------------------------------------------------------


def test_queries_file_has_forty_named_described_queries_with_declared_parameters():
    assert len(QUERIES) >= 40
    assert len(set(NAMES)) == len(NAMES)
    for query in QUERIES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", query.name)
        assert query.description and "\n" not in query.description
        used = set(re.findall(r"\{(\w+):", query.sql))
        assert used == {p.name for p in query.params}, query.name
        assert not query.sql.rstrip().endswith(";")


def test_every_usage_table_is_read_deduplicated():
    """A usage or child table is only read with FINAL (the views use FINAL themselves), never raw."""
    reads = re.compile(rf"\b(?:FROM|JOIN)\s+({'|'.join(DEDUPLICATED_TABLES)})\b(?:\s+AS\s+\w+)?(\s+FINAL\b)?", re.I)
    for query in QUERIES:
        for table, final in reads.findall(query.sql):
            assert final, f"{query.name} reads {table} without FINAL"


def test_machine_parameter_means_all_machines_when_empty():
    for query in QUERIES:
        machine = next((p for p in query.params if p.name == "machine"), None)
        if machine:
            assert machine.default == "" and machine.type == "String"
            uses = query.sql.count("{machine:String}")
            assert uses == 2 * query.sql.count("({machine:String} = '' OR "), query.name


HEADER = "-- name: {name}\n-- description: {description}\n-- params: {params}\n"


def one(sql: str, *, name: str = "q", description: str = "d", params: str = "none") -> str:
    return HEADER.format(name=name, description=description, params=params) + sql + "\n"


@pytest.mark.parametrize(("text", "message"), [
    ("SELECT 1;\n", "line 1: 'SELECT 1;' is outside a query (each starts with `-- name:`)"),
    ("-- description: d\n-- params: none\nSELECT 1;\n", "line 1: '-- description: d' is outside a query"),
    ("-- name: q\n-- params: none\nSELECT 1;\n", "line 2: expected `-- description:` (query at line 1)"),
    ("-- name: q\n-- description: d\nSELECT 1;\n", "line 3: expected `-- params:` (query at line 1)"),
    (one("SELECT 1;", description=""), "line 2: query q has an empty description"),
    (one("SELECT 1;") + one("SELECT 2;"), "line 5: a second query is named q"),
    (one("SELECT 1;", name="list"), "'list' is not a query name"),
    (one("SELECT 1;", name="two words"), "'two words' is not a query name"),
    (one("SELECT {days:UInt32};"), "uses {days:UInt32} but `-- params:` does not declare days"),
    (one("SELECT 1;", params="days:UInt32=3"), "declares days but its SQL does not use it"),
    (one("SELECT {days:UInt64};", params="days:UInt32=3"), "uses {days:UInt64} but declares days:UInt32"),
    (one("SELECT {days:UInt32};", params="days:UInt32=x"), "default of days: 'x' is not a UInt32"),
    (one("SELECT {d:Date};", params="d:Date=2026-01-01"), "type Date is not supported"),
    (one("SELECT {a:UInt8};", params="a:UInt8=1, a:UInt8=2"), "parameter a is declared twice"),
    (one("SELECT {a:UInt8};", params="a=1"), "'a=1' is not name:Type=default"),
    (one("SELECT 1"), "line 1: query q does not end with `;` at the end of a line"),
    (one("SELECT 1") + one("SELECT 2;", name="r"), "line 1: query q does not end with `;`"),
    (one("-- only a comment;\n;"), "line 5: query q has no SQL"),
])
def test_each_break_of_the_format_is_named_with_its_line(text: str, message: str):
    with pytest.raises(ci.QueryFileError, match=re.escape(message)):
        ci.parse_queries(text)


def test_parser_keeps_names_descriptions_parameters_and_sql():
    first = one("SELECT {days:UInt32} AS d,\n  {m:String} AS m;", params="days:UInt32=3, m:String=")
    second = one("SELECT 1 -- a comment\n-- a comment line;\nFROM x;", name="b")
    text = "-- free text\n\n" + first + "-- == a section ==\n" + second
    assert ci.parse_queries(text) == [
        ci.NamedQuery("q", "d", (ci.QueryParam("days", "UInt32", "3"), ci.QueryParam("m", "String", "")),
                      "SELECT {days:UInt32} AS d,\n  {m:String} AS m", 3),
        ci.NamedQuery("b", "d", (), "SELECT 1 -- a comment\n-- a comment line;\nFROM x", 9),
    ]


def test_parameters_take_their_defaults_their_types_and_nothing_else():
    query = ci.find_query(QUERIES, "anomaly_days")
    assert [str(p) for p in query.params] == ["days:UInt32=90", "sigma:Float64=2", "machine:String=",
                                              "agent:String="]
    assert ci.query_parameters(query, []) == {"days": 90, "sigma": 2.0, "machine": "", "agent": ""}
    assert ci.query_parameters(query, ["days=7", "machine=it's; DROP TABLE x", "sigma=2.5"]) == {
        "days": 7, "sigma": 2.5, "machine": "it's; DROP TABLE x", "agent": ""}
    assert ci.query_parameters(query, ["machine=a=b"])["machine"] == "a=b"
    problems = {
        "limit=3": "query anomaly_days has no parameter 'limit'; its parameters: days:UInt32=90, sigma:Float64=2, "
                   "machine:String=, agent:String=",
        "days=-1": "--param days: '-1' is not a UInt32",
        "days=4294967296": "--param days: '4294967296' is not a UInt32",
        "days=1.5": "--param days: '1.5' is not a UInt32",
        "sigma=nan": "--param sigma: 'nan' is not a Float64",
        "days": "--param 'days': expected KEY=VALUE",
    }
    for assignment, message in problems.items():
        with pytest.raises(ci.UserError) as caught:
            ci.query_parameters(query, [assignment])
        assert (str(caught.value), caught.value.exit_code) == (message, ci.EXIT_USAGE)


@pytest.mark.parametrize("args", [
    ("--query", "top_days", "--sql", "SELECT 1"), ("--param", "days=1"), ("--query", "list", "--param", "a=1"),
    ("--query", ""), ("--query", "top_days", "--param", "days=1"), ("--query", "top_days", "--param", "limit=ten"),
    ("--query", "top_days", "--param", "days"), ("--query", "list", "--verbose", "--param", "a=1"),
], ids=" ".join)
def test_the_errors_queries_md_quotes_are_the_ones_printed(tmp_path, args):
    """Issue 24.8: each message of the failure table in docs/queries.md is what the CLI prints, word for word."""
    env = {"HOME": str(tmp_path), "CCUSAGE_IMPORT_DB": str(tmp_path / "chdb"), "PATH": os.environ.get("PATH", "")}
    done = run_cli(env, *args)
    assert done.returncode == ci.EXIT_USAGE and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert f"`{line}`" in (ROOT / "docs" / "queries.md").read_text(encoding="utf-8"), line


def test_query_list_shows_parameters_only_when_asked(tmp_path):
    """docs/queries.md: `--query list` prints names and descriptions, `--verbose` adds the parameters."""
    env = {"HOME": str(tmp_path), "CCUSAGE_IMPORT_DB": str(tmp_path / "chdb"), "PATH": os.environ.get("PATH", "")}
    plain, verbose = (run_cli(env, "--query", "list", *more).stdout for more in ((), ("--verbose",)))
    assert "days:UInt32=" not in plain and "days:UInt32=" in verbose
    page = (ROOT / "docs" / "queries.md").read_text(encoding="utf-8")
    assert "| `--query list` | print every query's name and description; `--verbose` adds its parameters" in page


def test_the_query_reference_lists_every_query_with_its_description():
    reference = (ROOT / "docs" / "queries.md").read_text(encoding="utf-8")
    listed = re.findall(r"^### `(\w+)`\n\n(.+)$", reference, re.M)
    assert listed == [(q.name, q.description) for q in QUERIES], (
        "docs/queries.md is out of date: run `uv run python docs/make_query_reference.py`")


# ----------------------------------------------------------------------------------------------------------------
# The store: three machines, imported for real
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Machine:
    name: str
    env: dict
    truth: GroundTruth
    daily_cost: dict[str, float]  # ccusage's own `claude daily` totalCost per date

    def by(self, key: Callable[[Entry], Hashable], loader: str = "daily") -> dict:
        """Token totals of the ground truth grouped by any key; models without tokens are left out, as stored."""
        groups: dict = defaultdict(Totals)
        for entry in self.truth.entries[loader]:
            if entry.model is not None:
                groups[key(entry)].add(entry.tokens)
        return {k: t for k, t in groups.items() if t.total > 0}


@dataclass
class PopulatedStore:
    machines: dict[str, Machine]
    runs: int

    @property
    def env(self) -> dict:
        return self.machines["A"].env

    def query(self, name: str, **params: object) -> list[dict]:
        return self.answers({name: (name, params)})[name]

    def answers(self, asked: dict[str, tuple[str, dict[str, object]]]) -> dict[str, list[dict]]:
        """Rows of named queries (label: name and parameters) in one opening of the store."""
        return sql_many(self.env, {label: named_query(name, params) for label, (name, params) in asked.items()})


QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)  # Python hides these


@contextmanager
def printed_to_stderr() -> Iterator[list[str]]:
    """What the block would show on a command's stderr: written to sys.stderr or to fd 2 (where chDB writes), and
    the warnings Python shows. The list gets the text when the block ends."""
    text: list[str] = []
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            with redirect_stderr(io.StringIO()) as python:
                yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            shown = [str(w.message) for w in caught if not issubclass(w.category, QUIET_WARNINGS)]
            text.append(python.getvalue() + sink.read().decode(errors="replace") + "\n".join(shown))


def cli_ok(env: dict, *args: str) -> None:
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> PopulatedStore:
    base = tmp_path_factory.mktemp("queries")
    home = base / "home"
    home.mkdir()
    projects = list(DEFAULT_PROJECTS)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    # A's generated usage ends 6 hours ago, so its new activity opens a 5-hour block that is surely still running.
    layout = {"A": (41, 20, 24, projects, now - dt.timedelta(hours=6)),
              "B": (42, 12, 14, [*projects[2:], "-home-dev-only-on-b"], now), "C": (43, 3, 4, projects[:2], now)}
    machines: dict[str, Machine] = {}
    for name, (seed, days, sessions, names, end) in layout.items():
        claude = base / name
        truth = generate(claude, seed=seed, days=days, sessions=sessions, projects=names, end=end)
        env = cli_env(ccusage_bin_dir, home, base / "store" / "chdb", claude, name)
        cli_ok(env, "--no-hash-projects")
        machines[name] = Machine(name, env, truth, {})

    a = machines["A"]
    a.truth = append_activity(Path(a.env["CLAUDE_CONFIG_DIR"]), start=now - dt.timedelta(minutes=30), minutes=25)
    cli_ok(a.env, "--no-hash-projects")
    # The import runs log is a MergeTree and finished_at is not in its sorting key, so a synchronous mutation can
    # move C's only import three hours back: the honest way to get an old import without waiting or a fake clock.
    sql_many(a.env, {
        **{table: f"INSERT INTO {table} SELECT * FROM {table} FINAL WHERE machine_name = 'B'"
           for table in DEDUPLICATED_TABLES},
        "aged": "ALTER TABLE ccusage_import_runs UPDATE finished_at = finished_at - INTERVAL 3 HOUR "
                "WHERE machine_name = 'C' SETTINGS mutations_sync = 2",
    })
    for machine in machines.values():
        report = run_ccusage(ccusage_bin_dir, Path(machine.env["CLAUDE_CONFIG_DIR"]), "daily")
        machine.daily_cost = {item["date"]: item["totalCost"] for item in report["daily"]}
    return PopulatedStore(machines, runs=4)


def summed(parts: Iterable[dict]) -> dict:
    """Per-key sums of several machines' dicts of numbers or Totals."""
    result: dict = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, Totals):
                result.setdefault(key, Totals()).add(value)
            else:
                result[key] = result.get(key, 0) + value
    return result


def tokens_of(row: dict) -> tuple[int, ...]:
    return tuple(row[k] for k in (*TOKEN_KEYS, "tokens"))


def tokens(totals: Totals) -> tuple[int, ...]:
    return (totals.input, totals.output, totals.cache_creation, totals.cache_read, totals.total)


# ----------------------------------------------------------------------------------------------------------------
# Every query runs
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_answer(store: PopulatedStore) -> dict[str, tuple[list[dict], str]]:
    """Every named query with its defaults, in one opening of the store in this process: its rows, and what running
    it printed to stderr."""
    answers = {}
    with store_reader.opened(store.env) as reading:
        for name in NAMES:
            with printed_to_stderr() as printed:
                rows = store_reader.answer(reading, named_query(name, {}))
            answers[name] = (rows, printed[0])
    return answers


@pytest.mark.parametrize("name", NAMES)
def test_every_query_runs_by_name(every_answer: dict[str, tuple[list[dict], str]], name: str):
    rows, printed = every_answer[name]
    assert not printed, f"{name}: {printed}"
    assert rows or name in MAY_BE_EMPTY, f"{name} returned no rows"


def test_a_named_query_through_the_cli_gives_what_the_tests_read(store: PopulatedStore):
    """The tests read named queries many to one opening of the store; the CLI, one a process, gives the same rows."""
    done = run_cli(store.env, "--query", "daily_cost_30d", "--param", "machine=B", "--param", "days=365",
                   "--format", "json")
    assert done.returncode == 0 and not done.stderr, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows and rows == store.query("daily_cost_30d", machine="B", days=365)


def test_query_list_and_errors_through_the_cli(store: PopulatedStore):
    env = store.env
    listed = [json.loads(line) for line in run_cli(env, "--query", "list", "--format", "json").stdout.splitlines()]
    assert [row["name"] for row in listed] == NAMES
    assert listed[0] == {"name": QUERIES[0].name, "params": ", ".join(map(str, QUERIES[0].params)),
                         "description": QUERIES[0].description}
    table = run_cli(env, "--query", "top_days", "--param", "limit=2")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["date", "cost_usd", "tokens",
                                                                                "machines", "models"]
    assert table.stdout.rstrip().endswith("(2 rows)")
    csv_out = run_cli(env, "--query", "chart_bar_machine_cost", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "label,value" and sorted(line.split(",")[0] for line in csv_out[1:]) == ["A", "B", "C"]
    failures = {
        ("--query", "no_such_query"): "error: no query named 'no_such_query' in queries.sql; valid names: list, "
                                      + ", ".join(NAMES),
        ("--query", "top_days", "--param", "days=3"): "error: query top_days has no parameter 'days'; its "
                                                      "parameters: limit:UInt32=10, machine:String=, agent:String=",
        ("--query", "top_days", "--param", "limit=ten"): "error: --param limit: 'ten' is not a UInt32",
        ("--param", "limit=3"): "error: --param goes with --query NAME",
        ("--query", "list", "--param", "limit=3"): "error: --query list takes no --param",
    }
    for args, message in failures.items():
        done = run_cli(env, *args)
        assert (done.returncode, done.stderr, done.stdout) == (ci.EXIT_USAGE, message + "\n", ""), args


def test_a_machine_name_with_quotes_is_a_parameter_not_sql(store: PopulatedStore):
    rows = store.query("dashboard_summary", machine="A' OR '1'='1")
    assert rows[0]["machines"] == 0 and rows[0]["all_time_cost_usd"] == 0


# ----------------------------------------------------------------------------------------------------------------
# Answers checked against the ground truth
# ----------------------------------------------------------------------------------------------------------------


def test_daily_cost_series_equals_ccusage_per_day(store: PopulatedStore):
    machines = store.machines.values()
    expected_cost = summed(m.daily_cost for m in machines)
    expected_tokens = summed(m.truth.by_day() for m in machines)
    answers = store.answers({"all": ("daily_cost_30d", {}), "only_b": ("daily_cost_30d", {"machine": "B", "days": 365}),
                             "line": ("chart_line_daily_cost", {}), "change": ("daily_cost_change", {"days": 10})})
    rows = answers["all"]
    assert [r["date"] for r in rows] == sorted(expected_cost)
    for row in rows:
        assert row["cost_usd"] == pytest.approx(expected_cost[row["date"]], rel=1e-9)
        assert row["tokens"] == expected_tokens[row["date"]].total
        assert row["machines"] == sum(row["date"] in m.daily_cost for m in machines)

    only_b = answers["only_b"]
    b = store.machines["B"]
    assert {r["date"]: r["cost_usd"] for r in only_b} == pytest.approx(b.daily_cost, rel=1e-9)

    line = answers["line"]
    first = min(expected_cost)
    today = dt.datetime.now(dt.UTC).date()
    assert line[0]["time"] == first and len(line) == (today - dt.date.fromisoformat(first)).days + 1
    for point in line:
        assert point["cost_usd"] == pytest.approx(expected_cost.get(point["time"], 0.0), rel=1e-9)

    change = {r["date"]: r for r in answers["change"]}
    assert len(change) == 10
    for day, row in change.items():
        previous = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
        assert row["cost_usd"] == pytest.approx(expected_cost.get(day, 0.0), rel=1e-9)
        assert row["previous_day_cost_usd"] == pytest.approx(expected_cost.get(previous, 0.0), rel=1e-9)


def test_model_totals_equal_the_ground_truth(store: PopulatedStore):
    machines = store.machines
    canonical = canonical_models(store.env)
    expected = summed(m.by(lambda e: canonical[e.model]) for m in machines.values())
    answers = store.answers({"all": ("model_cost_all_time", {}), "only_c": ("model_cost_all_time", {"machine": "C"})})
    rows = answers["all"]
    assert {r["model"]: tokens_of(r) for r in rows} == {model: tokens(t) for model, t in expected.items()}
    assert {name for r in rows for name in r["names"]} == set(canonical)  # every raw name, under its model
    assert [r["cost_usd"] for r in rows] == sorted((r["cost_usd"] for r in rows), reverse=True)
    assert sum(r["cost_share_pct"] for r in rows) == pytest.approx(100, abs=0.05)
    only_c = answers["only_c"]
    assert {r["model"]: tokens_of(r) for r in only_c} == {
        model: tokens(t) for model, t in machines["C"].by(lambda e: canonical[e.model]).items()}
    assert sum(r["cost_usd"] for r in only_c) == pytest.approx(sum(machines["C"].daily_cost.values()), rel=1e-9)


def test_machine_totals_equal_the_ground_truth(store: PopulatedStore):
    machines = store.machines
    answers = store.answers({"overview": ("machine_overview", {}), "ranking": ("machine_ranking", {"days": 365}),
                             "summary": ("dashboard_summary", {})})
    overview = {r["machine_name"]: r for r in answers["overview"]}
    assert sorted(overview) == ["A", "B", "C"]
    for name, machine in machines.items():
        row, days = overview[name], sorted(machine.truth.by_day())
        assert row["cost_usd"] == pytest.approx(sum(machine.daily_cost.values()), rel=1e-9)
        assert row["tokens"] == machine.truth.total().total
        assert (row["first_day"], row["last_day"], row["active_days"]) == (days[0], days[-1], len(days))
        assert row["projects"] == len(machine.truth.by_project())
        assert row["sessions"] == len(machine.truth.by_session())

    ranking = answers["ranking"]
    assert [r["machine_name"] for r in ranking] == sorted(machines, key=lambda n: -overview[n]["cost_usd"])
    assert [r["rank"] for r in ranking] == [1, 2, 3]

    summary = answers["summary"][0]
    assert summary["all_time_cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in overview.values()), rel=1e-9)
    assert summary["all_time_tokens"] == sum(m.truth.total().total for m in machines.values())
    assert summary["machines"] == 3
    assert summary["projects"] == len({p for m in machines.values() for p in m.truth.by_project()})
    assert summary["sessions"] == sum(len(m.truth.by_session()) for m in machines.values())


def test_projects_equal_the_ground_truth(store: PopulatedStore):
    machines = store.machines
    expected = summed(m.truth.by_project() for m in machines.values())
    answers = store.answers({"projects": ("project_cost", {"limit": 100}), "shared": ("machine_shared_projects", {})})
    rows = answers["projects"]
    assert {r["project"]: r["tokens"] for r in rows} == {p: t.total for p, t in expected.items()}
    on_machines = {p: sum(p in m.truth.by_project() for m in machines.values()) for p in expected}
    assert {r["project"]: r["machines"] for r in rows} == on_machines
    shared = answers["shared"]
    assert sorted(r["project"] for r in shared) == sorted(p for p, count in on_machines.items() if count > 1)
    assert 0 < len(shared) < len(expected)


def test_row_counts_equal_the_ground_truth(store: PopulatedStore):
    machines = store.machines.values()

    def count(rows: Callable[[Machine], int]) -> int:
        return sum(rows(m) for m in machines)

    def month(entry: Entry) -> str:
        return entry.timestamp.strftime("%Y-%m")

    def day(entry: Entry) -> str:
        return entry.timestamp.date().isoformat()

    breakdowns = count(lambda m: len(m.by(lambda e: (day(e), e.model))) + len(m.by(lambda e: (month(e), e.model)))
                       + len(m.by(lambda e: (day(e), e.project, e.model)))
                       + len(m.by(lambda e: (e.project, e.session, e.model), loader="main")))
    block_models = count(lambda m: sum(len(block.models) for block in m.truth.blocks().values()))
    hour_models = count(lambda m: sum(len(block.models) for block in m.truth.blocks(hours=1).values()))
    expected = {
        "ccusage_usage_daily": count(lambda m: len(m.truth.by_day())),
        "ccusage_usage_monthly": count(lambda m: len({d[:7] for d in m.truth.by_day()})),
        "ccusage_usage_projects_daily": count(lambda m: len(m.truth.by_day_project())),
        "ccusage_usage_sessions": count(lambda m: len(m.truth.by_session())),
        "ccusage_usage_blocks": count(lambda m: len(m.truth.blocks())),
        "ccusage_usage_hourly": count(lambda m: len(m.truth.blocks(hours=1))),
        "ccusage_model_breakdowns": breakdowns,
        "ccusage_models_used": breakdowns + block_models + hour_models,
        "ccusage_import_runs": store.runs,
        "ccusage_alerts": 0,  # no budget set: no alert claimed
    }
    answers = store.answers({"all": ("table_row_counts", {}), "only_c": ("table_row_counts", {"machine": "C"})})
    rows = answers["all"]
    assert {r["table_name"]: r["rows"] for r in rows} == expected
    assert {r["machines"] for r in rows if r["rows"]} == {3}
    only_c = answers["only_c"]
    assert {r["table_name"]: r["rows"] for r in only_c}["ccusage_usage_daily"] == len(
        store.machines["C"].truth.by_day())


def test_machine_freshness_flags_the_machine_whose_last_import_is_old(store: PopulatedStore):
    answers = store.answers({"default": ("machine_freshness", {}),
                             "relaxed": ("machine_freshness", {"stale_hours": 4})})
    rows = {r["machine_name"]: r for r in answers["default"]}
    assert {name: row["is_stale"] for name, row in rows.items()} == {"A": 0, "B": 0, "C": 1}
    assert 3 <= rows["C"]["hours_since"] < 3.5 and rows["A"]["hours_since"] < 0.5
    assert rows["C"]["last_status"] == "ok" and rows["C"]["last_usage_day"] == max(store.machines["C"].truth.by_day())
    relaxed = {r["machine_name"]: r["is_stale"] for r in answers["relaxed"]}
    assert relaxed == {"A": 0, "B": 0, "C": 0}


def test_active_block_is_the_running_block_of_the_working_machine(store: PopulatedStore):
    start, block = max(store.machines["A"].truth.blocks().items())
    answers = store.answers({"blocks": ("active_block", {}), "summary": ("dashboard_summary", {})})
    rows = {r["machine_name"]: r for r in answers["blocks"]}
    row = rows["A"]
    assert row["start_time"] == start.strftime("%Y-%m-%d %H:%M:%S")
    assert (row["tokens"], row["entries"]) == (block.tokens.total, block.entries)
    assert 0 < row["minutes_left"] <= 300 and 0 <= row["data_age_minutes"] < 30
    assert row["projected_total_cost"] >= row["cost_usd"] > 0 and row["burn_rate_cost_per_hour"] > 0
    assert answers["summary"][0]["active_blocks"] == len(rows)
