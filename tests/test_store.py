"""The write path in this process: ccusage's own JSON recorded in tests/fixtures, transformed, planned against the
stored rows and written with `Store.write_records` into a real embedded chDB store, then read back.

This is what an import does between fetching the reports and printing its summary, without a process or ccusage
(as github-to-sqlite tests its `save_*` functions on recorded API answers); the end-to-end tests in test_importer.py
run the same path through the CLI with the real ccusage. chDB runs one store at a time in a process: each test opens
its own, and opens a second one only after closing the first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ccusage_importer as ci

FIXTURES = Path(__file__).parent / "fixtures"
HASHER = ci.NameHasher(b"k" * 32, hash_names=True)
VERSION = "20.0.24"
WRITTEN = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "total_tokens")
CCUSAGE_TOKENS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def recorded() -> dict[ci.UsageTable, list[ci.Record]]:
    """Every usage table's records from the recorded reports, derived as an import derives them."""
    project_days = ci.project_day_records(load("claude_daily_instances.json"), HASHER)
    days = ci.daily_records(project_days)
    return {
        ci.PROJECT_DAYS: project_days,
        ci.DAILY: days,
        ci.MONTHLY: ci.monthly_records(days),
        ci.SESSIONS: ci.session_records(load("claude_session.json"), HASHER),
        ci.BLOCKS: ci.block_records(load("claude_blocks.json")),
    }


def config_for(folder: Path, **env: str) -> ci.Config:
    return ci.Config.from_env({"HOME": str(folder), "CCUSAGE_IMPORT_DB": str(folder / "chdb"),
                               "MACHINE_NAME": "laptop", "TZ": "UTC", **env})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ci.Store]:
    opened = ci.Store.open(config_for(tmp_path))
    try:
        yield opened
    finally:
        opened.close()


EVERYTHING = ci.Exact(dt.date.min, dt.datetime.min.replace(tzinfo=dt.UTC))  # no transcript gone: all is exact


def write_all(store: ci.Store, records: dict[ci.UsageTable, list[ci.Record]],
              exact: ci.Exact = EVERYTHING) -> dict[str, ci.TablePlan]:
    """Plan every table against what is stored, then write: what one import run does with its reports."""
    plans = {table.name: ci.plan_table(table, incoming, store.stored_records(table), exact=exact)
             for table, incoming in records.items()}
    assert store.write_records(list(plans.values()), VERSION, WRITTEN) == sum(
        len(plan.write) + len(plan.remove) for plan in plans.values())
    return plans


def one_row(store: ci.Store, sql: str) -> dict[str, Any]:
    columns, [row] = store.query(sql)
    return dict(zip(columns, row, strict=True))


def counts(plan: ci.TablePlan) -> tuple[int, int, int, int]:
    return (plan.new, plan.changed, plan.unchanged, plan.kept)


def raw_rows(store: ci.Store) -> dict[str, int]:
    """Rows of every table as stored, every version (no FINAL): a write that should not happen shows here."""
    return {table: one_row(store, f"SELECT count() AS n FROM {table}")["n"]
            for table in (*(t.name for t in ci.USAGE_TABLES), *ci.CHILD_TABLES)}


def test_the_embedded_store_runs_without_pandas_or_pyarrow(store: ci.Store):
    """Issue 24.4: pyproject.toml keeps chDB's pandas and pyarrow (240 MB of the .venv) out; a store is written and
    read here without them, and every other test runs without them too."""
    assert importlib.util.find_spec("pandas") is None and importlib.util.find_spec("pyarrow") is None
    store.insert("ccusage_settings", [("probe", "1")], ["name", "value"])
    assert store.query("SELECT value FROM ccusage_settings WHERE name = 'probe'")[1] == [("1",)]


def test_recorded_reports_are_stored_and_read_back_exactly(store: ci.Store):
    records = recorded()
    plans = write_all(store, records)
    assert {name: counts(plan) for name, plan in plans.items()} == {
        table.name: (len(incoming), 0, 0, 0) for table, incoming in records.items()}
    assert {name: len(incoming) for name, incoming in ((t.name, r) for t, r in records.items())} == {
        "ccusage_usage_projects_daily": 84, "ccusage_usage_daily": 47, "ccusage_usage_monthly": 3,
        "ccusage_usage_sessions": 79, "ccusage_usage_blocks": 128 - 54}

    for table, incoming in records.items():  # every column and every model's numbers come back as written
        stored = store.stored_records(table)
        assert {key: (r.row, r.breakdowns) for key, r in stored.items()} == {
            r.key: (r.row, r.breakdowns) for r in incoming}, table.name

    for table, report in ((ci.DAILY, "claude_daily.json"), (ci.PROJECT_DAYS, "claude_daily_instances.json"),
                          (ci.SESSIONS, "claude_session.json")):
        totals = load(report)["totals"]
        row = one_row(store, f"SELECT {', '.join(f'sum({c}) AS {c}' for c in TOKENS)}, sum(total_cost) AS cost "
                             f"FROM {table.name} FINAL WHERE machine_name = 'laptop'")
        assert [row[c] for c in TOKENS] == [totals[c] for c in CCUSAGE_TOKENS], table.name
        assert row["cost"] == pytest.approx(totals["totalCost"], rel=1e-9), table.name

    daily = load("claude_daily.json")["totals"]
    models = one_row(store, "SELECT sum(total_tokens) AS tokens, sum(cost) AS cost FROM ccusage_model_breakdowns "
                            "FINAL WHERE record_type = 'daily'")
    assert models["tokens"] == daily["totalTokens"] and models["cost"] == pytest.approx(daily["totalCost"], rel=1e-9)
    _, months = store.query("SELECT toString(month), total_tokens, total_cost FROM ccusage_usage_monthly FINAL "
                            "ORDER BY month")
    assert [(m[:7], tokens) for m, tokens, _ in months] == [
        (item["month"], item["totalTokens"]) for item in load("claude_monthly.json")["monthly"]]
    assert [cost for _, _, cost in months] == pytest.approx(
        [item["totalCost"] for item in load("claude_monthly.json")["monthly"]], rel=1e-9)
    [(name, cost, tokens, first, last)] = store.summary()["machines"]
    assert (name, tokens) == ("laptop", daily["totalTokens"]) and cost == pytest.approx(daily["totalCost"], rel=1e-9)
    dates = [item["date"] for item in load("claude_daily.json")["daily"]]
    assert (first.isoformat(), last.isoformat()) == (min(dates), max(dates))


def test_the_same_reports_again_write_nothing(store: ci.Store):
    write_all(store, recorded())
    before = raw_rows(store)
    plans = write_all(store, recorded())
    assert {name: counts(plan) for name, plan in plans.items()} == {
        table.name: (0, 0, len(incoming), 0) for table, incoming in recorded().items()}
    assert raw_rows(store) == before


def test_a_changed_day_is_rewritten_and_a_model_that_left_it_is_zeroed(store: ci.Store):
    days = recorded()[ci.DAILY]
    write_all(store, {ci.DAILY: days})
    old = next(r for r in days if len(r.breakdowns) >= 2)
    left, stays = sorted(old.breakdowns)[:2]
    merged = {c: old.breakdowns[left][c] + old.breakdowns[stays][c] for c in old.breakdowns[stays]}
    breakdowns = {**{m: v for m, v in old.breakdowns.items() if m != left}, stays: merged}
    models = sorted(breakdowns)
    changed = ci.DAILY.record({**old.row, "models_used": models, "models_count": len(models)}, breakdowns)

    [plan] = write_all(store, {ci.DAILY: [changed if r.key == old.key else r for r in days]}).values()
    assert counts(plan) == (0, 1, len(days) - 1, 0) and plan.write == [changed]
    stored = store.stored_records(ci.DAILY)
    assert (stored[old.key].row, stored[old.key].breakdowns) == (changed.row, breakdowns)
    key = {"key": old.record_key, "model": left}
    _, [(tokens, cost)] = store.query(
        "SELECT total_tokens, cost FROM ccusage_model_breakdowns FINAL WHERE machine_name = 'laptop' AND "
        "record_type = 'daily' AND record_key = {key:String} AND model_name = {model:String}", key)
    _, [(used,)] = store.query(
        "SELECT is_used FROM ccusage_models_used FINAL WHERE machine_name = 'laptop' AND record_type = 'daily' "
        "AND record_key = {key:String} AND model_name = {model:String}", key)
    assert (tokens, cost, used) == (0, 0, 0)


def test_a_write_cut_short_after_the_models_is_completed_by_the_next(store: ci.Store, monkeypatch):
    """An import writes every table's per-model rows first (one insert per child table), then the rows: cut short
    in between (a fault injected into the first row insert), the next import writes everything, nothing twice."""
    records = recorded()
    real_insert = ci.Store.insert

    def cut_short(self, table, rows, columns):
        if table in {t.name for t in ci.USAGE_TABLES}:
            raise RuntimeError("injected fault: the import stops here")
        real_insert(self, table, rows, columns)

    monkeypatch.setattr(ci.Store, "insert", cut_short)
    with pytest.raises(RuntimeError, match="injected"):
        write_all(store, records)
    assert all(store.stored_records(table) == {} for table in records) and raw_rows(store)["ccusage_models_used"]
    monkeypatch.undo()
    write_all(store, records)
    for table, incoming in records.items():
        assert {k: (r.row, r.breakdowns) for k, r in store.stored_records(table).items()} == {
            r.key: (r.row, r.breakdowns) for r in incoming}, table.name


def test_history_ccusage_no_longer_reports_is_kept(store: ci.Store):
    """Claude Code deleted old transcripts: ccusage reports less, the store keeps the fuller rows."""
    records = recorded()
    write_all(store, records)
    before = raw_rows(store)
    shrunk = {table: incoming[len(incoming) // 2:] for table, incoming in records.items()}
    smaller_day = shrunk[ci.DAILY][0]
    fewer = {c: smaller_day.row[c] // 2 for c in TOKENS}
    shrunk[ci.DAILY][0] = ci.DAILY.record({**smaller_day.row, **fewer}, smaller_day.breakdowns)
    plans = write_all(store, shrunk, ci.Exact())  # transcripts are gone: nothing the reports hold is whole
    assert plans[ci.DAILY.name].kept == 1 and not any(plan.write for plan in plans.values())
    assert raw_rows(store) == before
    for table, incoming in records.items():
        assert set(store.stored_records(table)) == {r.key for r in incoming}, table.name


def test_a_windows_read_of_stored_rows_is_every_row_from_its_start_on_with_every_model(store: ci.Store):
    """An hourly import reads only the period rows its window can change (compared_from): Claude Code's from the
    bound on, with their per-model children (found by record key), and every other agent's rows whole."""
    records = {**recorded(), ci.HOURS: ci.hour_records(load("claude_blocks_hourly.json"))}
    codex = {table: [table.record({**r.row, "agent": "codex"}, r.breakdowns) for r in records[table][::3]]
             for table in (ci.DAILY, ci.MONTHLY, ci.PROJECT_DAYS)}
    write_all(store, records)
    write_all(store, codex, ci.Exact())  # another agent beside: Claude Code's rows stay
    for table in (ci.DAILY, ci.MONTHLY, ci.PROJECT_DAYS, ci.BLOCKS, ci.HOURS):
        every = store.stored_records(table)
        periods = sorted({r.row[table.period] for r in every.values() if r.row["agent"] == ci.CLAUDE})
        assert len(periods) >= 3 and any(r.breakdowns for r in every.values()), table.name
        for bound in (periods[0], periods[1], periods[len(periods) // 2], periods[-1]):
            read = store.stored_records(table, bound)
            expected = {key: r for key, r in every.items()
                        if r.row["agent"] != ci.CLAUDE or r.row[table.period] >= bound}
            assert {k: (r.row, r.breakdowns) for k, r in read.items()} == {
                k: (r.row, r.breakdowns) for k, r in expected.items()}, (table.name, bound)
            assert len(expected) < len(every) or bound == periods[0], (table.name, bound)


def test_machines_keep_their_own_rows(store: ci.Store):
    records = recorded()
    write_all(store, records)
    laptop = {table: store.stored_records(table) for table in records}
    desk = ci.Store(store.client, dataclasses.replace(store.config, machine_name="desk"))
    assert all(desk.stored_records(table) == {} for table in records)
    first = {table: incoming[:5] for table, incoming in records.items()}
    plans = write_all(desk, first)
    assert {name: counts(plan) for name, plan in plans.items()} == {
        table.name: (len(incoming), 0, 0, 0) for table, incoming in first.items()}
    assert {table: store.stored_records(table) for table in records} == laptop
    _, per_machine = store.query("SELECT machine_name, count() FROM ccusage_usage_sessions FINAL GROUP BY ALL "
                                 "ORDER BY ALL")
    assert per_machine == [("desk", 5), ("laptop", len(records[ci.SESSIONS]))]


def test_the_hash_key_is_made_once_and_an_explicit_key_must_stay_the_same(tmp_path: Path):
    own = ci.Store.open(config_for(tmp_path / "own"))
    try:
        key = own.hash_key(None)
        assert len(key) == 32 and own.hash_key(None) == key
        with pytest.raises(ci.UserError, match="already has its own hash key"):
            own.hash_key("my-key")
    finally:
        own.close()
    explicit = ci.Store.open(config_for(tmp_path / "explicit"))
    try:
        assert explicit.hash_key("my-key") == b"my-key" == explicit.hash_key("my-key")
        with pytest.raises(ci.UserError, match="differs from the key"):
            explicit.hash_key("another-key")
        with pytest.raises(ci.UserError, match="set it to the same key"):
            explicit.hash_key(None)
    finally:
        explicit.close()


def test_numbered_migrations_apply_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "002_add_note.sql").write_text(
        "-- a test migration\nALTER TABLE ccusage_usage_daily ADD COLUMN IF NOT EXISTS note String DEFAULT '';\n"
    )
    monkeypatch.setattr(ci, "MIGRATIONS_DIR", migrations)
    seen = []
    for _ in range(2):
        store = ci.Store.open(config_for(tmp_path))
        try:
            seen += [store.schema_version(), store.query("SELECT count() FROM ccusage_schema_migrations")[1][0][0]]
        finally:
            store.close()
    assert seen == [2, 2, 2, 2]


def test_the_schema_is_applied_again_only_when_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Opening a store whose last schema applied is this release's runs no statement of the schema; a changed schema
    file, or a view gone from the database, has it applied again."""
    config = config_for(tmp_path)
    ci.Store.open(config).close()
    changed = tmp_path / "schema.sql"
    changed.write_text(ci.SCHEMA_FILE.read_text() + "\nCREATE OR REPLACE VIEW ccusage_v_probe AS SELECT 1 AS one;\n")
    views = ("SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'ccusage_v_%' "
             "ORDER BY name")
    store = ci.Store.connect(config)
    try:
        statements: list[str] = []
        command = store.client.command
        monkeypatch.setattr(store.client, "command",
                            lambda sql, *args, **kwargs: statements.append(sql) or command(sql, *args, **kwargs))
        store.apply_schema()
        assert not statements  # this release's schema: nothing applied
        before = store.query(views)[1]
        store.client.command("DROP VIEW ccusage_v_model_days")
        store.apply_schema()
        assert store.query(views)[1] == before  # a view gone: the schema again
        statements.clear()
        monkeypatch.setattr(ci, "SCHEMA_FILE", changed)
        store.apply_schema()
        assert ("ccusage_v_probe",) in store.query(views)[1] and statements  # another schema file: applied
        statements.clear()
        store.apply_schema()
        assert not statements
    finally:
        store.close()


def test_an_import_never_loads_pandas(tmp_path: Path):
    """chDB installs pandas, and the driver would import it (0.5 s of CPU, ~40 MB) to ask whether each insert is a
    DataFrame: a run that writes must not pay for it."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
import ccusage_importer as ci
store = ci.Store.open(ci.Config.from_env({{"HOME": {str(tmp_path)!r}, "CCUSAGE_IMPORT_DB": {str(tmp_path / "chdb")!r},
                                          "MACHINE_NAME": "laptop", "TZ": "UTC"}}))
store.insert("ccusage_settings", [["probe", "1"]], ["name", "value"])
print(store.query("SELECT value FROM ccusage_settings WHERE name = 'probe'")[1], "pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[('1',)]", "False"]


def test_an_embedded_store_creates_its_database(tmp_path: Path):
    opened = ci.Store.open(config_for(tmp_path, CH_DATABASE="team_usage"))
    try:
        _, rows = opened.query("SELECT currentDatabase(), count() FROM system.tables "
                               "WHERE database = 'team_usage' AND name = 'ccusage_usage_daily'")
    finally:
        opened.close()
    assert rows == [("team_usage", 1)]


def test_the_journals_rows_planned_in_memory_are_what_the_store_holds_once_written(store: ci.Store):
    """Filing the journal plans each deferred import against the rows as the one before left them, in memory
    (StoredRows), and writes once: a grown row, a smaller one that replaces the stored one (its models gone) and a
    removed one, planned after a read of some rows (from a later period on; some sessions) and seen again by a read
    of more (from an earlier period on; more sessions), are what the store holds once written, row for row and
    model for model; the sessions' spans follow the plans."""
    write_all(store, {**recorded(), ci.HOURS: ci.hour_records(load("claude_blocks_hourly.json"))})
    held, expected, bounds = ci.StoredRows(store), {}, {}
    spans = held.session_spans()

    def resized(record: ci.Record, tokens: int, breakdowns: dict) -> ci.Record:
        row = {**record.row, "input_tokens": record.row["input_tokens"] + tokens,
               "total_tokens": record.row["total_tokens"] + tokens}
        return record.table.record(row, breakdowns)

    for table in (ci.DAILY, ci.PROJECT_DAYS, ci.BLOCKS, ci.HOURS, ci.SESSIONS):
        if table.period:
            periods = sorted({r.row[table.period] for r in store.stored_records(table).values()})
            late, early = periods[len(periods) // 2], periods[1]
        else:  # sessions are read by key
            keys = sorted(key for key, r in store.stored_records(table).items() if r.breakdowns)
            late, early = frozenset(keys[:3]), frozenset(keys[:6])
        first, second, third = sorted(held.stored_records(table, late).values(),
                                      key=lambda r: r.row[table.period] if table.period else r.key)[:3]
        assert second.row["input_tokens"] >= 1 and second.breakdowns, table.name
        held.planned([ci.TablePlan(table, {}, write=[resized(first, 1000, first.breakdowns),
                                                     resized(second, -1, {})], remove=[third])])
        expected[table], bounds[table] = held.stored_records(table, early), early
        assert third.key not in expected[table]
        assert expected[table][first.key].total_tokens == first.total_tokens + 1000, table.name
        assert expected[table][second.key].total_tokens == second.total_tokens - 1, table.name
        assert len(expected[table]) > len(held.stored_records(table, late)), table.name  # more rows were read too
    assert spans[first.key].total_tokens == first.total_tokens + 1000 and third.key not in spans
    held.written(VERSION)
    for table, rows in expected.items():
        read = store.stored_records(table, bounds[table])
        assert {k: (r.row, r.breakdowns) for k, r in read.items()} == {
            k: (r.row, r.breakdowns) for k, r in rows.items()}, table.name
    assert spans == store.session_spans()
