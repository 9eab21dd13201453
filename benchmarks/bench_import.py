"""Benchmark: the importer against the seed's approach, side by side, on generated histories.

For each history size it measures, in one run:
  (a) baseline   five ccusage reports (daily, monthly, session, blocks, daily --instances), three at a time,
                 through the runner the importer uses: what the seed's importer fetched every hour;
  (b) full       a full import into a fresh embedded store (fetch and write phases from the importer's output),
                 next to (b') the Claude Code reports it runs, run as it runs them (FULL_READS_AT_ONCE at a time)
                 without it: (b) - (b') is what the importer adds (its start, the engine, parsing, planning, writing);
  (c) unchanged  a second import with no new transcript bytes;
  (d) new hour   an import after appending one hour of activity (a few hundred lines) as cron runs it (--defer:
                 its reports wait in the journal), next to (d') one `ccusage claude daily` on the same folder (what
                 a user would run instead: one report, no store), (d2) another new hour imported by hand (the
                 engine opens), (d3) a `--sql` that files six hours deferred since and (d4) the same `--sql`
                 with nothing to file;
  (e) new day    after Claude Code's cleanup deleted every transcript older than 30 days, an import of one new
                 day of activity (a 90th of the history's lines), next to (e') the five reports on what is left;
                 then (e2) and (e3) as (d2) and (d3), the store holding more sessions than the disk (all of them
                 with `--days 900`: what a store gathers in years while the disk keeps 30 days).
Then, on a machine with Claude Code, Codex CLI, Gemini CLI and OpenCode logs (tests/agent_logs.py, --agents-scale):
  (f) full import of every agent, (g) nothing new (nothing may run), (h) one new hour of Codex only (Claude Code's
  reports may not run), each with its totals checked against `ccusage daily --by-agent`.
For each: wall time, CPU time and peak memory of the whole process tree (sampled every 20 ms), the importer
process's own peak memory (its exact high-water mark, getrusage), that peak minus the engine's own footprint, and
the wall-time ratio to (a). The engine's footprint is the peak of a process that only opens an empty embedded store
the way the importer does (clickhouse-connect over chDB) and inserts one row. It also checks that the import's
totals equal the baseline reports' totals (for (e): the totals before the deletion plus what the new day added), so
a faster import that got a number wrong fails loudly.

    uv run python benchmarks/bench_import.py --lines 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent_logs import ENV_VARS, append_codex_activity, generate_machine  # noqa: E402
from transcripts import append_activity, delete_older_than, generate  # noqa: E402

import ccusage_importer as ci  # noqa: E402

BASELINE_REPORTS = (["daily"], ["monthly"], ["session"], ["blocks"], ["daily", "--instances"])
OWN_PEAK = re.compile(r"^own peak KiB (\d+)$", re.M)
# Runs a Python script as __main__ and prints the process's own peak memory (children excluded) when it ends. With
# `-m FOLDER MODULE`, a module of FOLDER instead, from its cached bytecode, as setup_cronjob.sh runs the importer.
PEAK_WRAPPER = ("import resource, runpy, sys\n"
                "sys.argv = sys.argv[1:]\n"
                "try:\n"
                "    if sys.argv[0] == '-m':\n"
                "        sys.path.insert(0, sys.argv[1])\n"
                "        sys.argv = sys.argv[2:]\n"
                "        runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
                "    else:\n"
                "        runpy.run_path(sys.argv[0], run_name='__main__')\n"
                "finally:\n"
                "    print(f'own peak KiB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n")
# The engine alone, opened the way the importer opens it (the driver told that pandas is absent, so an insert does
# not import it), with one insert.
ENGINE_PROBE = ("import datetime, sys, clickhouse_connect\n"
                "from clickhouse_connect.driver import options\n"
                "options.pd = None\n"
                "client = clickhouse_connect.get_client(dsn=f'chdb://{sys.argv[1]}')\n"
                "client.command('CREATE TABLE probe (date Date, tokens UInt64) ENGINE = MergeTree ORDER BY date')\n"
                "client.insert('probe', [[datetime.date(2026, 1, 1), 1]], column_names=['date', 'tokens'])\n"
                "client.close()\n"
                "assert 'pandas' not in sys.modules, 'the engine probe loaded pandas, which the importer never does'\n")
BY_HAND = [sys.executable, "-c", PEAK_WRAPPER, "-m", str(ROOT), "ccusage_importer"]
IMPORTER = [*BY_HAND, "--defer"]  # as cron runs it
HOUR_SEEDS = itertools.count(100)  # new_hour's, one per hour
DEFERRED_HOURS = 6  # (d3): hours kept in the journal by --defer runs, then filed by one opening of the store
RETENTION = timedelta(days=30)  # Claude Code's cleanupPeriodDays


@dataclass
class Measurement:
    wall: float
    cpu: float
    tree_peak_mb: float
    output: str = ""

    @property
    def own_peak_mb(self) -> float | None:
        """The importer process's exact peak, when it ran under PEAK_WRAPPER."""
        found = OWN_PEAK.search(self.output)
        return int(found.group(1)) / 1024 if found else None


def measure(argv_list: list[list[str]], env: dict, parallel: int = 1) -> Measurement:
    """Run commands (`parallel` at a time), sampling the summed memory of every process they start."""
    started = time.monotonic()
    me = psutil.Process()
    before = me.cpu_times()
    outputs: list[str] = []

    def run_one(argv: list[str]) -> None:
        # Started by a small shell, not forked straight from this (large) process: Linux keeps a process's memory
        # high-water mark across exec, so a direct child's getrusage peak would start at this process's size.
        shell = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *argv]
        process = subprocess.Popen(shell, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        outputs.append(process.communicate()[0])
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({process.returncode}):\n{outputs[-1][-2000:]}")

    tree_peak = 0.0
    with ThreadPoolExecutor(parallel) as pool:
        futures = [pool.submit(run_one, argv) for argv in argv_list]
        while not all(future.done() for future in futures):
            try:
                family = me.children(recursive=True)
                tree_peak = max(tree_peak, sum(p.memory_info().rss for p in family) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.02)
        for future in futures:
            future.result()
    after = me.cpu_times()
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return Measurement(time.monotonic() - started, cpu, tree_peak, "\n".join(outputs))


def phases(output: str) -> dict[str, float]:
    match = re.search(r"Status: \w+ \(([^)]*)\)", output)
    return {name: float(sec) for name, sec in re.findall(r"(\w+) ([\d.]+) s", match.group(1))} if match else {}


def history(workdir: Path, lines: int, days: int = 90) -> Path:
    """A generated history of about `lines` lines over `days` days, reused between benchmark runs. Sessions are
    longer as the lines per day grow (40 lines up to 100k lines in 90 days, 250 at 1M)."""
    claude = workdir / (f"history-{lines}" if days == 90 else f"history-{lines}-{days}d")
    if not (claude / "projects").exists():
        started = time.monotonic()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        generate(claude, seed=2026, days=days, lines_total=lines, lines_per_session=max(40, lines * 90 // days // 4000),
                 end=end)
        print(f"  generated {lines:,} lines in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return claude


def baseline_totals(runner: ci.Runner, claude: Path, env: dict) -> dict[str, float]:
    child_env = {**env, "CLAUDE_CONFIG_DIR": str(claude)}
    totals = {}
    for report in ("daily", "session"):
        argv = [*runner.argv, "claude", report, "--json", "--offline", "--timezone", "UTC"]
        doc = json.loads(subprocess.run(argv, env=child_env, capture_output=True, text=True, check=True).stdout)
        totals[f"{report}_tokens"] = doc["totals"]["totalTokens"]
        totals[f"{report}_cost"] = doc["totals"]["totalCost"]
    return totals


def stored_totals(env: dict) -> dict[str, float]:
    query = ("SELECT (SELECT sum(total_tokens) FROM ccusage_usage_daily FINAL) AS daily_tokens, "
             "(SELECT sum(total_cost) FROM ccusage_usage_daily FINAL) AS daily_cost, "
             "(SELECT sum(total_tokens) FROM ccusage_usage_sessions FINAL) AS session_tokens, "
             "(SELECT sum(total_cost) FROM ccusage_usage_sessions FINAL) AS session_cost")
    done = subprocess.run([sys.executable, str(ROOT / "ccusage_importer.py"), "--sql", query, "--format", "json"],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def same_totals(expected: dict[str, float], got: dict[str, float]) -> bool:
    return all(abs(expected[k] - got[k]) <= 1e-6 * max(1.0, abs(expected[k])) for k in expected)


def new_hour(claude: Path, env: dict) -> dict:
    """Append an hour of activity (300 lines) five minutes after the newest line; `env` comes back, for a call.
    Each hour has a seed of its own: the session it starts is a new one (one seed for every hour started the first
    hour's session again and wrote its file anew, the same responses at new times: not new activity)."""
    newest = max(path.stat().st_mtime for path in claude.rglob("*.jsonl"))
    append_activity(claude, start=datetime.fromtimestamp(newest, UTC) + timedelta(minutes=5), minutes=60, lines=300,
                    seed=next(HOUR_SEEDS))
    return env


def say_what_it_read(scenario: str, run: Measurement) -> None:
    """The import's own line on which transcripts its reports read: a window, or all of them and why."""
    read = re.search(r"^Read .*", run.output, re.M)
    print(f"  {scenario} {read.group() if read else 'said nothing of what it read'}", file=sys.stderr)


def by_hand_then_filed(claude: Path, env: dict, scenario: str, after: str = "") -> list[tuple[str, Measurement]]:
    """({scenario}2) an import of one new hour by hand (the engine opens), ({scenario}3) a `--sql` that files
    DEFERRED_HOURS new hours that cron's --defer kept in the journal."""
    by_hand = measure([BY_HAND], new_hour(claude, env))
    say_what_it_read(f"({scenario}2)", by_hand)
    for _ in range(DEFERRED_HOURS):
        subprocess.run(IMPORTER, env=new_hour(claude, env), check=True, capture_output=True)
    return [(f"({scenario}2) import after another new hour{after}, by hand (no --defer)", by_hand),
            (f"({scenario}3) `--sql 'SELECT 1'` filing {DEFERRED_HOURS} deferred hours{after}",
             measure([[*BY_HAND, "--sql", "SELECT 1"]], env))]


def engine_footprint(workdir: Path, env: dict) -> float:
    """Peak MB of a process that opens an empty embedded store like the importer and inserts one row."""
    scratch = Path(tempfile.mkdtemp(prefix="engine-", dir=workdir))
    try:
        probe = scratch / "probe.py"
        probe.write_text(ENGINE_PROBE)
        peak = measure([[sys.executable, "-c", PEAK_WRAPPER, str(probe), str(scratch / "chdb")]], env).own_peak_mb
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if peak is None:
        raise SystemExit("the engine probe did not report its peak memory")
    return peak


def bench(lines: int, days: int, workdir: Path, env: dict, runner: ci.Runner) -> list[tuple[str, Measurement]]:
    claude = history(workdir, lines, days)
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=workdir))
    try:
        return _bench(lines, claude, scratch, env, runner)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _bench(lines: int, source: Path, scratch: Path, env: dict, runner: ci.Runner) -> list[tuple[str, Measurement]]:
    claude = scratch / "claude"
    shutil.copytree(source, claude)  # (d) and (e) change the copy; each file keeps its time (its last line's)
    env = {**env, "CLAUDE_CONFIG_DIR": str(claude), "CCUSAGE_IMPORT_DB": str(scratch / "store" / "chdb"),
           "MACHINE_NAME": "bench"}
    results = []
    baseline = [[*runner.argv, "claude", *args, "--json", "--offline", "--timezone", "UTC"]
                for args in BASELINE_REPORTS]
    results.append(("(a) baseline: 5 reports, 3 at a time", measure(baseline, env, parallel=3)))
    full = measure([IMPORTER], env)
    results.append(("(b) full import, fresh store", full))
    own_reports = [[*runner.argv, "claude", *report.args, "--json", "--offline", "--timezone", "UTC"]
                   for report in ci.REPORTS.values() if not report.for_agents]
    results.append((f"(b') the reports (b) runs, {ci.FULL_READS_AT_ONCE} at a time, no store",
                    measure(own_reports, env, parallel=ci.FULL_READS_AT_ONCE)))
    check_totals(baseline_totals(runner, claude, env), stored_totals(env), "full import")
    results.append(("(c) second import, nothing new", measure([IMPORTER], env)))
    results.append(("(d) import after one new hour (as cron: --defer)", measure([IMPORTER], new_hour(claude, env))))
    say_what_it_read("(d)", results[-1][1])
    check_totals(baseline_totals(runner, claude, env), stored_totals(env), "import after one new hour")
    results.append(("(d') one `ccusage claude daily` on the same folder", measure([baseline[0]], env)))
    results += by_hand_then_filed(claude, env, "d")
    results.append(("(d4) `--sql 'SELECT 1'` again, nothing to file", measure([[*BY_HAND, "--sql", "SELECT 1"]], env)))
    check_totals(baseline_totals(runner, claude, env), stored_totals(env), f"{DEFERRED_HOURS} deferred hours filed")

    kept = stored_totals(env)
    newest = datetime.fromtimestamp(max(path.stat().st_mtime for path in claude.rglob("*.jsonl")), UTC)
    day = newest + timedelta(minutes=30)
    deleted = delete_older_than(claude, day - RETENTION)
    if not deleted:
        raise SystemExit(f"no transcript is older than 30 days: the files' times in {source} are not their last "
                         "lines' (a history kept by an older version of this script?); delete it and run again")
    print(f"  the cleanup deleted {len(deleted):,} of {len(deleted) + len(list(claude.rglob('*.jsonl'))):,} "
          "transcript files", file=sys.stderr)
    left = baseline_totals(runner, claude, env)
    append_activity(claude, start=day, minutes=8 * 60, lines=max(300, lines // 90), seed=3)
    results.append(("(e') baseline after 30 days of deletions: 5 reports on what is left", measure(baseline, env, 3)))
    results.append(("(e) import of one new day after 30 days of deletions", measure([IMPORTER], env)))
    say_what_it_read("(e)", results[-1][1])
    results += by_hand_then_filed(claude, env, "e", " after the deletions")
    added = {key: value - left[key] for key, value in baseline_totals(runner, claude, env).items()}
    check_totals({key: kept[key] + added[key] for key in kept}, stored_totals(env),
                 "one new day and the hours after it, after 30 days of deletions")
    return results


def bench_agents(workdir: Path, env: dict, runner: ci.Runner, scale: int) -> list[tuple[str, Measurement]]:
    """(f), (g), (h): every agent on one machine."""
    machine = workdir / f"agents-{scale}"
    if not (machine / "claude" / "projects").exists():
        generate_machine(machine, seed=7, days=30, scale=scale,
                         end=datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2))
    scratch = Path(tempfile.mkdtemp(prefix="bench-agents-", dir=workdir))
    try:
        shutil.copytree(machine, scratch / "machine")  # (h) changes the copy; each file keeps its time
        env = {**env, **{variable: str(scratch / "machine" / agent) for agent, variable in ENV_VARS.items()},
               "CCUSAGE_IMPORT_DB": str(scratch / "store" / "chdb"), "MACHINE_NAME": "bench"}
        results = [("(f) full import, every agent", measure([IMPORTER], env))]
        check_totals(unified_totals(runner, env), agent_totals(env), "full import of every agent")
        results.append(("(g) second import, nothing new", measure([IMPORTER], env)))
        codex = scratch / "machine" / "codex"
        newest = max(path.stat().st_mtime for path in codex.rglob("*.jsonl"))
        append_codex_activity(codex, start=datetime.fromtimestamp(newest, UTC) + timedelta(minutes=5))
        results.append(("(h) import after one new hour of Codex", measure([IMPORTER], env)))
        check_totals(unified_totals(runner, env), agent_totals(env), "import after one new hour of Codex")
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def unified_totals(runner: ci.Runner, env: dict) -> dict[str, float]:
    """Tokens and cost per agent from ccusage's own unified daily report."""
    argv = [*runner.argv, "daily", "--by-agent", "--json", "--offline", "--timezone", "UTC"]
    doc = json.loads(subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout)
    totals: dict[str, float] = {}
    for day in doc["daily"]:
        for item in day["agents"]:
            totals[f"{item['agent']}_tokens"] = totals.get(f"{item['agent']}_tokens", 0) + item["totalTokens"]
            totals[f"{item['agent']}_cost"] = totals.get(f"{item['agent']}_cost", 0.0) + item["totalCost"]
    return totals


def agent_totals(env: dict) -> dict[str, float]:
    query = ("SELECT agent, sum(total_tokens) AS tokens, sum(total_cost) AS cost FROM ccusage_usage_daily FINAL "
             "GROUP BY agent")
    done = subprocess.run([sys.executable, str(ROOT / "ccusage_importer.py"), "--sql", query, "--format", "json"],
                          env=env, capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {f"{r['agent']}_{k}": r[k] for r in rows for k in ("tokens", "cost")}


def check_totals(expected: dict[str, float], got: dict[str, float], what: str) -> None:
    if not same_totals(expected, got):
        raise SystemExit(f"{what}: stored totals {got} differ from ccusage's {expected}")


def report(title: str, results: list[tuple[str, Measurement]], engine_mb: float) -> str:
    """One Markdown table; the importer's memory above the engine only for runs that opened the engine."""
    base = results[0][1].wall
    rows = [f"\n### {title}\n",
            "| scenario | wall s | CPU s | tree peak MB | importer peak MB | above engine MB | phases | ratio |",
            "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, m in results:
        split = phases(m.output)
        own = f"{m.own_peak_mb:.0f}" if m.own_peak_mb is not None else "–"
        above = f"{m.own_peak_mb - engine_mb:.0f}" if m.own_peak_mb is not None and "connect" in split else "–"
        steps = ", ".join(f"{k} {v:.2f}" for k, v in split.items()) or "–"
        rows.append(f"| {name} | {m.wall:.2f} | {m.cpu:.2f} | {m.tree_peak_mb:.0f} | {own} | {above} | {steps} | "
                    f"{m.wall / base:.3f} |")
    walls = {name.split(" ", 1)[0]: m.wall for name, m in results}
    pairs = (("(d)", "(d')", "one new hour as cron runs it against one `ccusage claude daily`"),
             ("(d2)", "(d')", "one new hour by hand against one `ccusage claude daily`"),
             ("(e)", "(e')", "both reading what the cleanup left"),
             ("(e2)", "(d2)", "one new hour by hand after the cleanup against before it"),
             ("(e3)", "(d3)", "filing six hours after the cleanup against before it"))
    rows += [f"\n{run} ÷ {peer}, {what}: {walls[run] / walls[peer]:.3f}" for run, peer, what in pairs
             if run in walls and peer in walls]
    if "(b)" in walls and "(b')" in walls:
        added = walls["(b)"] - walls["(b')"]
        rows.append(f"\n(b) − (b'), what a full import adds to the reports it runs: {added:.2f} s")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--days", type=int, default=90,
                        help="days the generated history spans (default 90); more days at the same lines per day "
                             "is a machine that keeps its transcripts longer (cleanupPeriodDays)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ccusage-import-bench")
    parser.add_argument("--agents-scale", type=int, default=20,
                        help="size of the every-agent machine (tests/agent_logs.py generate_machine scale; 0: skip)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TZ": "UTC", "HOME": str(args.workdir / "home")}
    env.pop("CH_HOST", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed importer's modules are compiled once, not at every run
    runner = ci.resolve_runner(ci.Config.from_env({**os.environ}))
    print(f"# ccusage-import benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}, ccusage {ci.DEFAULT_CCUSAGE_VERSION} via {runner.name}")
    engine_mb = engine_footprint(args.workdir, env)
    print(f"engine alone (clickhouse-connect over chDB, empty store, one insert): peak {engine_mb:.0f} MB")
    for lines in args.lines:
        load = os.getloadavg()[0]
        title = f"{lines:,} transcript lines" + (f" over {args.days} days" if args.days != 90 else "")
        print(report(title, bench(lines, args.days, args.workdir, env, runner), engine_mb), flush=True)
        print(f"\nload average (1 min, the machine's other work included): {load:.2f} at the start, "
              f"{os.getloadavg()[0]:.2f} at the end", flush=True)
    if args.agents_scale:
        results = bench_agents(args.workdir, env, runner, args.agents_scale)
        print(report(f"every agent (scale {args.agents_scale}), ratios to (f)", results, engine_mb), flush=True)


if __name__ == "__main__":
    main()
