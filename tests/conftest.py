"""Shared test fixtures: the real pinned ccusage, an isolated environment per test, and ways to run the CLI.

Every importer run happens in a subprocess, as a user or cron would start it: chDB allows one store per process,
and a subprocess also proves exit codes and output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ccusage_importer as ci  # noqa: E402

IMPORTER = ROOT / "ccusage_importer.py"
CCUSAGE_VERSION = ci.DEFAULT_CCUSAGE_VERSION


def unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where a missing tool is a broken install step."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ccusage_bin_dir() -> Path:
    """A folder whose `ccusage` is the pinned release, installed once with npm into a cache outside the repo."""
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ccusage-import-tests" / (
        f"ccusage-{CCUSAGE_VERSION}")
    bin_dir = prefix / "node_modules" / ".bin"
    if not (bin_dir / "ccusage").exists():
        npm = shutil.which("npm")
        if not npm:
            unavailable("npm is not installed: the tests need the real ccusage")
        done = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit", "--no-fund",
                               f"ccusage@{CCUSAGE_VERSION}"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            unavailable(f"npm install ccusage@{CCUSAGE_VERSION} failed: {done.stderr[-500:]}")
    return bin_dir


def cli_env(bin_dir: Path, home: Path, db: Path, claude_dir: Path | None, machine: str, **extra: str) -> dict:
    """The environment of one importer run: the pinned ccusage first on PATH, its own HOME, store and machine."""
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "CCUSAGE_IMPORT_DB": str(db),
        "MACHINE_NAME": machine,
        "TZ": "UTC",
        "LANG": "C.UTF-8",
    }
    if claude_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = str(claude_dir)
    env.update(extra)
    return env


@pytest.fixture
def make_env(tmp_path: Path, ccusage_bin_dir: Path):
    """Build the environment of one importer run: its own HOME, store, Claude data and machine name."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def build(claude_dir: Path | None, machine: str = "laptop", db: Path | None = None, **extra: str) -> dict:
        return cli_env(ccusage_bin_dir, home, db or tmp_path / "store" / "chdb", claude_dir, machine, **extra)

    return build


def run_cli(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(IMPORTER), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def sql(env: dict, query: str) -> list[dict]:
    """Rows of a query against the store of `env`, through the CLI's --sql."""
    done = run_cli(env, "--sql", query, "--format", "json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def run_ccusage(bin_dir: Path, claude_dir: Path, *args: str) -> dict:
    """The pinned ccusage's own JSON for a report, the ground truth for costs."""
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "CLAUDE_CONFIG_DIR": str(claude_dir),
           "HOME": str(claude_dir), "TZ": "UTC"}
    done = subprocess.run([str(bin_dir / "ccusage"), "claude", *args, "--json", "--offline"], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)
