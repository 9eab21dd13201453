"""Pure transforms and planning rules, on real ccusage outputs recorded in tests/fixtures (no I/O beyond reading)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccusage_importer as ci

FIXTURES = Path(__file__).parent / "fixtures"
HASHER = ci.NameHasher(b"k" * 32, hash_names=True)
PLAIN = ci.NameHasher(b"k" * 32, hash_names=False)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def token_sums(rows) -> tuple[int, int, int, int]:
    return tuple(sum(r[c] for r in rows) for c in ci.TOKEN_COLUMNS)


def test_project_days_add_up_to_ccusage_totals():
    doc = load("claude_daily_instances.json")
    records = ci.project_day_records(doc, PLAIN)
    assert len(records) == 84
    assert token_sums([r.row for r in records]) == (
        doc["totals"]["inputTokens"],
        doc["totals"]["outputTokens"],
        doc["totals"]["cacheCreationTokens"],
        doc["totals"]["cacheReadTokens"],
    )
    assert sum(r.row["total_cost"] for r in records) == pytest.approx(doc["totals"]["totalCost"], rel=1e-12)
    assert {r.row["project_name"] for r in records} == set(doc["projects"])


def test_daily_derived_from_projects_equals_claude_daily():
    """The importer runs `daily --instances` only; its per-day sums must be `claude daily` exactly."""
    derived = {
        r.row["date"]: r for r in ci.daily_records(ci.project_day_records(load("claude_daily_instances.json"), PLAIN))
    }
    daily = load("claude_daily.json")["daily"]
    assert len(derived) == len(daily) == 47
    for item in daily:
        record = derived[dt.date.fromisoformat(item["date"])]
        assert (
            record.row["input_tokens"],
            record.row["output_tokens"],
            record.row["cache_creation_tokens"],
            record.row["cache_read_tokens"],
            record.row["total_tokens"],
        ) == (
            item["inputTokens"],
            item["outputTokens"],
            item["cacheCreationTokens"],
            item["cacheReadTokens"],
            item["totalTokens"],
        )
        assert record.row["total_cost"] == pytest.approx(item["totalCost"], rel=1e-12)
        assert record.row["models_used"] == sorted(item["modelsUsed"])
        by_model = {b["modelName"]: b for b in item["modelBreakdowns"]}
        assert set(record.breakdowns) == set(by_model)
        for model, values in record.breakdowns.items():
            assert values["output_tokens"] == by_model[model]["outputTokens"]
            assert values["cost"] == pytest.approx(by_model[model]["cost"], rel=1e-12)


def test_monthly_derived_from_daily_equals_claude_monthly():
    days = ci.daily_records(ci.project_day_records(load("claude_daily_instances.json"), PLAIN))
    months = {r.record_key: r for r in ci.monthly_records(days)}
    for item in load("claude_monthly.json")["monthly"]:
        record = months[item["month"]]
        assert record.row["total_tokens"] == item["totalTokens"]
        assert record.row["output_tokens"] == item["outputTokens"]
        assert record.row["total_cost"] == pytest.approx(item["totalCost"], rel=1e-12)
    assert len(months) == 3


def test_sessions_v20():
    doc = load("claude_session.json")
    records = ci.session_records(doc, HASHER)
    assert len(records) == 79
    assert sum(r.total_tokens for r in records) == doc["totals"]["totalTokens"]
    first = records[0].row
    assert first["first_activity"] == dt.datetime(2026, 11, 4, 7, 58, 44, 352000, tzinfo=dt.UTC)
    assert len(first["session_id"]) == 16 and first["session_id"] == first["session_key"]
    assert first["project_name"] == HASHER.key_of("-home-dev-code-ui-cli")


def test_blocks_skip_gaps_and_keep_projection():
    blocks = ci.block_records(load("claude_blocks.json"))
    assert len(blocks) == 128 - 54
    active = ci.block_records(load("claude_blocks_active.json"))[0].row
    assert active["is_active"] == 1
    assert active["projected_total_cost"] == 19.8 and active["projected_remaining_minutes"] == 64
    assert active["burn_rate_cost_per_hour"] == pytest.approx(7.204823951318519)
    assert sum(1 for b in blocks if b.row["usage_limit_reset_time"]) == 8


def test_old_v16_shapes():
    sessions = ci.session_records(load("old_v16_session.json"), PLAIN)
    assert len(sessions) == 23
    assert sessions[0].row["first_activity"] is None
    assert sessions[0].row["last_activity"] == dt.datetime(2026, 9, 26, tzinfo=dt.UTC)
    assert len(ci.daily_records([])) == 0
    blocks = ci.block_records(load("old_v16_blocks.json"))
    assert all(ci.SYNTHETIC_MODEL not in b.row["models_used"] for b in blocks)
    assert ci.project_day_records([], PLAIN) == [] and ci.session_records([], PLAIN) == []


def test_instances_v16_rows_have_no_project_field():
    doc = load("claude_daily_instances.json")
    for rows in doc["projects"].values():
        for row in rows:
            row.pop("project")
    assert len(ci.project_day_records(doc, PLAIN)) == 84


def test_empty_outputs():
    assert ci.project_day_records(load("empty_claude_daily_instances.json"), PLAIN) == []
    assert ci.block_records({"blocks": []}) == []
    assert ci.session_records({"sessions": [], "totals": {"totalCost": -0.0}}, PLAIN) == []


@pytest.mark.parametrize(
    "doc",
    [
        {"data": []},
        {"projects": []},
        {"projects": {"p": [{"date": "x"}]}},
        {"projects": {"p": [{"date": "2026-01-01", "inputTokens": -1}]}},
        "nonsense",
        None,
    ],
)
def test_unknown_shapes_are_refused(doc):
    with pytest.raises(ci.ShapeError):
        ci.project_day_records(doc, PLAIN)


def test_hash_is_keyed_and_stable():
    other = ci.NameHasher(b"x" * 32, hash_names=True)
    assert HASHER.key_of("-Users-bob-x") == HASHER.key_of("-Users-bob-x")
    assert HASHER.key_of("-Users-bob-x") != other.key_of("-Users-bob-x")
    assert PLAIN.display('it\'s "q"') == 'it\'s "q"' and PLAIN.key_of("a") == HASHER.key_of("a")


def test_timestamps_are_utc_whatever_the_offset():
    assert ci.parse_timestamp("2026-11-04T16:58:44.352+09:00") == dt.datetime(
        2026, 11, 4, 7, 58, 44, 352000, tzinfo=dt.UTC
    )


# -- planning rules ---------------------------------------------------------------------------------------------


def day(date: str, tokens: int, cost: float = 1.0) -> ci.Record:
    return ci.DAILY.record({
        "agent": "claude",
        "date": dt.date.fromisoformat(date),
        "input_tokens": tokens,
        "output_tokens": 0,
        "cache_creation_tokens": 0,
        "cache_read_tokens": 0,
        "total_tokens": tokens,
        "total_cost": cost,
        "models_count": 0,
        "models_used": [],
    })


def test_plan_never_replaces_with_less_and_is_honest():
    stored = {r.key: r for r in (day("2026-01-01", 100), day("2026-01-02", 50), day("2026-01-03", 7))}
    incoming = [day("2026-01-01", 60), day("2026-01-02", 50), day("2026-01-03", 9), day("2026-01-04", 1)]
    plan = ci.plan_table(ci.DAILY, incoming, stored)
    assert (plan.new, plan.changed, plan.unchanged, plan.kept) == (1, 1, 1, 1)
    assert [r.row["total_tokens"] for r in plan.write] == [9, 1]


def test_plan_rewrites_equal_tokens_when_content_changed():
    plan = ci.plan_table(
        ci.DAILY, [day("2026-01-01", 100, cost=2.0)], {("claude", dt.date(2026, 1, 1)): day("2026-01-01", 100)}
    )
    assert plan.changed == 1


JAN_1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def block(start_hour: int, tokens: int) -> ci.Record:
    start = dt.datetime(2026, 1, 1, start_hour, tzinfo=dt.UTC)
    return ci.BLOCKS.record({"agent": "claude", "start_time": start, "end_time": start + dt.timedelta(hours=5),
                             "total_tokens": tokens})


def test_plan_keeps_blocks_that_come_back_shifted():
    """After old transcripts went, ccusage chains the first blocks from a later line: a block under another start
    that overlaps a stored one is kept out; a new block is written only where the report provably holds the full
    history's blocks (from 11:00 here); a block under a stored start that grew is written."""
    stored = {b.key: b for b in (block(0, 100), block(6, 50))}
    exact = ci.Exact(blocks_from=dt.datetime(2026, 1, 1, 11, tzinfo=dt.UTC))
    plan = ci.plan_table(ci.BLOCKS, [block(2, 80), block(11, 10), block(6, 60)], stored, exact=exact)
    assert (plan.new, plan.changed, plan.kept) == (1, 1, 1)
    assert not ci.plan_table(ci.BLOCKS, [block(11, 10)], stored).write  # not provably the full history's


def test_plan_makes_exact_blocks_equal_to_the_report():
    """Blocks the report provably holds whole replace stored ones, smaller too, and a stored block there under
    another start (a window once cut it wrong) is removed."""
    stored = {b.key: b for b in (block(0, 100), block(12, 50), block(20, 70))}
    exact = ci.Exact(blocks_from=dt.datetime(2026, 1, 1, 11, tzinfo=dt.UTC))
    plan = ci.plan_table(ci.BLOCKS, [block(0, 90), block(11, 60), block(20, 40)], stored, exact=exact)
    assert [r.row["start_time"].hour for r in plan.write] == [11, 20] and plan.shrunk == {block(20, 0).key}
    assert [r.row["start_time"].hour for r in plan.remove] == [12] and plan.kept == 1  # 0:00 is not exact
    assert plan.current()[block(0, 0).key].total_tokens == 100  # before the exact range: never smaller


BLOCK_SPANS = st.lists(st.tuples(st.integers(0, 20), st.integers(1, 5), st.integers(0, 9)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(BLOCK_SPANS, BLOCK_SPANS, st.one_of(st.none(), st.integers(0, 20)))
def test_a_windows_plan_of_blocks_needs_no_stored_block_before_its_bound(stored, incoming, exact_from):
    """An hourly import reads the stored blocks from compared_from's bound on; planned against those alone, the
    blocks plan is the plan against every stored block: none it leaves out is compared, proven or overlapped."""
    def blocks(spans):
        return {(start := JAN_1 + dt.timedelta(hours=hour)): ci.BLOCKS.record({
            "agent": "claude", "start_time": start, "end_time": start + dt.timedelta(hours=hours),
            "total_tokens": tokens}) for hour, hours, tokens in spans}.values()

    every = {b.key: b for b in blocks(stored)}
    reported = list(blocks(incoming))
    exact = ci.Exact(blocks_from=None if exact_from is None else JAN_1 + dt.timedelta(hours=exact_from))
    window = ci.Window(since=JAN_1.date(), start=JAN_1, files=("a.jsonl",))
    bound = ci.compared_from(window, reported, exact).get(ci.BLOCKS)
    read = {key: b for key, b in every.items() if bound is not None and b.row["start_time"] >= bound}
    if bound is None:  # nothing reported nor proven: no stored block can change
        assert not ci.plan_table(ci.BLOCKS, reported, every, exact=exact).write
        return

    def outcome(plan: ci.TablePlan):
        return ([(r.key, r.total_tokens) for r in plan.write], [r.key for r in plan.remove], plan.shrunk,
                (plan.new, plan.changed, plan.kept))

    assert outcome(ci.plan_table(ci.BLOCKS, reported, read, exact=exact)) == outcome(
        ci.plan_table(ci.BLOCKS, reported, every, exact=exact))


class RowsInMemory:
    """Stored sessions as Store.stored_records and Store.session_spans answer for them (`whole`: every session read
    whole whatever is asked, as the plan once read them); `asked`: what each read of sessions asked for."""

    def __init__(self, sessions: dict, whole: bool = False):
        self.sessions, self.whole, self.asked = sessions, whole, []

    def stored_records(self, table: ci.UsageTable, claude_rows=None) -> dict:
        self.asked.append(claude_rows)
        return {k: r for k, r in self.sessions.items() if self.whole or claude_rows is None or k in claude_rows}

    def session_spans(self) -> dict:
        return {k: ci.SessionSpan.of(r) for k, r in self.sessions.items()}


def session_specs(sessions: int) -> st.SearchStrategy:
    """(project, session, first hour, hours, files, tokens, in the window) of sessions of two projects."""
    return st.lists(st.tuples(st.integers(0, 1), st.integers(0, sessions - 1), st.integers(0, 30), st.integers(0, 6),
                              st.integers(0, 2), st.integers(0, 900), st.booleans()), max_size=12)


@settings(max_examples=500, deadline=None)
@given(session_specs(8), session_specs(4), st.dictionaries(st.tuples(st.integers(0, 1), st.integers(0, 7)),
                                                           st.integers(0, 3)), st.booleans(), st.booleans())
def test_a_plan_of_sessions_reads_whole_only_those_it_compares(stored, incoming, on_disk, windowed, by_key):
    """An hourly import reads whole only the stored sessions its window holds whole, a full read those it reports
    or has files of, each also those moved to them, and of every other one its span (whether it lost files);
    planned so, the sessions' plan is the plan against every stored session read whole: resumed, moved and
    emptied sessions decided alike."""
    def sessions(specs):
        return {(r := ci.SESSIONS.record({
            "agent": "claude", "project_key": f"p{project}", "session_key": f"s{session}",
            "first_activity": JAN_1 + dt.timedelta(hours=first), "transcript_files": files, "total_tokens": tokens,
            "last_activity": JAN_1 + dt.timedelta(hours=first + length)})).key: r
            for project, session, first, length, files, tokens, _ in specs}

    every, reported = sessions(stored), list(sessions(incoming).values())
    files = {("claude", f"p{project}", f"s{session}"): count for (project, session), count in on_disk.items()}
    in_window = {("claude", f"p{spec[0]}", f"s{spec[1]}") for spec in stored + incoming if spec[-1]}
    window = ci.Window(since=JAN_1.date(), start=JAN_1, files=("a.jsonl",)) if windowed else None
    compared = in_window if windowed else {r.key for r in reported} | set(files)

    def plan(source: RowsInMemory):
        planned = ci.plan_run(source, {"sessions": reported}, files, (window, in_window if windowed else None),
                              ci.GoneTranscripts(), None, (), "UTC")
        plan = next(p for p in planned.plans if p.table is ci.SESSIONS)
        return ([(r.key, r.total_tokens) for r in plan.write], [r.key for r in plan.remove],
                (plan.new, plan.changed, plan.unchanged, plan.kept))

    source = RowsInMemory(every)
    with mock.patch.multiple(ci, SESSIONS_READ_ALL_BELOW=0, SESSIONS_READ_BY_KEY_BELOW=2) if by_key else (
            contextlib.nullcontext()):  # by key whenever one is stored, or as the importer chooses (all: few stored)
        assert plan(source) == plan(RowsInMemory(every, whole=True))
    wanted = (compared | ci.moved_sessions(every, reported, files)) & every.keys()
    assert source.asked == [frozenset(wanted) if by_key and every else None]


# -- clock hours -----------------------------------------------------------------------------------------------------


def test_hours_are_ccusages_one_hour_blocks_without_the_gaps():
    """`claude blocks --session-length 1` (recorded on generated transcripts): each non-gap block is one clock hour
    with ccusage's own tokens, cost, entries and models."""
    doc = load("claude_blocks_hourly.json")
    records = ci.hour_records(doc)
    blocks = [b for b in doc["blocks"] if not b["isGap"]]
    assert len(records) == len(blocks) == 12
    for record, item in zip(records, blocks, strict=True):
        row = record.row
        assert row["hour"].isoformat().replace("+00:00", ".000Z") == item["startTime"]
        assert (row["input_tokens"], row["output_tokens"], row["cache_creation_tokens"], row["cache_read_tokens"]) == (
            item["tokenCounts"]["inputTokens"], item["tokenCounts"]["outputTokens"],
            item["tokenCounts"]["cacheCreationInputTokens"], item["tokenCounts"]["cacheReadInputTokens"])
        assert row["total_tokens"] == item["totalTokens"] and row["total_cost"] == item["costUSD"]
        assert row["entries"] == item["entries"] and row["models_used"] == sorted(item["models"])
        assert set(record.breakdowns) == set(item["models"]) and record.record_key == item["startTime"][:19] + "Z"


@pytest.mark.parametrize(("start", "end"), [("2026-11-18T02:30:00.000Z", "2026-11-18T03:30:00.000Z"),
                                            ("2026-11-18T02:00:00.000Z", "2026-11-18T07:00:00.000Z")])
def test_a_block_that_is_not_one_clock_hour_is_refused(start, end):
    """Stored under the wrong hour it would never be put right: a report whose blocks are not clock hours (another
    ccusage, or a session length not passed) is an unknown shape."""
    doc = load("claude_blocks_hourly.json")
    doc["blocks"][0].update(startTime=start, endTime=end)
    with pytest.raises(ci.ShapeError, match="not one clock hour"):
        ci.hour_records(doc)


def test_the_first_exact_hour_is_the_windows_start_and_after_the_newest_unseen_line():
    start = dt.datetime(2026, 11, 12, 8, tzinfo=dt.UTC)  # midnight in Los Angeles
    assert ci.first_exact_hour(start, None) == start
    assert ci.first_exact_hour(None, None) == dt.datetime.min.replace(tzinfo=dt.UTC)  # a full read, nothing gone
    gone = dt.datetime(2026, 11, 12, 10, 50, tzinfo=dt.UTC)  # a gone transcript's last line
    assert ci.first_exact_hour(start, gone) == ci.first_exact_hour(None, gone) == gone.replace(hour=11, minute=0)
    assert ci.first_exact_hour(start, dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) == start


def hour(at: int, tokens: int) -> ci.Record:
    return ci.HOURS.record({"agent": "claude", "hour": dt.datetime(2026, 1, 1, at, tzinfo=dt.UTC),
                            "total_tokens": tokens})


def test_plan_makes_exact_hours_equal_to_the_report_and_never_shrinks_the_others():
    stored = {h.key: h for h in (hour(9, 100), hour(10, 100), hour(12, 50))}
    exact = ci.Exact(hours_from=dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC))
    plan = ci.plan_table(ci.HOURS, [hour(9, 60), hour(10, 80), hour(11, 30)], stored, exact=exact)
    rows = {key[1].hour: record.total_tokens for key, record in plan.current().items()}
    assert rows == {9: 100, 10: 80, 11: 30}  # 9:00 is before the exact hours: kept; 12:00 is not reported: removed
    assert plan.shrunk == {hour(10, 0).key} and [r.key for r in plan.remove] == [hour(12, 0).key]


def session(first_hour: int, tokens: int, key: str = "s", files: int = 1) -> ci.Record:
    return ci.SESSIONS.record({"agent": "claude", "project_key": "p", "session_key": key, "total_tokens": tokens,
                               "first_activity": dt.datetime(2026, 1, 1, first_hour, tzinfo=dt.UTC),
                               "last_activity": dt.datetime(2026, 1, 1, first_hour + 1, tzinfo=dt.UTC),
                               "transcript_files": files})


def test_plan_keeps_a_session_that_absorbed_replayed_history():
    """The original's file is gone and the resumed session took over its replayed lines: the original's stored
    row counts them, so the resumed one stays as stored."""
    stored = {("claude", "p", "s"): session(5, 300), ("claude", "p", "original"): session(1, 200, "original")}
    plan = ci.plan_table(ci.SESSIONS, [session(1, 500)], stored, {("claude", "p", "s"): 1})
    assert plan.kept == 1 and not plan.write


def test_plan_writes_a_session_whose_first_activity_was_stored_too_late():
    """No file has gone: a first activity that moved earlier means the stored row had missed the session's head
    (a first line over 64 KiB once hid it), and the whole session is the truth."""
    stored = {("claude", "p", "s"): session(5, 300)}
    plan = ci.plan_table(ci.SESSIONS, [session(1, 500)], stored, {("claude", "p", "s"): 1})
    assert plan.changed == 1 and plan.write[0].total_tokens == 500


def test_plan_empties_a_session_that_moved_to_another_project_folder():
    stored = {("claude", "p", "s"): session(5, 300)}
    moved = ci.SESSIONS.record({**session(5, 300).row, "project_key": "q"})
    assert ci.moved_sessions(stored, [moved], {("claude", "q", "s"): 1}) == {("claude", "p", "s")}
    plan = ci.plan_table(ci.SESSIONS, [moved], stored, {("claude", "q", "s"): 1}, moved={("claude", "p", "s")})
    assert [(r.key, r.total_tokens) for r in plan.write] == [(("claude", "q", "s"), 300), (("claude", "p", "s"), 0)]


def test_split_sql_handles_comments_and_semicolons_inside_lines():
    statements = ci.split_sql("-- a; comment\nSELECT 1;\nSELECT ';' AS x;\n")
    assert statements == ["SELECT 1", "SELECT ';' AS x"]


# -- configuration ----------------------------------------------------------------------------------------------


def test_configuration_from_the_environment():
    home = {"HOME": "/home/u"}
    config = ci.Config.from_env({**home, "MACHINE_NAME": "box"})
    assert config.embedded and config.embedded_path == Path("/home/u/.local/share/ccusage-import/chdb")
    assert ci.Config.from_env({**home, "XDG_DATA_HOME": "/data"}).embedded_path == Path("/data/ccusage-import/chdb")
    assert ci.Config.from_env({**home, "CCUSAGE_IMPORT_DB": "/x/db"}).embedded_path == Path("/x/db")
    assert ci.Config.from_env({**home, "CH_HOST": "h", "CH_PORT": "8443"}).ch_secure
    assert ci.Config.from_env({**home, "CH_HOST": "h", "CH_PORT": "443"}).ch_secure
    assert not ci.Config.from_env({**home, "CH_HOST": "h"}).ch_secure
    assert ci.Config.from_env({**home, "CH_HOST": "h", "CH_PROTOCOL": "https"}).ch_secure
    assert config.machine_name == "box" and config.ccusage_version == "20.0.24" and config.timezone == "UTC"


@pytest.mark.parametrize(("env", "message"), [
    ({"CH_HOST": "h", "CH_PORT": "9440"}, "native-protocol port 9440"),
    ({"CH_PORT": "http"}, "must be a whole number from 1 to 65535"),
    ({"CH_DATABASE": "x; DROP TABLE y"}, "is not a plain database name"),
    ({"CCUSAGE_VERSION": "latest"}, "must be an exact version"),
    ({"CCUSAGE_TIMEZONE": "Mars/Olympus"}, "is not an IANA time zone"),
    ({"CCUSAGE_TIMEOUT": "soon"}, "must be a number from 0 to 86400"),
    ({"CH_PROTOCOL": "ftp"}, "must be http or https"),
])
def test_bad_configuration_is_one_clear_message(env, message):
    with pytest.raises(ci.UserError, match=message):
        ci.Config.from_env({"HOME": "/home/u", **env})


def test_redact_hides_the_password_everywhere():
    config = ci.Config.from_env({"HOME": "/h", "CH_HOST": "h", "CH_PASSWORD": "s3cret!"})
    assert config.redact("login s3cret! failed for s3cret!") == "login *** failed for ***"
    assert "s3cret" not in repr(config)


def session_row(tokens: int, files: int, first_hour: int = 1) -> ci.Record:
    return ci.SESSIONS.record({
        "agent": "claude", "project_key": "p", "session_key": "s",
        "first_activity": dt.datetime(2026, 1, 1, first_hour, tzinfo=dt.UTC), "transcript_files": files,
        "input_tokens": tokens, "output_tokens": 0, "cache_creation_tokens": 0, "cache_read_tokens": 0,
        "total_tokens": tokens, "total_cost": tokens / 1000, "models_count": 1, "models_used": ["m"]},
        {"m": {"total_tokens": tokens}})


@pytest.mark.parametrize(("incoming", "files_now", "outcome"), [
    (session_row(300, 1), {("claude", "p", "s"): 1}, "written"),  # files all there: lines moved to a resumed session
    (session_row(300, 1), {}, "written"),  # the count travels with the incoming row itself
    (session_row(300, 0), {}, "kept"),  # unknown file count (ccusage <= 18): never shrink
])
def test_a_session_shrinks_only_when_none_of_its_files_went(incoming, files_now, outcome):
    stored = {("claude", "p", "s"): session_row(500, 1)}
    plan = ci.plan_table(ci.SESSIONS, [incoming], stored, files_now)
    assert (plan.write == [incoming]) == (outcome == "written") and (plan.kept == 1) == (outcome == "kept")
    fewer_files = ci.plan_table(ci.SESSIONS, [session_row(300, 1)], {("claude", "p", "s"): session_row(500, 2)})
    assert fewer_files.kept == 1 and not fewer_files.write  # a sub-agent file was deleted: history stays


def test_a_session_taken_over_whole_gets_a_zero_row_only_if_its_files_are_there():
    stored = {("claude", "p", "s"): session_row(500, 2)}
    plan = ci.plan_table(ci.SESSIONS, [], stored, {("claude", "p", "s"): 2})
    assert [r.row["total_tokens"] for r in plan.write] == [0] and plan.write[0].breakdowns == {}
    assert plan.write[0].row["models_used"] == [] and plan.write[0].row["total_cost"] == 0
    assert not ci.plan_table(ci.SESSIONS, [], stored, {("claude", "p", "s"): 1}).write  # a file went: keep
    assert not ci.plan_table(ci.SESSIONS, [], stored, {}).write  # all files gone: keep
    assert not ci.plan_table(ci.DAILY, [], {("claude", dt.date(2026, 1, 1)): day("2026-01-01", 5)}).write


def test_session_of_follows_ccusage_layout():
    assert ci.session_of(("p", "s.jsonl")) == ("p", "s")
    assert ci.session_of(("p", "s", "subagents", "agent-1.jsonl")) == ("p", "s")
    assert ci.session_of(("p", "x", "y", "z.jsonl")) == ("p", "y")


# -- one spec per table -------------------------------------------------------------------------------------------


def test_every_usage_table_spec_matches_the_schema_file():
    """The specs are the importer's only list of columns: they must be the schema file's, in its order."""
    schema = ci.expected_schema(ci.SCHEMA_FILE.read_text())
    for table in ci.USAGE_TABLES:
        assert schema[table.name].columns == ("machine_name", *table.columns, "ccusage_version", "imported_at")
        assert set(table.key) <= set(table.columns)
    assert {t.name for t in ci.USAGE_TABLES} | set(ci.CHILD_TABLES) == {
        name for name, item in schema.items() if name.startswith("ccusage_usage_") or name in ci.CHILD_TABLES}
    record_types = schema["ccusage_model_breakdowns"].types["record_type"]
    assert all(f"'{t.record_type}'" in record_types for t in ci.USAGE_TABLES)
    assert list(ci.RUN_COLUMNS) == list(schema["ccusage_import_runs"].columns)


def test_records_from_every_report_fill_exactly_their_table_columns():
    context = ci.ParseContext(HASHER)
    parsed = {name: ci.REPORTS[name].parse(load(fixture), context)[0] for name, fixture in (
        ("projects_daily", "claude_daily_instances.json"), ("sessions", "claude_session.json"),
        ("blocks", "claude_blocks.json"), ("hourly", "claude_blocks_hourly.json"),
        ("agents", "agents/unified_session_sections.json"))}
    days = ci.daily_records(parsed["projects_daily"])
    for records in (*parsed.values(), days, ci.monthly_records(days)):
        assert records and all(set(r.row) == set(r.table.columns) for r in records)
    for name, records in parsed.items():
        assert {r.table for r in records} <= set(ci.REPORTS[name].tables)


# -- every other agent, from ccusage's unified report ------------------------------------------------------------


def agent_totals(records, table) -> dict:
    return {(r.row["agent"], r.row.get("date") or r.row["session_id"]): (
        r.row["input_tokens"], r.row["output_tokens"], r.row["cache_creation_tokens"], r.row["cache_read_tokens"],
        r.row["total_tokens"]) for r in records if r.table is table}


def test_agents_days_and_sessions_equal_their_own_reports():
    """The unified report's rows per agent are what `ccusage <agent> daily|session` print (recorded together)."""
    records, errors = ci.agent_records(load("agents/unified_session_sections.json"), PLAIN, lambda agent: True)
    assert errors == [] and {r.row["agent"] for r in records} == {"codex", "gemini", "opencode"}  # no claude
    for agent in ("codex", "gemini", "opencode"):
        own = load(f"agents/{agent}_daily.json")["daily"]
        days = {d: t for (a, d), t in agent_totals(records, ci.DAILY).items() if a == agent}
        assert days == {dt.date.fromisoformat(item["date"]): (
            item["inputTokens"], item["outputTokens"], item["cacheCreationTokens"], item["cacheReadTokens"],
            item["totalTokens"]) for item in own}
        costs = {r.row["date"]: r.row["total_cost"] for r in records if r.table is ci.DAILY and r.row["agent"] == agent}
        for item in own:
            assert costs[dt.date.fromisoformat(item["date"])] == pytest.approx(item.get("totalCost", item.get(
                "costUSD")), rel=1e-12)
        sessions = {s: t for (a, s), t in agent_totals(records, ci.SESSIONS).items() if a == agent}
        assert sum(t[4] for t in sessions.values()) == load(f"agents/{agent}_session.json")["totals"]["totalTokens"]
    codex = [r for r in records if r.table is ci.SESSIONS and r.row["agent"] == "codex"]
    assert all(r.row["project_key"] == "" and r.row["project_name"] == "" for r in codex)  # no invented project
    assert any(r.row["reasoning_tokens"] for r in codex) and all(r.row["last_activity"] for r in codex)
    gemini = [r for r in records if r.table is ci.SESSIONS and r.row["agent"] == "gemini"]
    assert gemini and all(r.row["last_activity"] is None and r.row["reasoning_tokens"] is None for r in gemini)


def test_models_add_up_to_their_day_in_every_counted_column():
    records, _ = ci.agent_records(load("agents/unified_session_sections.json"), PLAIN, lambda agent: True)
    for record in records:
        for column in ci.TOKEN_COLUMNS:
            assert sum(m[column] for m in record.breakdowns.values()) == record.row[column]
        assert sum(m["cost"] for m in record.breakdowns.values()) == pytest.approx(record.row["total_cost"])


def test_an_unknown_agent_is_imported_and_a_broken_one_skipped_alone():
    doc = load("agents/unified_session_sections.json")
    newcomer = {"agent": "newagent", "inputTokens": 5, "outputTokens": 7, "cacheCreationTokens": 0,
                "cacheReadTokens": 1, "totalTokens": 13, "totalCost": 0.5, "modelsUsed": ["m1"],
                "modelBreakdowns": [{"modelName": "m1", "inputTokens": 5, "outputTokens": 7, "cacheCreationTokens": 0,
                                     "cacheReadTokens": 1, "cost": 0.5}]}
    doc["daily"][0]["agents"].append(newcomer)
    doc["session"].append({**newcomer, "period": "n-1"})
    doc["daily"][0]["agents"].append({"agent": "brokenagent", "inputTokens": "many"})
    records, errors = ci.agent_records(doc, PLAIN, lambda agent: True)
    assert [e.split(":")[0] for e in errors] == ["agent 'brokenagent'"]
    assert {r.row["agent"] for r in records} == {"codex", "gemini", "opencode", "newagent"}
    assert [r.row["total_tokens"] for r in records if r.row["agent"] == "newagent"] == [13, 13]
    only, _ = ci.agent_records(doc, PLAIN, lambda agent: agent == "gemini")
    assert {r.row["agent"] for r in only} == {"gemini"}


# -- any JSON: rows or the one shape error -------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
KEYS = st.sampled_from(["projects", "daily", "sessions", "blocks", "sessionId", "projectPath", "date", "inputTokens",
                        "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalCost", "modelsUsed",
                        "modelBreakdowns", "modelName", "cost", "lastActivity", "firstActivity", "startTime",
                        "endTime", "tokenCounts", "isGap", "entries", "costUSD", "models", "burnRate", "projection",
                        "actualEndTime", "usageLimitResetTime", "totalTokens", "remainingMinutes"])
REPORT_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
    | st.sampled_from(["2026-11-01", "2026-11-01T10:00:00Z", "9999-12-31T23:59:59+14:00", "claude-opus-4-5", ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON, REPORT_LIKE))
def test_any_json_gives_records_or_the_shape_error(doc):
    """No exception but ShapeError escapes a report's parser or its size, whatever ccusage prints."""
    for report in ci.REPORTS.values():
        assert report.size(doc) >= 0
        try:
            records, _ = report.parse(doc, ci.ParseContext(HASHER))
            if report.name == "projects_daily":
                ci.monthly_records(ci.daily_records(records))
        except ci.ShapeError as exc:
            assert str(exc) and "\n" not in str(exc)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=2, max_size=60), st.randoms())
def test_months_add_up_the_same_whatever_the_order_of_their_days(costs, random):
    """A month summed from stored and new days in another order is the same float: `--force` rewrites nothing."""
    days = [day(f"2026-01-{n % 28 + 1:02d}", 10, cost) for n, cost in enumerate(costs)]
    shuffled = random.sample(days, len(days))
    assert [m.row for m in ci.monthly_records(days)] == [m.row for m in ci.monthly_records(shuffled)]


def test_token_counts_beyond_uint64_are_refused_by_name():
    doc = {"projects": {"p": [{"date": "2026-11-20", "inputTokens": 2 * 10**19, "modelsUsed": []}]}}
    with pytest.raises(ci.ShapeError, match=r"2026-11-20.*more than a table can hold"):
        ci.project_day_records(doc, PLAIN)
    halves = {"projects": {p: [{"date": "2026-11-20", "inputTokens": 10**19, "modelsUsed": []}] for p in "ab"}}
    with pytest.raises(ci.ShapeError, match="day 2026-11-20: input_tokens adds up to"):
        ci.daily_records(ci.project_day_records(halves, PLAIN))
