"""A demo store in one command: `uv run demo.py`.

Writes three weeks of realistic Claude Code, Codex CLI, Gemini CLI and OpenCode history for three machines (the
tests' generators, tests/transcripts.py and tests/agent_logs.py), imports each machine with ccusage_importer.py into
a store of its own, writes the dashboard, and prints the commands that query it. Your own store and your own agents'
logs are never read or touched: every import runs with the demo's HOME, agent folders and store.

    uv run demo.py                 # into $XDG_DATA_HOME/ccusage-import/demo (~/.local/share/…)
    uv run demo.py --folder DIR    # elsewhere; run again to make it anew
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))

from agent_logs import generate_machine, machine_env  # noqa: E402

IMPORTER = ROOT / "ccusage_importer.py"
MARKER = ".ccusage-import-demo"  # a folder holding it is the demo's own, and may be made anew
# name, days of history, how long ago its last activity ended, how busy it is (sessions per agent x)
MACHINES = (("laptop", 21, dt.timedelta(0), 2), ("desk", 14, dt.timedelta(hours=5), 1),
            ("build-box", 7, dt.timedelta(days=1), 1))
AGENTS = "claude,codex,gemini,opencode"


def default_folder(env: Mapping[str, str]) -> Path:
    data_home = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(data_home) / "ccusage-import" / "demo"


def prepare(folder: Path) -> None:
    """An empty demo folder: a previous demo's is removed, anything else is refused (it might be yours)."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise SystemExit(f"error: {folder} is not empty and is not a demo folder: choose another with --folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / MARKER).write_text("made by demo.py; `uv run demo.py` removes and remakes this folder\n")


def demo_env(folder: Path, machine: str, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of one machine's import: the demo's HOME, agent folders and store, and the user's PATH and
    npm cache (where ccusage is, so it is not downloaded again)."""
    home = folder / "home"
    home.mkdir(exist_ok=True)
    npm_cache = env.get("npm_config_cache") or str(Path(env.get("HOME", str(Path.home()))) / ".npm")
    kept = {name: value for name, value in env.items()
            if name in ("PATH", "LANG", "TERM", "CCUSAGE_VERSION") or name.lower().startswith("npm_config_")}
    return {**kept, "HOME": str(home), "npm_config_cache": npm_cache, "TZ": "UTC",
            "CCUSAGE_IMPORT_DB": str(folder / "chdb"), "MACHINE_NAME": machine, "CCUSAGE_AGENTS": AGENTS,
            **machine_env(folder / "machines" / machine)}


def run(argv: list[str], env: Mapping[str, str]) -> None:
    done = subprocess.run([sys.executable, str(IMPORTER), *argv], env=env)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=default_folder(os.environ),
                        help="where the demo's logs and store go (default: %(default)s)")
    folder = parser.parse_args(argv).folder.expanduser().resolve()
    prepare(folder)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    for seed, (machine, days, idle, scale) in enumerate(MACHINES, 1):
        print(f"demo: writing {days} days of coding-agent logs for {machine}", flush=True)
        generate_machine(folder / "machines" / machine, seed=seed, days=days, end=now - idle, scale=scale)
        run([], demo_env(folder, machine, os.environ))
    dashboard = folder / "ccusage-dashboard.html"
    run(["--dashboard", str(dashboard)], demo_env(folder, MACHINES[0][0], os.environ))
    prefix = f"CCUSAGE_IMPORT_DB={shlex.quote(str(folder / 'chdb'))} uv run ccusage_importer.py"
    print(f"\nThe demo store is ready. Open {dashboard} in a browser, or try:\n"
          f"  {prefix} --query agent_summary\n"
          f"  {prefix} --query machine_overview\n"
          f"  {prefix} --query project_timeline --param project=-home-bob-work-ml-pipeline\n"
          f"  {prefix} --query list\n"
          f"Remove it with: rm -r {shlex.quote(str(folder))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
