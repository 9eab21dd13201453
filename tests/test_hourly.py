"""Clock hours (issue 22): a store of the release before them migrates and fills them once, and the named queries
over them answer what ccusage's own one-hour blocks say.

The importer's side (every stored hour equals `ccusage claude blocks --session-length 1` on every line ever
written, after full and incremental imports) is held by tests/test_window_exact.py, tests/test_rolling.py and
tests/test_window_property.py through tests/differential.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT, named_query, run_ccusage, run_cli, sql, sql_many
from test_window_exact import World, check, every, imported

BEFORE_HOURS = "46d37d1"  # the release before ccusage_usage_hourly: its importer, schema, queries and migrations


def test_a_store_of_the_release_before_hours_migrates_and_fills_them_once(tmp_path, make_env, ccusage_bin_dir):
    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("needs the git history to rebuild the previous release (a git checkout of this repository)")
    old = tmp_path / "old-release"
    (old / "migrations").mkdir(parents=True)
    for name in ("ccusage_importer.py", "ccusage_clickhouse_schema.sql", "queries.sql", "migrations/002_agents.sql"):
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE_HOURS}:{name}"], capture_output=True)
        if shown.returncode != 0:
            pytest.skip(f"this checkout lacks the commit {BEFORE_HOURS} (a shallow clone?)")
        (old / name).write_bytes(shown.stdout)
    world = World(tmp_path / "world")
    env = make_env(world.live)
    world.write("p/a.jsonl", every("11-10 09:05", "11-10 11:55", 25))
    world.write("q/b.jsonl", every("11-11 14:10", "11-11 15:40", 15))
    done = subprocess.run([sys.executable, str(old / "ccusage_importer.py")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    world.write("q/b.jsonl", every("11-11 16:05", "11-11 16:35", 15))
    out = imported(env)
    assert "Read all 2 transcripts (the hourly table is new" in out, out
    assert [row["version"] for row in sql(env, "SELECT version FROM ccusage_schema_migrations ORDER BY version")] == [
        1, 2, 3]
    check(env, world, ccusage_bin_dir, "after the first import of the release with hours")
    models = sql(env, "SELECT count() AS n FROM ccusage_models_used FINAL WHERE record_type = 'hour'")[0]["n"]
    assert models == len(sql(env, "SELECT hour FROM ccusage_usage_hourly FINAL")) == 6  # one model an hour here
    world.write("q/b.jsonl", every("11-11 17:05", "11-11 17:35", 15))
    assert "Read 2026-11-11" in imported(env)  # filled: the window again
    check(env, world, ccusage_bin_dir, "after the next hour")


TZ = "America/Los_Angeles"


def test_the_hour_queries_answer_what_ccusages_one_hour_blocks_say(tmp_path, make_env, ccusage_bin_dir):
    """Two machines' hours, read by hour of the day and weekday, the busiest hours, one day and today so far by hour
    in `tz`: each equals ccusage's own one-hour blocks of the same lines, added up over the machines (or one)."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    worlds = {name: World(tmp_path / name) for name in ("laptop", "desk")}
    worlds["laptop"].write("p/a.jsonl", every("11-10 09:05", "11-10 11:55", 25))  # a Tuesday
    worlds["laptop"].write("p/b.jsonl", [*every("11-17 09:10", "11-17 10:20", 35), now])  # a Tuesday, and now
    worlds["desk"].write("q/c.jsonl", [*every("11-10 10:30", "11-10 12:10", 20), now])
    envs = {name: make_env(world.live, name, CCUSAGE_TIMEZONE=TZ) for name, world in worlds.items()}
    for env in envs.values():
        imported(env)
    zone = ZoneInfo(TZ)
    blocks = {name: [b for b in run_ccusage(ccusage_bin_dir, world.live, "blocks", "--session-length", "1")["blocks"]
                     if not b["isGap"]] for name, world in worlds.items()}

    def truth(machines, key) -> dict:
        sums: dict = defaultdict(lambda: [0.0, 0])
        for machine in machines:
            for block in blocks[machine]:
                local = datetime.fromisoformat(block["startTime"].replace("Z", "+00:00")).astimezone(zone)
                sums[key(local)][0] += block["costUSD"]
                sums[key(local)][1] += block["totalTokens"]
        return dict(sums)

    today = now.astimezone(zone).date()
    asked = {"weekday": named_query("hour_weekday_cost", {"days": 3650, "tz": TZ}),
             "weekday_desk": named_query("hour_weekday_cost", {"days": 3650, "tz": TZ, "machine": "desk"}),
             "busiest": named_query("busiest_hours", {"days": 3650, "limit": 3, "tz": TZ}),
             "day": named_query("day_by_hour", {"date": "2026-11-10", "tz": TZ}),
             "today": named_query("day_by_hour", {"tz": TZ}),
             "codex": named_query("hour_weekday_cost", {"days": 3650, "tz": TZ, "agent": "codex"})}
    answers = sql_many(envs["laptop"], asked)
    by_weekday = truth(("laptop", "desk"), lambda t: (t.isoweekday(), t.hour))
    assert {(r["weekday"], r["hour_of_day"]): [r["cost_usd"], r["tokens"]] for r in answers["weekday"]} == {
        key: pytest.approx(value, rel=1e-9) for key, value in by_weekday.items()}
    assert {(r["weekday"], r["hour_of_day"]) for r in answers["weekday_desk"]} == set(
        truth(("desk",), lambda t: (t.isoweekday(), t.hour)))
    assert answers["codex"] == []
    by_hour = truth(("laptop", "desk"), lambda t: t.strftime("%Y-%m-%d %H:%M"))
    top = sorted(by_hour.items(), key=lambda item: -item[1][0])[:3]
    assert [(r["hour_start"], r["cost_usd"]) for r in answers["busiest"]] == [
        (key, pytest.approx(value[0], rel=1e-9)) for key, value in top]
    day = truth(("laptop", "desk"), lambda t: (t.date().isoformat(), t.hour))
    assert [r["hour_of_day"] for r in answers["day"]] == list(range(24))
    assert [r["cost_usd"] for r in answers["day"]] == pytest.approx(
        [day.get(("2026-11-10", h), [0.0])[0] for h in range(24)], rel=1e-9)
    assert answers["day"][-1]["running_cost_usd"] == pytest.approx(
        sum(v[0] for (d, _), v in day.items() if d == "2026-11-10"), rel=1e-9)
    assert [r["hour_of_day"] for r in answers["today"]] == list(range(now.astimezone(zone).hour + 1))
    today_cost = sum(v[0] for (d, _), v in day.items() if d == today.isoformat())
    assert answers["today"][-1]["running_cost_usd"] == pytest.approx(today_cost, rel=1e-9) and today_cost > 0


def test_a_day_that_is_not_a_date_is_one_clear_line(tmp_path, make_env):
    world = World(tmp_path / "world")
    world.write("p/a.jsonl", every("11-10 09:05", "11-10 09:55", 25))
    env = make_env(world.live)
    imported(env)
    done = run_cli(env, "--query", "day_by_hour", "--param", "date=yesterday")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert len((done.stdout + done.stderr).strip().splitlines()) == 1, done.stdout + done.stderr
