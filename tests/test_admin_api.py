"""The Admin API importer against a local imitation of the Anthropic Admin API (tests/fake_admin_api.py).

The first tests are pure (transforms, retry decisions, planning, in-process). The rest run the whole importer,
`claude_admin_importer.main(argv, env)`, with ANTHROPIC_BASE_URL pointing at the local server and its own chDB
store, and read the store back as `ccusage_importer.py --sql` would (conftest.sql). They run it in this process,
its output read at the file descriptors as a parent reads a child's pipes (a process start costs about 1 s); a few
start it as a process, as cron would, where only a process shows it: exit codes as a shell sees them, a run killed
mid-way. Expected values come from the server's own data (Decimal sums of the amount strings it served), never from
the importer.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN_IMPORTER, cli_env, free_port, run_admin, run_ccusage, run_cli, run_here, sql, sql_many
from fake_admin_api import (
    CODE_PATH,
    COST_PATH,
    USAGE_PATH,
    WORKSPACES,
    FakeAdminApi,
    Fault,
    OrgData,
    empty_day,
    value_at,
)
from transcripts import generate

import claude_admin_importer as cai
from ccusage_importer import ShapeError, UserError

KEY = "sk-ant-admin01-QxTESTKEY-7f3c9e1d2b4a6c8e0f1a3b5c7d9e-never-show-me"
AUG = [dt.date(2025, 8, d) for d in range(1, 15)]  # two 7-day windows; the 2nd, 7th and 12th are empty days
LAST_WEEK = AUG[7:]  # a backfill of AUG imports hourly usage for these days (its last 7) by default
COST_GROUPS = {"workspace_id", "description"}
TOKEN_PATHS = (("uncached_input_tokens",), ("cache_creation", "ephemeral_5m_input_tokens"),
               ("cache_creation", "ephemeral_1h_input_tokens"), ("cache_read_input_tokens",), ("output_tokens",))
USAGE_GROUPS = set(cai.USAGE_DIMENSIONS)


def day(n: int) -> dt.date:
    return dt.date(2025, 8, n)


def at(n: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 8, n, hour, minute, tzinfo=dt.UTC)


def as_served(items: list) -> list:
    """Items as the importer reads them off the wire: JSON, fractions parsed as Decimal."""
    return cai.parse_json(cai.Reply(200, {}, json.dumps({"data": items}).encode()), "test", str)["data"]


# ----------------------------------------------------------------------------------------------------------------
# Pure: transforms, retry decisions, plan
# ----------------------------------------------------------------------------------------------------------------


def test_cents_strings_become_exact_dollars():
    assert cai.cents_to_usd(cai.exact_decimal("123.78912", "t")) == Decimal("1.2378912")
    assert cai.cents_to_usd(cai.exact_decimal(186, "t")) == Decimal("1.86")
    assert cai.cents_to_usd(cai.exact_decimal(Decimal("113.5"), "t")) == Decimal("1.135")
    assert cai.cents_to_usd(cai.exact_decimal("0.0000000001", "t")) == Decimal("0.000000000001")
    for bad in (1.5, True, "1e5", "12,5", "NaN", None, "0.00000000001", "1" * 27):
        with pytest.raises(ShapeError):
            cai.exact_decimal(bad, "t")


def test_cost_rows_sum_to_the_served_amounts_and_keep_nulls_as_empty():
    data = OrgData()
    results = as_served(FakeAdminApi._group_costs(data.cost_results(day(1)), COST_GROUPS))
    rows = cai.cost_rows(day(1), results)
    assert len(rows) == 13
    assert sum(r["amount_usd"] for r in rows) == data.billed_cents([day(1)]) / 100
    default_workspace = [r for r in rows if r["workspace_id"] == ""]
    assert len(default_workspace) == 4 and {r["model"] for r in default_workspace} == {"claude-opus-5",
                                                                                      "claude-sonnet-4-5"}
    web = next(r for r in rows if r["cost_type"] == "web_search")
    assert (web["model"], web["token_type"], web["service_tier"]) == ("", "", "")
    with pytest.raises(ShapeError, match="not USD"):
        cai.cost_rows(day(1), [{**results[0], "currency": "EUR"}])


def test_results_sharing_a_key_are_added_not_replaced():
    result = {"amount": "10.5", "currency": "USD", "description": "Web Search Usage", "workspace_id": None}
    rows = cai.cost_rows(day(1), [result, {**result, "amount": "0.25"}])
    assert [(r["amount_cents"], r["amount_usd"]) for r in rows] == [(Decimal("10.75"), Decimal("0.1075"))]


def test_usage_rows_read_nested_cache_writes():
    data = OrgData()
    rows = cai.usage_rows(day(1), as_served(FakeAdminApi._group_usage(data.usage_results(day(1)), USAGE_GROUPS)))
    assert len(rows) == 12
    for column, path in cai.USAGE_COUNTS.items():
        assert sum(r[column] for r in rows) == data.usage_total([day(1)], path), column
    assert sum(r["cache_creation_1h_input_tokens"] for r in rows) > 0
    assert {r["api_key_id"] for r in rows} == {"", "apikey_01Rj2N8SVvo6BePZj99NhmiT",
                                                "apikey_01WCz1FkmYMm4gnmykNKUu3Q"}


def test_claude_code_records_in_both_date_forms_with_optional_fields():
    data = OrgData()
    records = as_served(data.code_records(day(1)))
    assert {len(r["date"]) for r in records} == {10, 20}
    activity, models = cai.code_rows(day(1), records)
    assert len(activity) == 5
    assert sorted(r["is_remote"] for r in activity) == ["", "", "false", "false", "true"]
    assert sorted(r["subscription_type"] for r in activity) == ["", "", "enterprise", "enterprise", "enterprise"]
    ada = sorted((r["terminal_type"], r["is_remote"]) for r in activity if r["actor_id"] == "ada@example.com")
    assert ada == [("iTerm.app", "false"), ("web", "true")]
    assert sum(r["output_tokens"] for r in models) == data.code_total([day(1)], "output")
    assert sum(r["estimated_cost_usd"] for r in models) == data.code_estimate_cents([day(1)]) / 100
    assert not [c for c in cai.PRODUCTIVITY.columns if "cost" in c]
    with pytest.raises(ShapeError, match="dated"):
        cai.code_rows(day(2), records)


def test_buckets_by_day_refuses_overlapping_pages_and_non_day_buckets():
    bucket = {"starting_at": "2025-08-01T00:00:00Z", "ending_at": "2025-08-02T00:00:00Z", "results": []}
    assert cai.buckets_by_day([{"data": [bucket]}], "t") == {day(1): {at(1): []}}
    with pytest.raises(ShapeError, match="came twice"):
        cai.buckets_by_day([{"data": [bucket]}, {"data": [bucket]}], "t")
    with pytest.raises(ShapeError, match="not one UTC day"):
        cai.buckets_by_day([{"data": [{**bucket, "ending_at": "2025-08-01T01:00:00Z"}]}], "t")
    hour = {"starting_at": "2025-08-01T05:00:00Z", "ending_at": "2025-08-01T06:00:00Z", "results": [{}]}
    assert cai.buckets_by_day([{"data": [hour]}], "t", cai.HOUR) == {day(1): {at(1, 5): [{}]}}
    with pytest.raises(ShapeError, match="the bucket of 2025-08-01 05:00 came twice"):
        cai.buckets_by_day([{"data": [hour]}, {"data": [hour]}], "t", cai.HOUR)
    for wrong in (bucket, {**hour, "starting_at": "2025-08-01T05:30:00Z", "ending_at": "2025-08-01T06:30:00Z"}):
        with pytest.raises(ShapeError, match="not one UTC hour"):
            cai.buckets_by_day([{"data": [wrong]}], "t", cai.HOUR)


def test_a_day_needs_every_bucket_that_began_before_the_request():
    hours = [at(1, h) for h in range(24)]
    assert cai.missing_buckets(day(1), hours, cai.HOUR, at(3)) == []
    assert cai.missing_buckets(day(1), hours[:5] + hours[7:], cai.HOUR, at(3)) == [at(1, 5), at(1, 6)]
    assert cai.missing_buckets(day(1), hours[:11], cai.HOUR, at(1, 10, 30)) == []  # 11:00 … 23:00 are to come
    assert cai.missing_buckets(day(1), hours[:10], cai.HOUR, at(1, 10, 30)) == [at(1, 10)]
    assert cai.missing_buckets(day(1), [], cai.DAY, at(1, 0, 1)) == [at(1)]
    assert cai.missing_buckets(day(2), [], cai.DAY, at(1, 23)) == []


def test_vanished_keys_get_zero_rows():
    kept = {"date": day(1), **dict.fromkeys(cai.COST_DIMENSIONS, ""), "description": "a",
            "amount_cents": Decimal(5), "amount_usd": Decimal("0.05")}
    gone = cai.COSTS.key_of({**kept, "description": "b"})
    zero = cai.vanished_rows(cai.COSTS, {cai.COSTS.key_of(kept), gone}, [kept])
    assert zero == [{**kept, "description": "b", "amount_cents": Decimal(0), "amount_usd": Decimal(0)}]


def test_a_day_line_lists_what_was_imported_then_what_failed():
    failed = cai.DayResult("claude_code", day(1), error="GET x: HTTP 400")
    assert cai.day_line(day(1), [failed], at(3)) == "2025-08-01 failed: ❌ claude_code: GET x: HTTP 400"
    usage = cai.DayResult("usage_messages", day(1), {cai.USAGE.name: [{}, {}]}, pages=1)
    kept = cai.DayResult("cost_report", day(1), error="GET y: HTTP 500", kept=True)
    assert cai.day_line(day(1), [usage, kept, failed], at(3)) == (
        "2025-08-01 failed: usage_messages 2 rows; ❌ cost_report (last re-import failed, earlier data kept): "
        "GET y: HTTP 500; ❌ claude_code: GET x: HTTP 400")
    assert cai.day_line(day(1), [usage], at(1, 12)) == "2025-08-01 partial: usage_messages 2 rows"


def test_an_answer_that_is_not_json_is_described_not_dumped():
    def hide(text: str) -> str:
        return text.replace("s3cret", "***")

    page = cai.Reply(200, {"content-type": "text/html"}, b"<html>\n\x1b[31m  key=s3cret</html>" + b"x" * 500)
    with pytest.raises(ShapeError) as caught:
        cai.parse_json(page, "GET /p", hide)
    assert str(caught.value) == (
        'GET /p: HTTP 200 but the answer is not JSON (text/html, 531 bytes: "<html> ?[31m key=***</html>'
        'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…"); a proxy or another server answering for ANTHROPIC_BASE_URL?')
    for body, described in ((b"", "no content type, empty body"), (b"[" * 100_000, "no content type, 100000 bytes")):
        with pytest.raises(ShapeError, match=f"not JSON \\({described}"):
            cai.parse_json(cai.Reply(200, {}, body), "GET /p", hide)
    with pytest.raises(ShapeError, match='not a JSON object \\(no content type, 2 bytes: "\\[\\]"\\)'):
        cai.parse_json(cai.Reply(200, {}, b"[]"), "GET /p", hide)
    # An error body is cut only after the secret is gone from all of it: no part of it is left at the cut.
    cut = cai.Reply(502, {"request-id": "req_1"}, b"p" * 56 + b"s3cret" + b"p" * 10)
    assert cai.error_summary(cut, hide) == f'HTTP 502 (no content type, 72 bytes: "{"p" * 56}***…") (request req_1)'
    message = json.dumps({"error": {"type": "api_error", "message": "m" * 296 + "s3cret"}}).encode()
    assert cai.error_summary(cai.Reply(500, {}, message), hide) == f"HTTP 500 api_error: {'m' * 296}***"
    assert cai.error_summary(cai.Reply(500, {}, message.replace(b"s3", b"\\u0073\\u0033")), hide) == (
        f"HTTP 500 api_error: {'m' * 296}***")


def test_retry_after_is_obeyed_only_between_0_and_60_seconds():
    assert cai.retry_after({"retry-after": "1"}) == 1.0
    assert cai.retry_after({"retry-after": "2.5"}) == 2.5
    assert cai.retry_after({"retry-after": "3600"}) == 3600.0
    assert cai.retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = dt.datetime(2025, 8, 1, 12, 0, tzinfo=dt.UTC)
    assert cai.retry_after({"retry-after": "Fri, 01 Aug 2025 12:00:30 GMT"}, now) == 30.0
    assert cai.retry_after({"retry-after": "Fri, 01 Aug 2025 11:59:00 GMT"}, now) == -60.0
    assert cai.retry_after({}) is None
    assert cai.retry_after({"retry-after": "soon"}) is None
    asked = [None, -60.0, 0.0, 0.001, 30.0, 60.0, 60.001, 3600.0, math.inf]
    assert [cai.usable_wait(seconds) for seconds in asked] == [None, None, None, 0.001, 30.0, 60.0, None, None, None]


def test_plan_resumes_retries_and_chunks_by_week():
    statuses = {("cost_report", day(1)): "ok", ("usage_messages", day(1)): "ok", ("claude_code", day(1)): "ok",
                (cai.HOURLY, day(1)): "failed", ("cost_report", day(2)): "ok", ("claude_code", day(2)): "failed",
                ("cost_report", day(3)): "partial"}
    daily = ("cost_report", "usage_messages", "claude_code")
    days = [day(1), day(2), day(3)]
    assert cai.plan_jobs(days, statuses, mode="resume") == {day(2): ("usage_messages", "claude_code"), day(3): daily}
    assert cai.plan_jobs(days, statuses, mode="resume", hourly_from=day(2)) == {
        day(2): ("usage_messages", cai.HOURLY, "claude_code"), day(3): cai.REPORTS}
    assert cai.plan_jobs(days, statuses, mode="resume", hourly_from=day(1))[day(1)] == (cai.HOURLY,)
    assert cai.plan_jobs(days, statuses, mode="failed") == {day(1): (cai.HOURLY,), day(2): ("claude_code",)}
    assert cai.plan_jobs([day(1)], statuses, mode="all") == {day(1): daily}
    assert cai.plan_jobs([day(1)], statuses, mode="all", hourly_from=day(1)) == {day(1): cai.REPORTS}
    assert cai.chunk_days([day(n) for n in (1, 2, 7, 8, 14, 20)]) == [
        [day(1), day(2), day(7)], [day(8), day(14)], [day(20)]]
    end = dt.datetime(2025, 8, 2, tzinfo=dt.UTC)
    assert cai.day_status(day(1), end + dt.timedelta(minutes=59)) == "partial"
    assert cai.day_status(day(1), end + dt.timedelta(hours=1)) == "ok"
    assert cai.day_ranges([day(1), day(2), day(3), day(5)]) == "2025-08-01…2025-08-03, 2025-08-05"


def test_hourly_usage_covers_a_scheduled_run_and_the_last_days_of_a_backfill():
    def plan(*argv: str) -> tuple:
        return cai.run_range(cai.build_parser().parse_args(argv), day(31))

    assert plan() == (day(29), day(31), "all", day(29))
    assert plan("--days", "10", "--hourly-days", "2") == (day(22), day(31), "all", day(30))
    assert plan("--since", "2025-08-01") == (day(1), day(31), "resume", day(25))
    assert plan("--since", "2025-08-01", "--until", "2025-08-03", "--force") == (day(1), day(3), "all", day(1))
    assert plan("--since", "2025-08-01", "--hourly-days", "400") == (day(1), day(31), "resume", day(1))
    assert plan("--since", "2025-08-01", "--hourly-days", "0") == (day(1), day(31), "resume", None)
    assert plan("--days", "5", "--hourly-days", "0") == (day(27), day(31), "all", None)
    assert plan("--retry-failed") == (None, None, "failed", None)
    for argv, refused in ((["--retry-failed", "--hourly-days", "3"], "--hourly-days goes with a scheduled run"),
                          (["--validate", "--hourly-days", "3"], "--hourly-days goes with a scheduled run"),
                          (["--hourly-days", "-1"], "--hourly-days must be 0 or more")):
        with pytest.raises(UserError, match=refused) as caught:
            cai.check_arguments(cai.build_parser().parse_args(argv), day(31))
        assert caught.value.exit_code == cai.EXIT_USAGE
    assert cai.bucket_params(USAGE_PATH, day(1), day(7), [], None, "1h")[:4] == [
        ("starting_at", "2025-08-01T00:00:00Z"), ("ending_at", "2025-08-08T00:00:00Z"), ("bucket_width", "1h"),
        ("limit", "168")]
    assert ("limit", "168") in cai.bucket_params(USAGE_PATH, day(1), day(7), [], 500, "1h")
    assert ("limit", "31") in cai.bucket_params(USAGE_PATH, day(1), day(7), [], 500)


@pytest.fixture
def api():
    with FakeAdminApi(KEY) as server:
        yield server


def client(api: FakeAdminApi, delays: list[float]) -> cai.AdminApi:
    """In-process, with a sleep that only records: the delays are asserted, not waited."""
    admin = cai.AdminConfig(base_url=api.url, admin_key=KEY, timeout=5, max_retries=3, backoff=0.5)
    return cai.AdminApi(admin, sleep=delays.append)


def test_client_waits_as_told_within_a_minute_and_pages_to_the_end(api):
    api.faults = [Fault(COST_PATH, 429, retry_after="1"), Fault(COST_PATH, 429, retry_after="0"),
                  Fault(COST_PATH, 503, retry_after="600")]
    delays: list[float] = []
    documents = list(client(api, delays).pages(COST_PATH, cai.bucket_params(COST_PATH, day(1), day(14), ["description"],
                                                                             4), 14))
    assert [len(d["data"]) for d in documents] == [4, 4, 4, 2]
    # retry-after 1 s is obeyed; 0 s (a retry at once) and 600 s (beyond the minute) give the backoff instead:
    # 2 × 0.5 s and 4 × 0.5 s, less up to 25 % jitter.
    assert delays[0] == 1.0 and 0.75 <= delays[1] <= 1.0 and 1.5 <= delays[2] <= 2.0
    assert [s.status for s in api.seen] == [429, 429, 503, 200, 200, 200, 200]
    assert api.requested_tokens == api.issued_tokens and set(api.issued_tokens.values()) == {1}


def test_hourly_buckets_snap_to_the_hour_and_keep_their_empty_hours(api):
    params = [("starting_at", "2025-08-01T05:30:00Z"), ("ending_at", "2025-08-02T00:00:00Z"), ("bucket_width", "1h"),
              ("limit", "8"), ("group_by[]", "model")]
    documents = list(client(api, []).pages(USAGE_PATH, params, 24))
    assert [len(d["data"]) for d in documents] == [8, 8, 3]  # 05:00 (snapped) … 23:00
    assert api.requested_tokens == api.issued_tokens and set(api.issued_tokens.values()) == {1}
    hours = cai.buckets_by_day(documents, "t", cai.HOUR)[day(1)]
    assert sorted(hours) == [at(1, h) for h in range(5, 24)]
    served = api.data.usage_results_by_hour(day(1))
    assert [h.hour for h, results in sorted(hours.items()) if results] == [h for h in range(5, 24) if served[h]]
    assert [h for h in range(24) if not served[h]] == [0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 23]
    rows = [row for hour, results in hours.items() for row in cai.usage_hourly_rows(hour, results)]
    assert {(r["model"], r["api_key_id"]) for r in rows} == {(m, "") for m in ("claude-opus-5", "claude-sonnet-4-5")}
    assert sum(r["output_tokens"] for r in rows) == api.data.usage_total([day(1)], ("output_tokens",))


def test_client_gives_up_on_a_spend_cap_and_on_bad_requests(api):
    api.faults = [Fault(COST_PATH, 429, times=None), Fault(USAGE_PATH, 400, times=None)]
    delays: list[float] = []
    with pytest.raises(cai.ApiError, match="spend cap") as caught:
        client(api, delays).get(COST_PATH, [("starting_at", "2025-08-01T00:00:00Z")])
    assert caught.value.fatal and len(api.requests_to(COST_PATH)) == cai.SPEND_CAP_ATTEMPTS == 3
    with pytest.raises(cai.ApiError, match="HTTP 400 invalid_request_error") as caught:
        client(api, delays).get(USAGE_PATH, [("starting_at", "2025-08-01T00:00:00Z")])
    assert not caught.value.fatal and len(api.requests_to(USAGE_PATH)) == 1


# ----------------------------------------------------------------------------------------------------------------
# The whole importer: main() in this process, or a process where only a process shows it
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, api: FakeAdminApi) -> dict[str, str]:
    """An isolated run: its own HOME and store, the local server, 2 buckets or records per page, short backoff."""
    (tmp_path / "home").mkdir()
    return {
        "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home"), "TZ": "UTC", "LANG": "C.UTF-8",
        "CCUSAGE_IMPORT_DB": str(tmp_path / "store" / "chdb"), "MACHINE_NAME": "laptop",
        "ANTHROPIC_ADMIN_KEY": KEY, "ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_PAGE_LIMIT": "2",
        "ANTHROPIC_RETRY_BACKOFF": "0.01", "ANTHROPIC_MAX_RETRIES": "2", "ANTHROPIC_TIMEOUT": "20",
    }


def admin(env: dict[str, str], *args: str, process: bool = False) -> subprocess.CompletedProcess:
    """One run (conftest.run_admin: main() in this process, or a process where asked or needed); whatever happens,
    the key is never printed and nothing ends in a traceback (in this process, an exception main() lets out fails
    the test)."""
    done = run_admin(env, *args, timeout=180, process=process)
    assert KEY not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_output_is_read_as_a_parent_reads_a_child_s_pipes():
    """What admin() checks for the key and a traceback: print()s, and writes to the file descriptors (C code's)."""
    def main(argv: list[str], env: dict[str, str]) -> int:
        print("out:", *argv)
        print(f"err: {env['WHO']} ✓", file=sys.stderr)
        os.write(1, b"fd 1\n")
        os.write(2, b"fd 2\n")
        raise SystemExit(2)

    done = run_here(main, {"WHO": "me"}, "a", "b")
    assert (done.returncode, done.stdout, done.stderr) == (2, "out: a b\nfd 1\n", "err: me ✓\nfd 2\n")
    print("after")  # the streams are back: pytest's capture has this, not the run
    assert "after" not in done.stdout


def backfill(env: dict[str, str], first: dt.date, last: dt.date, *more: str, process: bool = False
             ) -> subprocess.CompletedProcess:
    return admin(env, "--since", first.isoformat(), "--until", last.isoformat(), *more, process=process)


Read = tuple[str, Callable[[list[dict]], Any]]  # a query and what its rows say


def read(env: dict[str, str], *reads: Read) -> list[Any]:
    """What each read says, all from one opening of the store (an opening costs an engine start, about 0.4 s)."""
    rows = sql_many(env, {str(n): query for n, (query, _) in enumerate(reads)})
    return [say(rows[str(n)]) for n, (_, say) in enumerate(reads)]


def only_row(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


def status_of(rows: list[dict]) -> dict[tuple[str, str], str]:
    return {(r["report"], r["date"]): r["status"] for r in rows}


STATUSES: Read = ("SELECT report, date, status FROM claude_api_import_days FINAL", status_of)


def statuses(env: dict[str, str]) -> dict[tuple[str, str], str]:
    return read(env, STATUSES)[0]


def ok_everywhere(days: list[dt.date], hourly: list[dt.date] = LAST_WEEK) -> dict[tuple[str, str], str]:
    """Every report ok on `days`, hourly usage on `hourly` only (by default, the part of the backfill's last week)."""
    return {(report, d.isoformat()): "ok" for report in cai.REPORTS for d in days
            if report != cai.HOURLY or d in hourly}


TOTALS = """
SELECT
    (SELECT toString(sum(amount_cents)) FROM claude_api_costs FINAL) AS cents,
    (SELECT toString(sum(amount_usd)) FROM claude_api_costs FINAL) AS usd,
    (SELECT sum(cache_creation_1h_input_tokens) FROM claude_api_usage FINAL) AS cache_1h,
    (SELECT sum(output_tokens) FROM claude_api_usage FINAL) AS usage_output,
    (SELECT sum(cache_read_tokens) FROM claude_code_model_usage FINAL) AS code_cache_read,
    (SELECT toString(sum(estimated_cost_usd)) FROM claude_code_model_usage FINAL) AS code_estimate_usd,
    (SELECT sum(lines_added) FROM claude_code_productivity FINAL) AS lines_added
"""


def expected_totals(data: OrgData, days: list[dt.date]) -> dict:
    return {
        "cents": data.billed_cents(days), "usd": data.billed_cents(days) / 100,
        "cache_1h": data.usage_total(days, ("cache_creation", "ephemeral_1h_input_tokens")),
        "usage_output": data.usage_total(days, ("output_tokens",)),
        "code_cache_read": data.code_total(days, "cache_read"),
        "code_estimate_usd": data.code_estimate_cents(days) / 100,
        "lines_added": sum(r["core_metrics"]["lines_of_code"]["added"] for d in days for r in data.code_records(d)),
    }


def totals_of(rows: list[dict]) -> dict:
    return {k: Decimal(v) if k in ("cents", "usd", "code_estimate_usd") else int(v)
            for k, v in only_row(rows).items()}


STORED_TOTALS: Read = (TOTALS, totals_of)


def stored_totals(env: dict[str, str]) -> dict:
    return read(env, STORED_TOTALS)[0]


# Per table: rows read with FINAL, distinct natural keys, and a hash of the FINAL rows without imported_at.
SNAPSHOT = " UNION ALL ".join(
    f"SELECT '{spec.name}' AS t, count() AS n, uniqExact(tuple({', '.join(spec.key)})) AS keys, "
    f"sum(cityHash64(*)) AS h FROM (SELECT * EXCEPT (imported_at) FROM {spec.name} FINAL)"
    for spec in cai.ALL_SPECS)


def snapshot_of(rows: list[dict]) -> dict[str, tuple[int, int, int]]:
    return {r["t"]: (int(r["n"]), int(r["keys"]), int(r["h"])) for r in rows}


SNAPSHOTS: Read = (SNAPSHOT, snapshot_of)


def snapshot(env: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    return read(env, SNAPSHOTS)[0]


def stored_text(env: dict[str, str]) -> str:
    """Every row of every claude_* and ccusage_import* table, all versions (no FINAL), as text."""
    tables = [r["name"] for r in sql(env, (
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View' "
        "AND (name LIKE 'claude%' OR name LIKE 'ccusage_import%') ORDER BY name"))]
    assert {s.name for s in cai.ALL_SPECS} | {cai.STATUS_TABLE, "ccusage_import_runs"} <= set(tables)
    union = " UNION ALL ".join(f"SELECT formatRow('JSONEachRow', *) AS row FROM {t}" for t in tables)
    return "\n".join(r["row"] for r in sql(env, union))


def test_backfill_reads_every_page_and_stores_exact_dollars(api, env):
    # As cron runs it: a process, whose exit code and output a shell sees, and chDB's ending with the process.
    done = backfill(env, AUG[0], AUG[-1], process=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # Every page token the server issued was requested exactly once, with the first page's limit and filters
    # (the server refuses a token whose parameters differ).
    assert api.requested_tokens == api.issued_tokens and set(api.issued_tokens.values()) == {1}
    assert len(api.requests_to(COST_PATH)) == len(api.requests_to(USAGE_PATH, "1d")) == 8  # 2 windows × 4 pages
    assert len(api.requests_to(USAGE_PATH, "1h")) == 84  # hourly for the last 7 days only: 168 buckets, 2 a page
    assert api.days_requested(USAGE_PATH, "1h") == set(LAST_WEEK)
    assert len(api.requests_to(CODE_PATH)) == 11 * 3 + 3  # 5 records: 3 pages; an empty day: 1 page
    assert {s.status for s in api.seen} == {200}
    assert all(s.params["group_by[]"] == ["workspace_id", "description"] and s.params["limit"] == ["2"]
               for s in api.requests_to(COST_PATH))
    assert all(s.params["group_by[]"] == list(cai.USAGE_DIMENSIONS) for s in api.requests_to(USAGE_PATH))
    assert all("claude_admin_importer.py" in s.user_agent for s in api.seen)

    totals, per_day, stored_statuses, code = read(
        env, STORED_TOTALS,
        ("SELECT date, toString(sum(amount_usd)) AS usd FROM claude_api_costs FINAL GROUP BY date",
         lambda rows: {r["date"]: Decimal(r["usd"]) for r in rows}), STATUSES,
        ("SELECT count() AS n, arraySort(groupUniqArray(is_remote)) AS remote, "
         "arraySort(groupUniqArray(subscription_type)) AS subscription FROM claude_code_productivity FINAL", only_row))
    assert totals == expected_totals(api.data, AUG)
    assert per_day == {d.isoformat(): api.data.billed_cents([d]) / 100 for d in AUG if not empty_day(d)}
    assert stored_statuses == ok_everywhere(AUG)
    assert code == {"n": 55, "remote": ["", "false", "true"], "subscription": ["", "enterprise"]}
    empty = "2025-08-02 ok: cost_report 0 rows ($0.00 billed), usage_messages 0 rows, claude_code 0+0 rows"
    assert empty in done.stdout.splitlines()
    assert "14 day(s) 2025-08-01…2025-08-14, 0 failed. Billed (cost_report): $239.08." in done.stdout


def test_reimport_changes_nothing_and_a_restated_day_is_replaced(api, env):
    week = AUG[:7]
    assert backfill(env, week[0], week[-1]).returncode == 0
    before = snapshot(env)
    assert all(n == keys for n, keys, _ in before.values())

    requests = len(api.seen)
    again = backfill(env, week[0], week[-1])
    assert again.returncode == 0 and len(api.seen) == requests
    assert "Nothing to import: every day in the range is already imported" in again.stdout
    assert backfill(env, week[0], week[-1], "--force").returncode == 0
    assert len(api.seen) > requests
    assert snapshot(env) == before

    # The API restates 2025-08-03: three results vanish, one appears. Re-importing the day replaces it.
    api.data.dropped_costs[day(3)] = 3
    api.data.extra_costs[day(3)] = [{"amount": "0.00001", "currency": "USD", "cost_type": "code_execution",
                                     "description": "Code Execution Usage", "workspace_id": None}]
    assert backfill(env, day(3), day(3), "--force").returncode == 0
    totals, after = read(env, STORED_TOTALS, SNAPSHOTS)
    assert totals == expected_totals(api.data, week)
    assert after["claude_api_costs"][:2] == (before["claude_api_costs"][0] + 1,) * 2  # 3 zero rows + 1 new key
    assert {t: v for t, v in after.items() if t != "claude_api_costs"} == {
        t: v for t, v in before.items() if t != "claude_api_costs"}


def test_scheduled_run_imports_the_last_days(api, env):
    done = admin(env)
    assert done.returncode == 0, done.stderr
    now = dt.datetime.now(dt.UTC)
    days = [now.date() - dt.timedelta(days=n) for n in (2, 1, 0)]
    assert api.days_requested(COST_PATH) == api.days_requested(CODE_PATH) == set(days)
    assert api.days_requested(USAGE_PATH, "1h") == set(days)  # hourly usage for every day of a scheduled run
    stored_statuses, totals = read(env, STATUSES, STORED_TOTALS)
    assert stored_statuses == {(report, d.isoformat()): cai.day_status(d, now) for report in cai.REPORTS
                               for d in days}
    assert totals == expected_totals(api.data, days)
    assert f"claude-admin-import {cai.__version__}: {api.url} → embedded chDB at" in done.stdout

    api.seen.clear()
    assert admin(env, "--days", "1", "--quiet").stdout == ""
    assert api.days_requested(COST_PATH) == api.days_requested(USAGE_PATH) == {days[-1]}
    assert api.days_requested(USAGE_PATH, "1h") == {days[-1]}

    api.seen.clear()
    assert admin(env, "--days", "2", "--hourly-days", "0").returncode == 0
    assert api.requests_to(USAGE_PATH, "1h") == [] and api.days_requested(USAGE_PATH) == set(days[1:])


def test_retries_honour_retry_after_and_server_errors(api, env):
    api.faults = [Fault(COST_PATH, 429, retry_after="1"), Fault(USAGE_PATH, 500), Fault(USAGE_PATH, 503, width="1h"),
                  Fault(CODE_PATH, 529, day=day(2)), Fault(CODE_PATH, 503, day=day(3), times=2)]
    done = backfill(env, day(1), day(3))
    assert done.returncode == 0, done.stderr
    cost = api.requests_to(COST_PATH)
    assert [s.status for s in cost] == [429, 200, 200]
    assert cost[1].at - cost[0].at >= 0.95  # waited the retry-after second, not the 0.01 s backoff
    assert [s.status for s in api.requests_to(USAGE_PATH, "1d")] == [500, 200, 200]
    assert [s.status for s in api.requests_to(USAGE_PATH, "1h")] == [503] + [200] * 36  # 72 hours, 2 a page
    assert [s.status for s in api.requests_to(CODE_PATH)] == [200, 200, 200, 529, 200, 503, 503, 200, 200, 200]
    assert stored_totals(env) == expected_totals(api.data, [day(1), day(2), day(3)])


def test_spend_cap_is_reported_after_a_few_attempts(api, env):
    api.faults = [Fault(COST_PATH, 429, times=None, message="This organization has reached its spend limit")]
    done = backfill(env, AUG[0], AUG[-1])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: GET /v1/organizations/cost_report: HTTP 429")
    assert "probably reached its monthly spend cap" in done.stderr
    assert "14 day(s) not imported: 2025-08-01…2025-08-14" in done.stderr
    assert len(api.seen) == len(api.requests_to(COST_PATH)) == 3
    assert statuses(env) == {}


def test_key_and_connection_problems_are_one_line(api, env, tmp_path):
    wrong = admin({**env, "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-WRONG-0123456789"}, "--days", "1")
    assert wrong.returncode == 1 and len(api.seen) == 1
    assert wrong.stderr == ("error: the Admin API refused ANTHROPIC_ADMIN_KEY (HTTP 401 authentication_error: "
                            "invalid x-api-key (request req_011CSHoEeqs5C35K2UUqR7Fy)): it must be an Admin key "
                            "(sk-ant-admin…) of an organisation; 1 day(s) not imported: "
                            f"{dt.datetime.now(dt.UTC).date()}\n")
    assert "WRONG-0123456789" not in wrong.stdout + wrong.stderr

    api.faults = [Fault(COST_PATH, 403, times=None)]
    denied = admin(env, "--days", "1")
    assert denied.returncode == 1 and "error: the Admin API denied access (HTTP 403 permission_error" in denied.stderr

    # Exit codes 1 and 2 as a shell sees them: processes (they stop before the engine starts).
    missing = admin({k: v for k, v in env.items() if k != "ANTHROPIC_ADMIN_KEY"}, process=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ANTHROPIC_ADMIN_KEY is not set")
    plain = admin({**env, "ANTHROPIC_BASE_URL": "http://api.example.com"})
    assert plain.returncode == 1 and "is plain http: the Admin key would travel unencrypted" in plain.stderr
    usage = admin(env, "--until", "2025-08-01", process=True)
    assert usage.returncode == 2 and usage.stderr == "error: --until needs --since\n"

    closed = f"http://127.0.0.1:{free_port()}"
    down = admin({**env, "ANTHROPIC_BASE_URL": closed}, "--days", "1")
    assert down.returncode == 1 and f"cannot reach {closed}" in down.stderr and "(after 3 attempts)" in down.stderr

    api.faults.clear()
    api.hold_day = day(1)  # the server never answers this day's Claude Code request in time
    slow = admin({**env, "ANTHROPIC_TIMEOUT": "0.3", "ANTHROPIC_MAX_RETRIES": "1"}, "--since", "2025-08-01",
                 "--until", "2025-08-01")
    assert slow.returncode == 1
    assert "no answer within 0.3 s (after 2 attempts)" in slow.stdout
    assert slow.stderr.startswith("error: 1 day(s) failed: 2025-08-01 (claude_code)")


@pytest.mark.parametrize(("path", "endless", "said"), [
    (COST_PATH, "empty", "the API is paging forever"), (COST_PATH, "more", "the API is paging forever"),
    (COST_PATH, "repeat", "came twice (pages overlap)"), (CODE_PATH, "empty", "the API is paging forever"),
    (CODE_PATH, "repeat", "a record of 2025-08-01 came again on page 2 (pages overlap)")])
def test_an_api_that_pages_forever_fails_the_days_with_one_line_naming_the_endpoint(api, env, path, endless, said):
    """has_more: true with a fresh page token on every page (issue 25): stopped at what the request can hold, or at
    the first repeated bucket as its page arrives. As a process, so the old endless loop fails by its timeout."""
    api.endless = {path: endless}
    done = run_admin(env, "--since", "2025-08-01", "--until", "2025-08-07", process=True, timeout=90)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: 7 day(s) failed: 2025-08-01") and f"GET {path}: " in done.stderr
    assert said in done.stderr
    assert len(api.requests_to(path)) <= (4 * 7 if path == CODE_PATH else 5)  # pages of 2: 4 hold 7 buckets
    others = {(report, d): status for (report, d), status in statuses(env).items()
              if report != ("claude_code" if path == CODE_PATH else "cost_report")}
    assert set(others.values()) == {"ok"} and len(others) == 3 * 7

def test_failed_days_are_named_and_retry_failed_reruns_only_them(api, env):
    api.faults = [Fault(CODE_PATH, 500, day=day(3), times=None),
                  Fault(CODE_PATH, 400, day=day(10), times=None, message=f"bad request from key {KEY}")]
    done = backfill(env, AUG[0], AUG[-1])
    assert done.returncode == 1
    assert done.stderr.startswith("error: 2 day(s) failed: 2025-08-03 (claude_code), 2025-08-10 (claude_code) "
                                  "(first: GET /v1/organizations/usage_report/claude_code: HTTP 500 api_error")
    assert done.stderr.endswith("run again with --retry-failed\n") and done.stderr.count("\n") == 1
    assert "2025-08-10 failed: cost_report 13 rows" in done.stdout
    expected = ok_everywhere(AUG) | {("claude_code", "2025-08-03"): "failed", ("claude_code", "2025-08-10"): "failed"}
    assert statuses(env) == expected
    text = stored_text(env)
    assert "bad request from key ***" in text and KEY not in text

    api.faults.clear()
    api.seen.clear()
    retry = admin(env, "--retry-failed")
    assert retry.returncode == 0, retry.stderr
    assert {s.path for s in api.seen} == {CODE_PATH}
    assert api.days_requested(CODE_PATH) == {day(3), day(10)}
    stored_statuses, totals, snapshots = read(env, STATUSES, STORED_TOTALS, SNAPSHOTS)
    assert stored_statuses == ok_everywhere(AUG)
    assert totals == expected_totals(api.data, AUG)
    assert all(n == keys for n, keys, _ in snapshots.values())
    assert KEY not in stored_text(env)
    assert "No failed day to retry." in admin(env, "--retry-failed").stdout


def test_a_failed_reimport_keeps_its_earlier_data_counted_and_says_so(api, env):
    days = [day(1), day(2), day(3)]
    assert backfill(env, days[0], days[-1]).returncode == 0
    before = snapshot(env)
    api.faults = [Fault(CODE_PATH, 500, day=day(3), times=None)]
    done = backfill(env, days[0], days[-1], "--force")
    assert done.returncode == 1
    failure = ("GET /v1/organizations/usage_report/claude_code: HTTP 500 api_error: injected failure (request "
               "req_011CSHoEeqs5C35K2UUqR7Fy) (after 3 attempts)")
    line = next(text for text in done.stdout.splitlines() if text.startswith("2025-08-03"))
    assert line.startswith("2025-08-03 failed: cost_report 13 rows (")
    assert line.endswith(f" rows; ❌ claude_code (last re-import failed, earlier data kept): {failure}")
    assert done.stderr == (f"error: 1 day(s) failed: 2025-08-03 (claude_code: earlier data kept) (first: {failure}); "
                           "run again with --retry-failed\n")
    snapshots, stored_statuses = read(env, SNAPSHOTS, STATUSES)
    assert snapshots == before  # the re-imported reports are unchanged, the failed one is left as it was
    assert stored_statuses == ok_everywhere(days, hourly=days) | {("claude_code", "2025-08-03"): "failed_kept"}
    code, lines = validation(env)
    assert code == 0 and lines[1] == (
        "✓ no day missing in 2025-08-01…2025-08-03 (3 days, 3 daily reports; hourly usage on 3 of them); last "
        "re-import failed, earlier data kept: claude_code 1 day(s) 2025-08-03 (--retry-failed)")

    # Failing again keeps the earlier data counted; the day's only report prints a line without an empty part.
    again = admin(env, "--retry-failed")
    assert again.returncode == 1 and again.stdout.splitlines()[1:] == [
        f"2025-08-03 failed: ❌ claude_code (last re-import failed, earlier data kept): {failure}",
        "1 day(s) 2025-08-03…2025-08-03, 1 failed. Billed (cost_report): $0.00. Claude Code's own estimate: $0.00 "
        "(part of the billed cost when Claude Code uses API keys: never add the two)."]
    assert statuses(env)[("claude_code", "2025-08-03")] == "failed_kept"

    # A day that was never imported is missing when it fails, as before.
    api.faults = [Fault(CODE_PATH, 500, day=day(4), times=None)]
    done = backfill(env, day(4), day(4))
    assert done.returncode == 1 and "earlier data kept" not in done.stdout + done.stderr
    code, lines = validation(env)
    assert code == 1 and lines[1] == (
        "✗ days missing in 2025-08-01…2025-08-04: claude_code: 1 day(s) 2025-08-04 (1 failed); last re-import "
        "failed, earlier data kept: claude_code 1 day(s) 2025-08-03 (--retry-failed)")

    api.faults.clear()
    assert admin(env, "--retry-failed").returncode == 0
    stored_statuses, snapshots = read(env, STATUSES, SNAPSHOTS)
    assert stored_statuses == ok_everywhere([*days, day(4)], hourly=[*days, day(4)])
    assert snapshots["claude_code_productivity"][:2] == (before["claude_code_productivity"][0] + 5,) * 2
    code, lines = validation(env)
    assert code == 0 and lines[1] == ("✓ no day missing in 2025-08-01…2025-08-04 (4 days, 3 daily reports; hourly "
                                      "usage on 4 of them)")


ECHO_KEY = "sk-ant-admin01-Echo+Test/Key=7f3c%9e1d~2b4a6c8e0f1a3b5c7d9e"  # URL-encoding changes it: + / = % ~


def key_forms(key: str) -> dict[str, str]:
    return {"literal": key, "base64": base64.b64encode(key.encode()).decode(),
            "url-encoded": urllib.parse.quote(key, safe=""), "hex": key.encode().hex()}


def key_pieces(text: str, key: str = ECHO_KEY) -> list[str]:
    """Every 10-character piece of the key's secret part, in any of its forms, found in text (the public prefix
    sk-ant-admin01-, 15 bytes, is 15 literal or URL-encoded, 20 base64 and 30 hex characters: left out)."""
    prefix_lengths = {"literal": 15, "base64": 20, "url-encoded": 15, "hex": 30}
    secret_parts = {name: form[prefix_lengths[name]:] for name, form in key_forms(key).items()}
    return [f"{name}: {part[i:i + 10]}" for name, part in secret_parts.items() for i in range(len(part) - 9)
            if part[i:i + 10] in text]


def test_an_echoed_key_leaves_the_process_in_no_form(env):
    # Where the key lands: past the 80 bytes the 200 answer was quoted with, across the 200 and 300 characters
    # an error body or message was cut at (the key's start was shown, the cut rest could not be recognised).
    page = "<html><body><pre>"
    faults = [Fault(COST_PATH, 200, echo="text", times=None, message="proxy debug page"),
              Fault(USAGE_PATH, 502, echo="text", times=None, message="b" * (200 - 35 - len(page) - 12)),
              Fault(CODE_PATH, 400, echo="json", times=None, message="c" * (300 - 35 - 12))]
    with FakeAdminApi(ECHO_KEY) as echo:
        echo.faults = faults
        run_env = {**env, "ANTHROPIC_ADMIN_KEY": ECHO_KEY, "ANTHROPIC_BASE_URL": echo.url}
        done = admin(run_env, "--since", "2025-08-01", "--until", "2025-08-01", "--hourly-days", "0")
        echo.faults = [Fault(CODE_PATH, 401, echo="json", times=None, message="d" * 250)]
        stopped = admin(run_env, "--since", "2025-08-02", "--until", "2025-08-02", "--hourly-days", "0")
        echoes = echo.echoes
    # The server did send every form, in full: the test can fail.
    assert len(echoes) == 1 + 3 + 1 + 1
    assert all(form in text for text in echoes for form in key_forms(ECHO_KEY).values())
    assert done.returncode == stopped.returncode == 1
    assert [key_pieces(text) for text in (done.stdout, done.stderr, stopped.stdout, stopped.stderr)] == [[]] * 4
    stored = stored_text(run_env)
    assert key_pieces(stored) == [] and stored.count("x-api-key: ***") == 2  # the page's excerpt, the JSON message

    line = done.stdout.splitlines()[1].removeprefix("2025-08-01 failed: ❌ ")
    errors = dict(part.split(": ", 1) for part in line.split("; ❌ "))
    size = len(f"{page}{echoes[0]}</pre></body></html>".encode())
    assert errors["cost_report"] == (
        f'GET /v1/organizations/cost_report: HTTP 200 but the answer is not JSON (text/html; charset=utf-8, {size} '
        'bytes: "<html><body><pre>proxy debug page x-api-key: *** x-api-key…"); a proxy or another server '
        "answering for ANTHROPIC_BASE_URL?")
    assert errors["usage_messages"].startswith(
        "GET /v1/organizations/usage_report/messages: HTTP 502 (text/html; charset=utf-8, ")
    assert errors["claude_code"].startswith(
        f"GET /v1/organizations/usage_report/claude_code: HTTP 400 invalid_request_error: {'c' * 253} x-api-key: ***")
    assert stopped.stderr.startswith(f"error: the Admin API refused ANTHROPIC_ADMIN_KEY (HTTP 401 "
                                     f"authentication_error: {'d' * 250} x-api-key: *** x-api-key (base64): ***")


def test_interrupted_backfill_resumes_where_it_stopped(api, env):
    api.hold_day = day(10)  # the second window's third Claude Code day hangs until the run is killed
    run = subprocess.Popen([sys.executable, str(ADMIN_IMPORTER), "--since", "2025-08-01", "--until", "2025-08-14"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert api.arrived.wait(120)
    finally:
        run.kill()
        out, _ = run.communicate(timeout=60)
    api.hold_day = None
    api.release.set()
    assert "2025-08-07 ok" in out and "2025-08-08" not in out
    assert statuses(env) == ok_everywhere(AUG[:7])

    api.seen.clear()
    done = backfill(env, AUG[0], AUG[-1])
    assert done.returncode == 0, done.stderr
    assert api.days_requested(COST_PATH) == api.days_requested(CODE_PATH) == set(AUG[7:])
    assert api.days_requested(USAGE_PATH, "1h") == set(LAST_WEEK)
    stored_statuses, totals, snapshots = read(env, STATUSES, STORED_TOTALS, SNAPSHOTS)
    assert stored_statuses == ok_everywhere(AUG)
    assert totals == expected_totals(api.data, AUG)
    assert all(n == keys for n, keys, _ in snapshots.values())


def usage_by_key(spec: cai.TableSpec) -> Read:
    """Per UTC day and usage key, the six counts of claude_api_usage or claude_api_usage_hourly (zero keys left out)."""
    dims = ", ".join(cai.USAGE_DIMENSIONS)

    def counts_of(rows: list[dict]) -> dict[tuple[str, ...], tuple[int, ...]]:
        found = {(r["day"], *(r[d] for d in cai.USAGE_DIMENSIONS)): tuple(int(r[m]) for m in cai.USAGE_COUNTS)
                 for r in rows}
        return {key: counts for key, counts in found.items() if any(counts)}

    return (f"SELECT toString({spec.day_sql}) AS day, {dims}, "
            f"{', '.join(f'sum({m}) AS {m}' for m in cai.USAGE_COUNTS)} FROM {spec.name} FINAL GROUP BY day, {dims}",
            counts_of)


def test_hourly_usage_adds_up_to_the_daily_usage_and_a_rerun_changes_nothing(api, env):
    env = {**env, "ANTHROPIC_PAGE_LIMIT": "24"}  # a day of hours per page: 7 pages for the last week
    done = backfill(env, AUG[0], AUG[-1])
    assert done.returncode == 0, done.stderr
    hourly_requests = api.requests_to(USAGE_PATH, "1h")
    assert len(hourly_requests) == 7 and {s.status for s in hourly_requests} == {200}
    assert all(s.params["starting_at"] == ["2025-08-08T00:00:00Z"] and s.params["limit"] == ["24"]
               for s in hourly_requests)
    assert api.requested_tokens == api.issued_tokens and set(api.issued_tokens.values()) == {1}

    daily, hourly, stored, pages, before = read(
        env, usage_by_key(cai.USAGE), usage_by_key(cai.USAGE_HOURLY),
        ("SELECT toString(hour) AS hour, count() AS n FROM claude_api_usage_hourly FINAL GROUP BY hour",
         lambda rows: {r["hour"]: int(r["n"]) for r in rows}),
        ("SELECT report, pages FROM claude_api_import_days FINAL", list), SNAPSHOTS)
    assert len(hourly) == 6 * 12  # the last week's days with usage (2025-08-12 has none) × 12 keys
    assert hourly == {key: counts for key, counts in daily.items() if key[0] >= "2025-08-08"}
    served = {f"{d} {h:02d}:00:00": len(FakeAdminApi._group_usage(results, USAGE_GROUPS))
              for d in LAST_WEEK for h, results in enumerate(api.data.usage_results_by_hour(d)) if results}
    assert stored == served  # one row per served hour and key; empty hours have none
    assert {int(r["pages"]) for r in pages if r["report"] == cai.HOURLY} == {7}
    rows_8th = sum(n for hour, n in served.items() if hour.startswith("2025-08-08"))
    assert f"usage_messages 12 rows, usage_messages_hourly {rows_8th} rows, claude_code 5+7 rows" in done.stdout

    api.seen.clear()
    again = backfill(env, AUG[0], AUG[-1])
    assert again.returncode == 0 and api.seen == []
    assert backfill(env, AUG[0], AUG[-1], "--force").returncode == 0
    assert len(api.requests_to(USAGE_PATH, "1h")) == 7
    assert snapshot(env) == before
    code, lines = validation(env)
    assert code == 0 and lines[4] == ("✓ hourly usage adds up to daily usage, key by key, on the 7 finished day(s) "
                                      "imported both ways")

    # The API restates the first busy hour of 2025-08-09: one result vanishes from it. Re-importing the day sets
    # that key of that hour to zero (a zero row), and --validate sees the hours no longer add up to the day.
    hour, results = next((h, r) for h, r in enumerate(api.data.usage_results_by_hour(day(9))) if r)
    api.data.dropped_hourly[at(9, hour)] = 1
    assert backfill(env, day(9), day(9), "--force").returncode == 0
    gone = (results[0]["model"], results[0]["api_key_id"] or "", results[0]["workspace_id"] or "")
    rows, snapshots = read(env, ("SELECT toHour(hour) AS h, model, api_key_id, workspace_id, output_tokens, "
                                 "uncached_input_tokens FROM claude_api_usage_hourly FINAL "
                                 "WHERE toDate(hour) = '2025-08-09'", list), SNAPSHOTS)
    assert [(int(r["output_tokens"]), int(r["uncached_input_tokens"])) for r in rows
            if (int(r["h"]), r["model"], r["api_key_id"], r["workspace_id"]) == (hour, *gone)] == [(0, 0)]
    assert snapshots["claude_api_usage_hourly"][:2] == before["claude_api_usage_hourly"][:2]
    code, lines = validation(env)
    assert code == 1 and lines[4] == (
        "✗ hourly usage does not add up to daily usage on 1 of 7 day(s): 2025-08-09 (1 key(s)) — an hourly page "
        "lost, or data restated between the imports (re-import: --since 2025-08-09 --until 2025-08-09 --force "
        "--hourly-days 1)")


def test_failed_hourly_days_are_retried_alone_and_expected_only_where_asked(api, env):
    api.faults = [Fault(USAGE_PATH, 400, width="1h", times=None)]
    done = backfill(env, AUG[0], AUG[-1])
    assert done.returncode == 1
    assert done.stderr.startswith("error: 7 day(s) failed: " + ", ".join(
        f"{d} (usage_messages_hourly)" for d in LAST_WEEK) + " (first: GET /v1/organizations/usage_report/messages: "
        "HTTP 400 invalid_request_error: injected failure")
    assert statuses(env) == ok_everywhere(AUG, hourly=[]) | {(cai.HOURLY, d.isoformat()): "failed" for d in LAST_WEEK}
    code, lines = validation(env)
    assert code == 1 and lines[1] == ("✗ days missing in 2025-08-01…2025-08-14: usage_messages_hourly: 7 day(s) "
                                      "2025-08-08…2025-08-14 (7 failed)")

    api.faults.clear()
    api.seen.clear()
    assert admin(env, "--retry-failed").returncode == 0
    assert api.seen and {(s.path, s.params["bucket_width"][0]) for s in api.seen} == {(USAGE_PATH, "1h")}
    assert api.days_requested(USAGE_PATH) == set(LAST_WEEK)
    assert statuses(env) == ok_everywhere(AUG)
    assert validation(env)[0] == 0

    # --hourly-days 0: a backfill asks for no hourly bucket, and --validate expects none on its days.
    api.seen.clear()
    assert backfill(env, day(15), day(16), "--hourly-days", "0").returncode == 0
    assert api.seen and api.requests_to(USAGE_PATH, "1h") == []
    code, lines = validation(env)
    assert code == 0 and lines[1] == ("✓ no day missing in 2025-08-01…2025-08-16 (16 days, 3 daily reports; hourly "
                                      "usage on 7 of them)")


def test_a_30_day_backfill_pays_two_requests_for_its_hourly_week(api, env):
    env = {k: v for k, v in env.items() if k != "ANTHROPIC_PAGE_LIMIT"}  # the documented maximum page sizes
    days = [dt.date(2025, 7, 1) + dt.timedelta(days=n) for n in range(30)]
    assert backfill(env, days[0], days[-1]).returncode == 0
    assert len(api.requests_to(COST_PATH)) == len(api.requests_to(USAGE_PATH, "1d")) == 5  # 7-day windows
    assert len(api.requests_to(CODE_PATH)) == 30
    assert len(api.requests_to(USAGE_PATH, "1h")) == 2  # 07-24…07-30 spans two windows; 168 buckets a page
    assert api.days_requested(USAGE_PATH, "1h") == set(days[-7:])
    assert len(api.seen) == 42
    assert {s.params["limit"][0] for s in api.requests_to(USAGE_PATH, "1h")} == {"168"}


def validation(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = admin(env, "--validate", *args)
    return done.returncode, done.stdout.splitlines()


def test_validate_is_clean_on_good_data_and_flags_missing_days_and_cents(api, env):
    assert validation(env) == (0, [f"⚠ {cai.NOTHING_IMPORTED}: {cai.FIRST_IMPORT_FIX}"])  # as --check: a warning
    assert backfill(env, day(1), day(7), "--hourly-days", "3").returncode == 0
    code, lines = validation(env)
    assert code == 0 and [line[0] for line in lines] == ["✓"] * 6
    assert lines[0] == ("✓ daily billed cost at most $100.00: highest $22.82 on 2025-08-01, $103.31 over "
                        "2025-08-01…2025-08-07")
    assert lines[1] == ("✓ no day missing in 2025-08-01…2025-08-07 (7 days, 3 daily reports; hourly usage on 3 of "
                        "them)")
    assert lines[4] == ("✓ hourly usage adds up to daily usage, key by key, on the 3 finished day(s) imported both "
                        "ways")
    assert lines[5] == ("✓ Claude Code tokens: no finished day with both local tokens and the Claude Code report; 5 "
                        "day(s) with only one of them not compared")  # no local import here: tests/test_estimates.py

    assert backfill(env, day(10), day(11)).returncode == 0  # 2025-08-08 and 09 never imported
    code, lines = validation(env)
    assert code == 1 and [line[0] for line in lines] == ["✓", "✗", "✓", "✓", "✓", "✓"]
    assert lines[1] == ("✗ days missing in 2025-08-01…2025-08-11: cost_report: 2 day(s) 2025-08-08…2025-08-09; "
                        "usage_messages: 2 day(s) 2025-08-08…2025-08-09; claude_code: 2 day(s) 2025-08-08…2025-08-09")

    # The cents bug's signature: one day billed $150.
    api.data.extra_costs[day(11)] = [{"amount": "15000", "currency": "USD", "cost_type": "tokens",
                                      "description": "Claude Opus 5 Usage - Output Tokens", "model": "claude-opus-5",
                                      "token_type": "output_tokens", "workspace_id": "wrkspc_big"}]
    assert backfill(env, day(11), day(11), "--force").returncode == 0
    code, lines = validation(env, "--since", "2025-08-10", "--until", "2025-08-11")
    assert code == 1 and [line[0] for line in lines] == ["✗", "✓", "✓", "✓", "✓", "✓"]
    assert lines[0].startswith("✗ daily billed cost above $100.00 on 1 day(s): 2025-08-11 $175.70")
    assert validation(env, "--since", "2025-08-10", "--until", "2025-08-11", "--max-daily-cost", "500")[0] == 0


def test_validate_flags_duplicates_and_cost_columns_in_productivity(api, env):
    assert backfill(env, day(1), day(1)).returncode == 0
    assert validation(env)[0] == 0
    # The seed's bug: a table without dedup, loaded twice. Swap claude_api_usage for a plain MergeTree, fill it twice.
    sql_many(env, {"copy": "CREATE TABLE usage_copy AS claude_api_usage ENGINE = MergeTree ORDER BY date",
                   "swap": "EXCHANGE TABLES usage_copy AND claude_api_usage",
                   **{f"fill {n}": "INSERT INTO claude_api_usage SELECT * FROM usage_copy FINAL" for n in (1, 2)}})
    code, lines = validation(env)
    assert code == 1 and [line[0] for line in lines] == ["✓", "✓", "✗", "✓", "✗", "✓"]
    assert lines[2] == ("✗ duplicates: claude_api_usage is a MergeTree, so a re-import adds rows instead of replacing "
                        "them; claude_api_usage: 12 duplicate natural key(s) (24 rows, 12 keys)")
    assert lines[4] == ("✗ hourly usage does not add up to daily usage on 1 of 1 day(s): 2025-08-01 (12 key(s)) — an "
                        "hourly page lost, or data restated between the imports (re-import: --since 2025-08-01 "
                        "--until 2025-08-01 --force --hourly-days 1)")

    sql(env, "ALTER TABLE claude_code_productivity ADD COLUMN estimated_cost Float64")
    code, lines = validation(env)
    assert code == 1 and lines[3] == ("✗ cost column(s) in claude_code_productivity: estimated_cost — summing them "
                                      "with billed cost counts Claude Code twice")


def named(env: dict[str, str], name: str, **params: object) -> list[dict]:
    """Rows of a named query of queries.sql, run through the main CLI as a user would."""
    args = ["--query", name, "--format", "json", *(f"--param={k}={v}" for k, v in params.items())]
    done = run_cli(env, *args)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def hourly_tokens(data: OrgData, days: list[dt.date], model: str = "") -> dict[str, int]:
    """Served tokens per busy UTC hour ('YYYY-MM-DD HH:00:00') of these days, of one model or all."""
    tokens = {}
    for d in days:
        for hour, results in enumerate(data.usage_results_by_hour(d)):
            total = sum(value_at(r, path) for r in results if model in ("", r["model"]) for path in TOKEN_PATHS)
            if total:
                tokens[f"{d} {hour:02d}:00:00"] = total
    return tokens


def test_named_queries_answer_from_the_admin_tables_beside_local_ccusage(api, env, tmp_path, ccusage_bin_dir):
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    truth = generate(tmp_path / "claude", seed=7, days=4, sessions=5, end=now - dt.timedelta(hours=2))
    local = cli_env(ccusage_bin_dir, Path(env["HOME"]), Path(env["CCUSAGE_IMPORT_DB"]), tmp_path / "claude", "laptop")
    assert run_cli(local).returncode == 0
    assert admin(env, "--days", "6").returncode == 0
    days = [now.date() - dt.timedelta(days=n) for n in range(5, -1, -1)]
    billed = {d.isoformat(): api.data.billed_cents([d]) / 100 for d in days if not empty_day(d)}

    per_day = named(env, "admin_cost_per_day", days=6)
    assert {r["date"]: Decimal(r["billed_usd"]) for r in per_day} == billed
    workspaces = {r["workspace"]: Decimal(r["billed_usd"]) for r in named(env, "admin_cost_by_workspace", days=6)}
    assert set(workspaces) == {"(default workspace)", *WORKSPACES[1:]}
    assert sum(workspaces.values()) == sum(billed.values())
    models = named(env, "admin_cost_by_model", days=6)
    assert sum(Decimal(r["billed_usd"]) for r in models) == sum(billed.values())
    web = sum((Decimal(r["amount"]) for d in days for r in api.data.cost_results(d) if r["cost_type"] == "web_search"),
              Decimal(0))
    assert [Decimal(r["billed_usd"]) for r in models if r["model_or_kind"] == "(web_search)"] == [web / 100]

    usage = named(env, "admin_usage_by_model_and_key", days=6)
    assert sum(r["tokens"] for r in usage) == sum(api.data.usage_total(days, path) for path in TOKEN_PATHS)
    assert sorted(r["model"] for r in usage if r["api_key"] == "(Console / Workbench)") == [
        "claude-opus-5", "claude-sonnet-4-5"]
    # Hourly: a window from yesterday 03:00 (night hours of the served data are empty, so the window's edge is
    # in an empty hour even if the clock passes an hour meanwhile) to now covers yesterday's and today's usage.
    hours = (now.replace(minute=0) - dt.datetime.combine(days[-2], dt.time(3), dt.UTC)) // dt.timedelta(hours=1) + 1
    for model in ("", "claude-opus-5"):
        per_hour = named(env, "admin_usage_hourly", hours=hours, model=model)
        assert {r["hour"]: int(r["tokens"]) for r in per_hour} == hourly_tokens(api.data, days[-2:], model)
    by_default = {r["hour"]: int(r["tokens"]) for r in named(env, "admin_usage_hourly")}  # the last 48 hours
    assert by_default.items() <= hourly_tokens(api.data, days).items()
    assert hourly_tokens(api.data, days[-1:]).items() <= by_default.items()

    users = {r["actor_id"]: r["sessions"] for r in named(env, "admin_claude_code_by_user", days=6)}
    sessions: dict[str, int] = {}
    for record in (r for d in days for r in api.data.code_records(d)):
        actor = record["actor"].get("email_address") or record["actor"]["api_key_name"]
        sessions[actor] = sessions.get(actor, 0) + record["core_metrics"]["num_sessions"]
    assert users == sessions

    local_days = {d: t.total for d, t in truth.by_day().items()}
    local_cost = {item["date"]: item["totalCost"] for item in run_ccusage(
        ccusage_bin_dir, tmp_path / "claude", "daily")["daily"]}
    compared = named(env, "admin_claude_code_vs_local", days=6)
    assert {r["date"] for r in compared} == {d for d in local_days if d >= days[0].isoformat()} | {
        d.isoformat() for d in days if not empty_day(d)}
    for row in compared:
        day_ = dt.date.fromisoformat(row["date"])
        assert row["local_tokens"] == local_days.get(row["date"], 0)
        assert row["local_estimate_usd"] == pytest.approx(local_cost.get(row["date"], 0), rel=1e-9)
        assert row["api_tokens"] == sum(api.data.code_total([day_], t) for t in cai.CODE_MODEL_TOKENS)
        assert Decimal(row["api_estimate_usd"]) == api.data.code_estimate_cents([day_]) / 100
        assert row["token_difference"] == row["local_tokens"] - row["api_tokens"]


def test_check_reports_the_admin_api_red_flags_when_a_key_is_set(api, env):
    def admin_line(done: subprocess.CompletedProcess) -> list[str]:
        """--check's Admin API line (this env has no Claude data, so --check exits 1 for that anyway)."""
        assert KEY not in done.stdout + done.stderr and "Traceback" not in done.stderr
        return [line for line in done.stdout.splitlines() if "Admin API data" in line]

    first = admin(env, "--check")
    assert admin_line(first) == [] and "no store yet" in first.stdout  # a check creates nothing
    assert run_cli(env).returncode == 0  # a store, with nothing of the Admin API in it
    nothing = admin(env, "--check").stdout.splitlines()
    at = nothing.index(f"⚠️ Admin API data: {cai.NOTHING_IMPORTED}")  # a warning, as --validate says (issue 24.7)
    assert "ANTHROPIC_ADMIN_KEY" in nothing[at + 1] and "fix:" in nothing[at + 1]  # the key first, then the run
    assert backfill(env, day(1), day(3)).returncode == 0
    assert admin_line(run_cli(env, "--check")) == []  # ccusage_importer.py checks its own part only
    lines = admin_line(admin(env, "--check"))
    assert len(lines) == 1 and lines[0].startswith("✅ Admin API data: 6 validations clean"), lines
    api.data.extra_costs[day(3)] = [{"amount": "15000", "currency": "USD", "cost_type": "tokens",
                                     "description": "Claude Opus 5 Usage - Output Tokens", "model": "claude-opus-5",
                                     "token_type": "output_tokens", "workspace_id": "wrkspc_big"}]
    assert backfill(env, day(3), day(3), "--force").returncode == 0
    lines = admin_line(admin(env, "--check"))
    assert lines[0].startswith("❌ Admin API data: daily billed cost above $100.00 on 1 day(s)"), lines
