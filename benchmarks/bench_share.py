"""Benchmark: what a share (CCUSAGE_SHARE, issue 21) costs, on a generated history.

  (1) a full import of LINES lines into a fresh store that publishes to a share folder;
  (2) two hourly imports of one new hour each: their `share` phase (publish, then load the others) and wall time;
  (3) the size of the machine's published files, per table;
  (4) a share of MACHINES machines (the first machine's files copied under other names by the engine, so each holds
      the same rows): a reader's first --query machine_overview (loading every machine) and a second one (nothing
      new to load), and a --sql over every machine's hours.
Each process's wall time is measured from outside; the load average is printed before and after.

    uv run python benchmarks/bench_share.py --lines 100000 --machines 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from transcripts import append_activity, generate  # noqa: E402

import ccusage_importer as ci  # noqa: E402

KEY = "benchmark-share-key"


def run(env: dict[str, str], *args: str) -> tuple[float, str]:
    clock = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "ccusage_importer.py"), *args], env=env, capture_output=True,
                          text=True, timeout=3600)
    seconds = time.monotonic() - clock
    if done.returncode != 0:
        raise SystemExit(f"{args or 'import'} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout


def phases(output: str) -> str:
    match = re.search(r"Status: \w+ \(([^)]*)\)", output)
    return match.group(1) if match else "?"


def copy_machine(share: Path, source: str, target: str) -> None:
    """`source`'s published files as machine `target`'s: machine_name rewritten by the engine, a manifest of its own."""
    import clickhouse_connect
    manifest = json.loads((share / ci.machine_folder(source) / "manifest.json").read_text())
    folder = share / ci.machine_folder(target)
    folder.mkdir()
    client = clickhouse_connect.get_client(dsn=f"chdb://{share.parent / 'copier'}")
    for table, entry in manifest["tables"].items():
        if not entry["file"]:
            continue
        structure = ci.table_structure(table)
        client.command(
            "INSERT INTO FUNCTION file({target:String}, 'Parquet', {structure:String}) SELECT * REPLACE "
            "({machine:String} AS machine_name) FROM file({source:String}, 'Parquet', {structure:String})",
            parameters={"target": str(folder / entry["file"]), "source": str(share / ci.machine_folder(source) /
                        entry["file"]), "structure": structure, "machine": target})
        entry["bytes"] = (folder / entry["file"]).stat().st_size
    client.close()
    (folder / "manifest.json").write_text(json.dumps({**manifest, "machine": target, "generation": target}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ccusage-import-bench-share")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    share = args.workdir / "share"
    share.mkdir(parents=True)
    print(f"load average before: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    claude = args.workdir / "claude"
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    generate(claude, seed=2026, days=90, lines_total=args.lines, lines_per_session=max(40, args.lines // 4000),
             end=end)
    bin_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ccusage-import-tests" / (
        f"ccusage-{ci.DEFAULT_CCUSAGE_VERSION}") / "node_modules" / ".bin"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(args.workdir), "TZ": "UTC",
           "CLAUDE_CONFIG_DIR": str(claude), "CCUSAGE_IMPORT_DB": str(args.workdir / "store"),
           "MACHINE_NAME": "machine-01", "CCUSAGE_HASH_KEY": KEY, "CCUSAGE_SHARE": str(share)}
    seconds, output = run(env)
    print(f"(1) full import of {args.lines:,} lines: {seconds:.2f} s ({phases(output)})")
    for hour in (1, 2):
        append_activity(claude, start=end + timedelta(hours=hour - 1), minutes=60, lines=300, seed=hour)
        seconds, output = run(env)
        print(f"(2) one new hour #{hour}: {seconds:.2f} s ({phases(output)})")
    manifest = json.loads((share / ci.machine_folder("machine-01") / "manifest.json").read_text())
    total = sum(entry["bytes"] for entry in manifest["tables"].values())
    print(f"(3) published: {total / 1e6:.2f} MB in {sum(1 for e in manifest['tables'].values() if e['file'])} "
          "files: " + ", ".join(f"{t.removeprefix('ccusage_')} {e['rows']:,} rows {e['bytes'] / 1e3:.0f} kB"
                                for t, e in manifest["tables"].items() if e["file"]))
    for number in range(2, args.machines + 1):
        copy_machine(share, "machine-01", f"machine-{number:02d}")
    reader = {**env, "MACHINE_NAME": "reader", "CCUSAGE_IMPORT_DB": str(args.workdir / "reader-store"),
              "CLAUDE_CONFIG_DIR": str(args.workdir / "no-claude")}
    for label in ("first (loads every machine)", "second (nothing new to load)"):
        seconds, output = run(reader, "--query", "machine_overview", "--format", "csv")
        print(f"(4) --query machine_overview over {len(output.splitlines()) - 1} machines, {label}: {seconds:.2f} s")
    seconds, output = run(reader, "--sql", "SELECT machine_name, sum(total_cost) FROM ccusage_usage_hourly FINAL "
                          "GROUP BY machine_name", "--format", "csv")
    print(f"(4) --sql of every machine's hours: {seconds:.2f} s")
    seconds, _ = run(reader, "--sql", "SELECT 1")
    print(f"    (a --sql SELECT 1 on that store, for comparison: {seconds:.2f} s)")
    print(f"load average after: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")


if __name__ == "__main__":
    main()
