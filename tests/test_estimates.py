"""Estimated vs reported vs billed (issue 14, part 2): the local ccusage estimate of Claude Code beside the Admin
API's Claude Code report and the bill, as a named query, a dashboard section and a `--validate` flag.

One store serves the module: two machines import generated transcripts (fixed days in August 2025) with the real
pinned ccusage, then claude_admin_importer.py backfills the days around them from the local fake Admin API
(tests/fake_admin_api.py), whose Claude Code report is built from the transcripts' ground truth with known
differences: the local tokens equal to the report's on some days, 5 % and 25 % above them on one day each, a day
with local usage and no report, a day with a report and no local usage, days billed with neither. Expected values
come from the generator, ccusage's own per-project daily report and the served data, never from the importer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from browser import Browser
from conftest import cli_env, run_admin, run_ccusage, run_cli, sql
from fake_admin_api import FakeAdminApi, code_record
from test_dashboard import ARTIFACTS, CHARTS_JS, assert_offline_and_quiet, open_page
from transcripts import Totals, generate

import claude_admin_importer as cai

KEY = "sk-ant-admin01-EstimatesTEST-4d2b9f1c7e3a5b8d0c2e4f6a8b1d-never-show-me"
FIRST, LAST = dt.date(2025, 8, 2), dt.date(2025, 8, 9)  # the Admin API's days: local usage is 08-04…08-08
MACHINES = {  # name: (seed, the end of its transcripts, days before it, sessions)
    "laptop": (81, dt.datetime(2025, 8, 8, 21, tzinfo=dt.UTC), 4, 14),
    "desk": (82, dt.datetime(2025, 8, 7, 20, tzinfo=dt.UTC), 3, 10),
}
# The local tokens over the report's on the first four local days, in order: equal, 5 % and 25 % more, no report.
# Later local days are equal again.
FACTORS: list[Fraction | None] = [Fraction(1), Fraction(105, 100), Fraction(125, 100), None]
TOKEN_FIELDS = ("input", "output", "cache_read", "cache_creation")  # the Claude Code report's names


@dataclass
class Day:
    """One UTC day as the test made it: local tokens and cost (all machines), the report's, the bill's."""

    machines: dict[str, tuple[int, float]]  # machine -> (tokens, ccusage's totalCost)
    reported_tokens: int
    reported_cents: int
    billed_usd: Decimal

    @property
    def local_tokens(self) -> int:
        return sum(tokens for tokens, _ in self.machines.values())

    def local_cost(self, machine: str = "") -> float:
        return sum(cost for name, (_, cost) in self.machines.items() if machine in ("", name))


@dataclass
class Estimates:
    env: dict[str, str]
    days: dict[dt.date, Day]
    plan: dict[str, dt.date]  # "equal", "+5 %", "+25 %", "local only", "reported only"
    before: Path  # the dashboard written before the Admin API import
    after: Path
    projects: set[str]  # the generator's project names, stored only as keyed hashes


def project_day_costs(report: dict[str, Any]) -> dict[str, float]:
    """A machine's cost per day as ccusage gives it per project and day (`claude daily --instances`), added up
    exactly (math.fsum, whatever the order), the store's local estimate."""
    parts: dict[str, list[float]] = {}
    for rows in report["projects"].values():
        for row in rows:
            parts.setdefault(row["date"], []).append(row["totalCost"])
    return {day: math.fsum(costs) for day, costs in parts.items()}


def report_of(day: dt.date, local: Totals, cost: float, factor: Fraction) -> list[dict[str, Any]]:
    """The day's Claude Code report when the local counts are `factor` times the report's: two users, each with
    a model of their own, share every count and the estimate (local cost / factor, in cents)."""
    counts = {"input": local.input, "output": local.output, "cache_read": local.cache_read,
              "cache_creation": local.cache_creation}
    reported = {name: round(Fraction(value) / factor) for name, value in counts.items()}
    cents = round(Fraction(cost) * 100 / factor)
    ada = {name: value // 2 for name, value in reported.items()}
    bob = {name: value - ada[name] for name, value in reported.items()}
    return [code_record(day, "ada@example.com", {"claude-sonnet-4-5": (ada, cents // 2)}),
            code_record(day, "bob@example.com", {"claude-opus-5": (bob, cents - cents // 2)})]


@pytest.fixture(scope="module")
def estimates(tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> Iterator[Estimates]:
    base = tmp_path_factory.mktemp("estimates")
    home = base / "home"
    home.mkdir()
    db = base / "store" / "chdb"
    local: dict[dt.date, dict[str, tuple[Totals, float]]] = {}
    env: dict[str, str] = {}
    projects: set[str] = set()
    for name, (seed, end, days, sessions) in MACHINES.items():
        claude = base / f"claude-{name}"
        truth = generate(claude, seed=seed, days=days, sessions=sessions, end=end)
        env = cli_env(ccusage_bin_dir, home, db, claude, name)
        done = run_cli(env, "--quiet")
        assert done.returncode == 0, done.stdout + done.stderr
        costs = project_day_costs(run_ccusage(ccusage_bin_dir, claude, "daily", "--instances"))
        projects |= {project for project, _ in truth.by_session()}
        for day, totals in truth.by_day().items():
            local.setdefault(dt.date.fromisoformat(day), {})[name] = (totals, costs[day])
    local_days = sorted(local)
    assert local_days[0] > FIRST + dt.timedelta(days=1) and local_days[-1] < LAST and len(local_days) >= 4

    before = base / "before.html"
    assert run_cli(env, "--dashboard", str(before), "--quiet").returncode == 0

    with FakeAdminApi(KEY) as api:
        plan = {"reported only": FIRST}
        api.data.code_overrides = {d: [] for d in cai.days_between(FIRST, LAST)}
        api.data.code_overrides[FIRST] = report_of(FIRST, Totals(1200, 3400, 56000, 7800), 0.87, Fraction(1))
        reported: dict[dt.date, tuple[int, int]] = {FIRST: (1200 + 3400 + 56000 + 7800, 87)}
        for index, day in enumerate(local_days):
            factor = FACTORS[index] if index < len(FACTORS) else Fraction(1)
            plan.setdefault({Fraction(1): "equal", Fraction(105, 100): "+5 %", Fraction(125, 100): "+25 %",
                             None: "local only"}[factor], day)
            if factor is None:
                continue
            totals = Totals()
            for machine_totals, _ in local[day].values():
                totals.add(machine_totals)
            records = report_of(day, totals, sum(cost for _, cost in local[day].values()), factor)
            api.data.code_overrides[day] = records
            reported[day] = (sum(m["tokens"][t] for r in records for m in r["model_breakdown"] for t in TOKEN_FIELDS),
                             sum(m["estimated_cost"]["amount"] for r in records for m in r["model_breakdown"]))
        admin_env = {**env, "ANTHROPIC_ADMIN_KEY": KEY, "ANTHROPIC_BASE_URL": api.url,
                     "ANTHROPIC_RETRY_BACKOFF": "0.01", "ANTHROPIC_MAX_RETRIES": "2"}
        done = admin(admin_env, "--since", FIRST.isoformat(), "--until", LAST.isoformat(), "--quiet")
        assert done.returncode == 0, done.stderr
        days = {}
        for day in cai.days_between(FIRST, LAST):
            billed = sum((Decimal(r["amount"]) for r in api.data.cost_results(day)
                          if r["cost_type"] == "tokens" and r["model"]), Decimal(0)) / 100
            tokens, cents = reported.get(day, (0, 0))
            days[day] = Day({name: (totals.total, cost) for name, (totals, cost) in local.get(day, {}).items()},
                            tokens, cents, billed)
    after = base / "after.html"
    assert run_cli(env, "--dashboard", str(after), "--quiet").returncode == 0
    yield Estimates(admin_env, days, plan, before, after, projects)


def admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """One run of claude_admin_importer.py (conftest.run_admin); the key never shows, nothing ends in a traceback."""
    done = run_admin(env, *args)
    assert KEY not in done.stdout + done.stderr and "Traceback" not in done.stderr, done.stderr
    return done


def pct(value: float, base: float) -> float | None:
    """A difference in % of `base` as the query rounds it; None unless both sides have a value."""
    return round(100 * (value - base) / base, 2) if value > 0 and base > 0 else None


def expected_rows(estimates: Estimates, machine: str = "") -> list[dict[str, Any]]:
    """admin_estimated_vs_billed's rows from what the test made, days with any of the three, oldest first."""
    rows = []
    for day, made in sorted(estimates.days.items()):
        chosen = [tokens for name, (tokens, _) in made.machines.items() if machine in ("", name)]
        local_cost = made.local_cost(machine)
        reported_usd = Decimal(made.reported_cents) / 100
        if not (sum(chosen) or made.reported_tokens or made.billed_usd):
            continue
        rows.append({
            "date": day.isoformat(), "machines": len(chosen), "local_tokens": sum(chosen),
            "reported_tokens": made.reported_tokens,
            "local_vs_reported_tokens_pct": pct(sum(chosen), made.reported_tokens),
            "local_estimate_usd": local_cost, "reported_estimate_usd": reported_usd,
            "local_vs_reported_usd_pct": pct(local_cost, float(reported_usd)), "billed_usd": made.billed_usd,
            "local_vs_billed_pct": pct(local_cost, float(made.billed_usd)),
            "reported_vs_billed_pct": pct(float(reported_usd), float(made.billed_usd))})
    return rows


def printed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as --format json prints them: floats to 15 significant digits, without binary noise."""
    return [{k: float(f"{v:.15g}") if isinstance(v, float) else v for k, v in row.items()} for row in rows]


def query_rows(env: dict[str, str], **params: object) -> list[dict[str, Any]]:
    """The named query through the CLI as a user runs it; exact dollars (JSON strings) back to Decimal."""
    done = run_cli(env, "--query", "admin_estimated_vs_billed", "--format", "json",
                   *(f"--param={name}={value}" for name, value in params.items()))
    assert done.returncode == 0 and not done.stderr, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip() != "[]"]  # [] is no row
    for row in rows:
        for column in ("reported_estimate_usd", "billed_usd"):
            row[column] = Decimal(row[column])
    return rows


def difference(estimates: Estimates, day: dt.date) -> str:
    """A day as --validate names it: the exact difference in % of the report's tokens, and both counts."""
    local, reported = estimates.days[day].local_tokens, estimates.days[day].reported_tokens
    return f"{day} {Decimal(100 * (local - reported)) / reported:+.2f} % ({local:,} local, {reported:,} reported)"


def compared(estimates: Estimates) -> int:
    return sum(1 for made in estimates.days.values() if made.local_tokens and made.reported_tokens)


def validation(env: dict[str, str], *args: str) -> tuple[int, list[str], str]:
    done = admin(env, "--validate", *args)
    return done.returncode, done.stdout.splitlines(), done.stderr


# ----------------------------------------------------------------------------------------------------------------
# The named query
# ----------------------------------------------------------------------------------------------------------------


def test_the_plan_has_every_kind_of_day(estimates: Estimates):
    """Guards the other tests: the generated days gave each difference the test means to check."""
    assert set(estimates.plan) == {"equal", "+5 %", "+25 %", "local only", "reported only"}
    days = estimates.days
    equal, local_only, reported_only = (days[estimates.plan[kind]] for kind in ("equal", "local only", "reported only"))
    assert equal.local_tokens == equal.reported_tokens > 0
    assert local_only.reported_tokens == 0 < local_only.local_tokens
    assert reported_only.local_tokens == 0 < reported_only.reported_tokens
    assert {len(made.machines) for made in days.values()} == {0, 1, 2}  # days of one machine and of both
    assert any(made.billed_usd == 0 for made in days.values()) and any(made.billed_usd > 0 for made in days.values())


def test_the_query_gives_every_number_exactly(estimates: Estimates):
    rows = query_rows(estimates.env, days=36600)
    assert rows == printed(expected_rows(estimates))
    by_day = {row["date"]: row for row in rows}
    assert by_day[estimates.plan["equal"].isoformat()]["local_vs_reported_tokens_pct"] == 0
    assert by_day[estimates.plan["+5 %"].isoformat()]["local_vs_reported_tokens_pct"] == 5
    assert by_day[estimates.plan["+25 %"].isoformat()]["local_vs_reported_tokens_pct"] == 25
    laptop = query_rows(estimates.env, days=36600, machine="laptop")
    assert laptop == printed(expected_rows(estimates, "laptop")) and laptop != rows
    assert query_rows(estimates.env, days=1) == []  # today: nothing in August 2025


# ----------------------------------------------------------------------------------------------------------------
# --validate
# ----------------------------------------------------------------------------------------------------------------


def test_validate_flags_exactly_the_day_beyond_the_threshold(estimates: Estimates):
    env, plan = estimates.env, estimates.plan
    tail = ("— a machine that does not import, other users of the organisation, or a local import behind? (raise "
            "--max-token-difference if expected); 2 day(s) with only one of them not compared")
    code, lines, stderr = validation(env)
    assert (code, stderr) == (1, "error: 1 red flag(s) in the Admin API data\n")
    assert [line[0] for line in lines] == ["✓"] * 5 + ["✗"]
    assert lines[5] == (f"✗ local Claude Code tokens differ from the Claude Code report by more than 10 % on 1 of "
                        f"{compared(estimates)} finished day(s): {difference(estimates, plan['+25 %'])} {tail}")

    code, lines, stderr = validation(env, "--max-token-difference", "30")
    assert (code, stderr) == (0, "")
    largest = difference(estimates, plan["+25 %"]).split(" (")[0].split(" ", 1)[1]
    assert lines[5] == (f"✓ local Claude Code tokens within 30 % of the Claude Code report on the "
                        f"{compared(estimates)} finished day(s) with both (largest difference {largest} on "
                        f"{plan['+25 %']}); 2 day(s) with only one of them not compared")

    code, lines, _ = validation(env, "--max-token-difference", "4.5")
    assert code == 1 and lines[5] == (
        f"✗ local Claude Code tokens differ from the Claude Code report by more than 4.5 % on 2 of "
        f"{compared(estimates)} finished day(s): {difference(estimates, plan['+5 %'])}, "
        f"{difference(estimates, plan['+25 %'])} {tail}")

    # Only the days in --since/--until count; local days in another time zone are named as such.
    code, lines, _ = validation(env, "--since", plan["equal"].isoformat(), "--until", plan["+5 %"].isoformat())
    assert code == 0 and lines[5].startswith("✓ local Claude Code tokens within 10 % of the Claude Code report on the "
                                             "2 finished day(s) with both (largest difference +5.")
    code, lines, _ = validation({**env, "CCUSAGE_TIMEZONE": "Europe/Berlin"})
    assert code == 1 and lines[5].endswith("; 2 day(s) with only one of them not compared; local days are "
                                           "Europe/Berlin days, the report's are UTC days")


def test_a_bad_threshold_is_one_line_and_exit_2(estimates: Estimates):
    for bad in ("ten", "-5", "nan"):
        done = admin(estimates.env, "--validate", "--max-token-difference", bad)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == (f"error: argument --max-token-difference: {bad!r} is not a percentage "
                               "(see claude_admin_importer.py --help)\n")


def test_check_warns_when_only_the_tokens_differ(estimates: Estimates):
    done = admin(estimates.env, "--check")
    [line] = [text for text in done.stdout.splitlines() if "Admin API data" in text]
    assert line.startswith("⚠️ Admin API data: local Claude Code tokens differ from the Claude Code report by more "
                           f"than 10 % on 1 of {compared(estimates)} finished day(s): "
                           f"{difference(estimates, estimates.plan['+25 %'])} ")


# ----------------------------------------------------------------------------------------------------------------
# The dashboard section, in a real headless Chromium
# ----------------------------------------------------------------------------------------------------------------




def money(value: float | Decimal) -> str:
    """As the page's Intl.NumberFormat shows the number it gets (a float): half away from zero on its exact value."""
    return f"${Decimal(float(value)).quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def signed(value: float | None) -> str:
    return "–" if value is None else f"{'+' if value > 0 else ''}{value:.2f} %"


def over(row: dict[str, Any]) -> bool:
    local, reported = row["local_tokens"], row["reported_tokens"]
    return bool(local and reported and abs(local - reported) * 100 > 10 * reported)


def choose_days(browser: Browser, first: dt.date, last: dt.date) -> None:
    """Set the page's date range as a person would, in its two date inputs."""
    for name, day in (("from", first), ("to", last)):
        browser.evaluate(f"(() => {{ const i = document.getElementById('{name}'); i.value = '{day}';"
                         " i.dispatchEvent(new Event('change')); })()")


ROWS_JS = ("[...document.querySelectorAll('#estimates-days tr')].map((r) => "
           "[r.className, ...[...r.cells].map((c) => c.textContent)])")


def test_the_section_is_absent_without_admin_data(estimates: Estimates, browser: Browser):
    assert open_page(browser, estimates.before, 1280, 900) == "ready"
    assert browser.evaluate("document.getElementById('estimates').hidden") is True
    assert browser.evaluate("document.getElementById('chart-estimates')") is None
    assert browser.evaluate(ROWS_JS) == []
    assert_offline_and_quiet(browser, estimates.before)


def test_the_section_shows_each_day_with_its_differences(estimates: Estimates, browser: Browser):
    assert open_page(browser, estimates.after, 1280, 900) == "ready"
    assert browser.evaluate("document.getElementById('estimates').hidden") is False
    rows = expected_rows(estimates)
    assert browser.evaluate(ROWS_JS) == [
        ["over" if over(r) else "", r["date"], f"{r['local_tokens']:,}", f"{r['reported_tokens']:,}",
         f"{'⚠ ' if over(r) else ''}{signed(r['local_vs_reported_tokens_pct'])}", money(r["local_estimate_usd"]),
         money(r["reported_estimate_usd"]), money(r["billed_usd"]), signed(r["local_vs_billed_pct"]),
         signed(r["reported_vs_billed_pct"])] for r in reversed(rows)]
    assert [r[1] for r in browser.evaluate(ROWS_JS) if r[0] == "over"] == [estimates.plan["+25 %"].isoformat()]

    totals = [0.0, 0.0, 0.0]  # summed in the page's order, as floats
    for row in rows:
        for index, column in enumerate(("local_estimate_usd", "reported_estimate_usd", "billed_usd")):
            totals[index] += float(row[column])
    both = [r for r in rows if r["local_tokens"] and r["reported_tokens"]]
    local, reported = sum(r["local_tokens"] for r in both), sum(r["reported_tokens"] for r in both)
    summary = (f"Selected days: estimated {money(totals[0])} · reported {money(totals[1])} · billed {money(totals[2])}"
               f" · tokens estimated vs reported {signed(100 * (local - reported) / reported)} over the {len(both)} "
               "days with both, 1 of them beyond 10 %")
    assert browser.evaluate("document.getElementById('estimates-summary').textContent") == summary
    assert "whatever the machine and agent filters say" in browser.evaluate(
        "document.getElementById('estimates-note').textContent")

    chart = {c["id"]: c for c in browser.evaluate(CHARTS_JS)}["chart-estimates"]
    assert chart["width"] > 200 and chart["painted"] > chart["width"] * chart["height"] // 50 and chart["points"] > 0
    assert browser.evaluate("Chart.getChart('chart-estimates').data.datasets.map((d) => d.label)") == [
        "estimated (local)", "reported (Claude Code report)", "billed (Claude model tokens)"]

    # The organisation's report and bill do not follow the machine filter; the date range applies.
    browser.evaluate("(() => { const s = document.getElementById('machine'); s.value = 'laptop';"
                     " s.dispatchEvent(new Event('change')); })()")
    assert browser.evaluate("document.getElementById('estimates-summary').textContent") == summary
    choose_days(browser, estimates.plan["+25 %"], LAST)
    assert [r[1] for r in browser.evaluate(ROWS_JS)] == [
        r["date"] for r in reversed(rows) if r["date"] >= estimates.plan["+25 %"].isoformat()]
    browser.evaluate("(() => { const s = document.getElementById('machine'); s.value = '';"
                     " s.dispatchEvent(new Event('change')); })()")
    choose_days(browser, FIRST, LAST)
    # The store holds keyed hashes only; this machine's name map gives the page the names (issue 14.3).
    labels = browser.evaluate("Chart.getChart('chart-projects').data.labels")
    assert labels and set(labels) <= estimates.projects, labels
    assert estimates.projects.isdisjoint(row["row"] for row in sql(
        estimates.env, "SELECT DISTINCT project_name AS row FROM ccusage_usage_sessions"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-estimates.png")  # the new section and the names: docs' screenshot
    assert_offline_and_quiet(browser, estimates.after)


def test_the_section_in_dark_mode_and_at_phone_width(estimates: Estimates, browser: Browser):
    browser.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
    assert open_page(browser, estimates.after, 1280, 900) == "ready"
    choose_days(browser, FIRST, LAST)
    assert browser.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 21, 28)"
    assert browser.evaluate("getComputedStyle(document.querySelector('#estimates-days tr.over td')).backgroundColor") \
        == "rgb(58, 42, 12)"  # --warn-bg of the dark palette
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-estimates-dark.png")
    browser.send("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
    assert open_page(browser, estimates.after, 390, 844, mobile=True) == "ready"
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert browser.evaluate("(() => { const r = document.getElementById('estimates').getBoundingClientRect();"
                            " return r.width > 300 && r.right <= window.innerWidth; })()")
    labels = browser.evaluate("[...document.querySelector('#estimates-days tr').cells].map((c) => c.dataset.label)")
    assert labels[1:] == ["Tokens estimated", "Tokens reported", "Tokens: estimated vs reported", "Estimated",
                          "Reported", "Billed", "Estimated vs billed", "Reported vs billed"]
    choose_days(browser, FIRST, LAST)
    browser.screenshot(ARTIFACTS / "dashboard-estimates-phone.png")
    assert_offline_and_quiet(browser, estimates.after)
