"""Shared test fixtures: the real pinned ccusage, an isolated environment per test, and ways to run the CLI.

An importer run (`run_cli`) is `main(argv, env)` in this process, its exit code and its output read at the file
descriptors as a parent reads a child's pipes: a new process per run costs about 1 s (Python and chDB starting).
It runs as a process where this process's chDB keeps another clock than the run's TZ (chDB's zone is fixed when it
first starts), or when a test asks (`process=True`); the cron, lock and concurrency tests start processes of their
own. Reads of a store (`sql`, `sql_many`) open it in this process too, as the CLI's `--sql` would
(tests/store_reader.py).

A test that needs the real ccusage (`ccusage_bin_dir`, and so `make_env`) runs end to end and is marked `slow`:
`uv run pytest -m "not slow"` runs the rest in seconds.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import store_reader  # noqa: E402
from browser import Browser, find_chromium  # noqa: E402

import ccusage_importer as ci  # noqa: E402
import claude_admin_importer as cai  # noqa: E402

IMPORTER = ROOT / "ccusage_importer.py"
ADMIN_IMPORTER = ROOT / "claude_admin_importer.py"
CCUSAGE_VERSION = ci.DEFAULT_CCUSAGE_VERSION
QUERIES = ci.parse_queries(ci.QUERIES_FILE.read_text(encoding="utf-8"))


# Fixtures that make a test end to end: the real ccusage, the Admin importer run as a process against the fake API
# (tests/test_admin_api.py `env`), a real clickhouse-server (tests/test_verify.py `server`), the ClickHouse server
# stand-in's process (tests/test_server.py `clickhouse`).
END_TO_END_FIXTURES = {"ccusage_bin_dir", "env", "server", "clickhouse"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`--numprocesses=auto`: two workers per core (at most 8), because a worker spends much of its time waiting for
    ccusage, a server or a timeout under test."""
    return min(2 * (os.cpu_count() or 1), 8)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An end-to-end test (see END_TO_END_FIXTURES) is marked slow: `-m "not slow"` keeps the fast ones."""
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, which .ci/run installs; the tests never install anything themselves."""
    binary = find_chromium()
    if not binary:
        unavailable("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    return binary


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium over its DevTools pipe (tests/browser.py), with a profile of its own."""
    with Browser(chromium, tmp_path / "profile") as running:
        yield running


def unavailable(reason: str):
    """Skip on a developer machine; fail in CI, where a missing tool is a broken install step."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port nothing listens on (once the probe that found it is closed): for a server a test starts, or
    for an address that must refuse."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float) -> None:
    """A server a test started, stopped: asked to end, killed if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def ccusage_bin_dir() -> Path:
    """A folder whose `ccusage` is the pinned release, installed once with npm into a cache outside the repo."""
    prefix = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ccusage-import-tests" / (
        f"ccusage-{CCUSAGE_VERSION}")
    bin_dir = prefix / "node_modules" / ".bin"
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / "install.lock").open("w") as lock:  # pytest-xdist's workers install it once between them
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (bin_dir / "ccusage").exists():
            npm = shutil.which("npm")
            if not npm:
                unavailable("npm is not installed: the tests need the real ccusage")
            try:
                npm_install(npm, prefix, f"ccusage@{CCUSAGE_VERSION}", os.environ)
            except NpmError as exc:
                unavailable(str(exc))
    return bin_dir


class NpmError(Exception):
    """npm could not install a package; the message says why in one line."""


NPM_FETCH = ("--fetch-timeout=30000", "--fetch-retries=1", "--fetch-retry-mintimeout=2000",
             "--fetch-retry-maxtimeout=5000")  # a registry that never answers fails within a minute, not five
NPM_INSTALL_TIMEOUT = 300


def npm_install(npm: str, prefix: Path, package: str, env: Mapping[str, str]) -> None:
    """`npm install --prefix PREFIX PACKAGE` with the user's npm configuration: with --prefix npm would read its
    global config from PREFIX/etc/npmrc instead of the real one (where a corporate registry, proxy or CA often is),
    so the real one is passed on. Gives up soon on a registry that does not answer, naming the registry and npm's
    reason (NpmError)."""
    def config(name: str) -> str:
        done = subprocess.run([npm, "config", "get", name], env=env, capture_output=True, text=True, timeout=60)
        return done.stdout.strip()

    globalconfig = config("globalconfig")
    command = [npm, "install", "--globalconfig", globalconfig, "--prefix", str(prefix), "--no-save", "--no-audit",
               "--no-fund", *NPM_FETCH, package]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NpmError(f"npm install {package} took more than {NPM_INSTALL_TIMEOUT} s (registry "
                       f"{config('registry')}, npm configuration {globalconfig} and ~/.npmrc)") from None
    if done.returncode != 0:
        lines = [line.removeprefix("npm error").strip() for line in done.stderr.splitlines()]
        reasons = [line for line in lines if "reason:" in line] or [
            line for line in lines if line and not line.startswith("at ")][-1:]
        raise NpmError(f"npm install {package} failed (registry {config('registry')}, npm configuration "
                       f"{globalconfig} and ~/.npmrc): {reasons[0] if reasons else 'no reason given'}")


def hourly_import(env: dict, folder: Path, *, installed: bool = True, last_start: dt.datetime | None = None,
                  exit_code: int = 0) -> dict:
    """`env` with a stand-in `crontab` first on PATH that lists setup_cronjob.sh's import line (or, not `installed`,
    has no crontab), the env file that line names with its CCUSAGE_CRON_LOG_DIR, and an import.log whose last run
    started at `last_start` and exited `exit_code` (no log without `last_start`). --check reads these; the invoking
    user's crontab and logs must never decide a test."""
    folder.mkdir()
    env_file, logs = folder / "env", folder / "logs"
    env_file.write_text(f"export CCUSAGE_CRON_LOG_DIR='{logs}'\n")
    line = f"7 * * * * /bin/bash '/repo/setup_cronjob.sh' cron-run import '{env_file}' {ci.CRON_MARKER}"
    listing = f"echo \"{line}\"" if installed else "echo 'no crontab for tester' >&2; exit 1"
    (folder / "crontab").write_text(f"#!/bin/sh\n{listing}\n")
    (folder / "crontab").chmod(0o755)
    if last_start:
        logs.mkdir()
        stamp = f"{last_start.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        (logs / "import.log").write_text(f"=== {stamp} import started\nStatus: ok\n"
                                         f"=== {stamp} import exit {exit_code}\n")
    return {**env, "PATH": f"{folder}{os.pathsep}{env['PATH']}"}


CRON_LOCK = Path(tempfile.gettempdir()) / "ccusage-import-tests-cron.lock"  # one lock for every pytest worker


@contextmanager
def cron_lock(kind: int) -> Iterator[None]:
    """Shared while a test's stand-in cron runs, exclusive while a test needs none to run: the process list is the
    whole machine's, so tests of other workers must not show each other a cron daemon."""
    with CRON_LOCK.open("a") as handle:
        fcntl.flock(handle, kind)
        yield


@pytest.fixture
def cron_daemon(tmp_path: Path) -> Iterator[None]:
    """A process named `cron` while the test runs, which is what --check looks for to know a cron daemon runs (a
    test never starts the real daemon: it would run every user's crontab)."""
    binary = tmp_path / "cron-daemon" / "cron"
    binary.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    with cron_lock(fcntl.LOCK_SH), subprocess.Popen([str(binary), "600"]) as daemon:
        try:
            yield
        finally:
            daemon.kill()


@pytest.fixture
def no_cron_daemon() -> Iterator[None]:
    """No cron daemon runs on this machine while the test does (it skips where a real one runs)."""
    with cron_lock(fcntl.LOCK_EX):
        if ci.cron_daemon_running() is not False:
            pytest.skip("a cron daemon runs on this machine (or none can be seen: no /proc)")
        yield


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


def run_script(script: Path, main: Callable[[list[str], dict[str, str]], int], env: dict, *args: str,
               timeout: float = 300, process: bool = False) -> subprocess.CompletedProcess:
    """A run of `script ARGS` with the environment `env`: its exit code and output.

    In this process (`main(argv, env)`, output read at the file descriptors) where that gives what a process would,
    which saves starting Python and chDB (about 0.6 s of CPU a run); in a process with `process=True`, and where
    this process's chDB keeps another clock than env's TZ. `timeout` bounds a process only."""
    if not process and engine_keeps_the_clock_of(env):
        return run_here(main, env, *args)
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_cli(env: dict, *args: str, timeout: float = 300, process: bool = False) -> subprocess.CompletedProcess:
    """`ccusage_importer.py ARGS` (see run_script)."""
    return run_script(IMPORTER, ci.main, env, *args, timeout=timeout, process=process)


def run_admin(env: dict, *args: str, timeout: float = 300, process: bool = False) -> subprocess.CompletedProcess:
    """`claude_admin_importer.py ARGS` (see run_script)."""
    return run_script(ADMIN_IMPORTER, cai.main, env, *args, timeout=timeout, process=process)


def run_here(main: Callable[[list[str], dict[str, str]], int], env: dict[str, str], *args: str
             ) -> subprocess.CompletedProcess:
    """A script's main(argv, env) in this process, as a process would end: its exit code and its output."""
    with captured_output() as output:
        try:
            code = main(list(args), env)
        except SystemExit as exc:  # argparse's exit, which a process turns into its exit code
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["main", *args], code, output["stdout"], output["stderr"])


@contextmanager
def captured_output() -> Iterator[dict[str, str]]:
    """What this process writes to its stdout and stderr meanwhile, at the file descriptors 1 and 2 and through
    sys.stdout and sys.stderr, as UTF-8 text once the block ends (within pytest's own capture, which it leaves)."""
    output: dict[str, str] = {}
    sys.stdout.flush()
    sys.stderr.flush()
    streams = sys.stdout, sys.stderr
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdout, sys.stderr = (io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                                       write_through=True) for fd in (1, 2))
            yield output
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for name, file in (("stdout", out), ("stderr", err)):
                file.seek(0)
                output[name] = file.read().decode("utf-8")


def sql(env: dict, query: str, apart: bool = False) -> list[dict]:
    """Rows of a query against the store of `env`, as the CLI's `--sql QUERY --format json` prints them."""
    return sql_many(env, {"rows": query}, apart)["rows"]


ENGINE_ZONE: list[str] = []  # the time zone of chDB in this process, fixed when it first starts: learnt then


def engine_keeps_the_clock_of(env: Mapping[str, str]) -> bool:
    """Whether chDB in this process keeps the clock of env's TZ, as a new process with env would (for today() and
    times as text). Its zone is fixed when it first starts here: the first call starts it on a scratch store."""
    if not ENGINE_ZONE:
        with tempfile.TemporaryDirectory() as folder, store_reader.opened(
                {"CCUSAGE_IMPORT_DB": str(Path(folder) / "chdb"), "HOME": folder}) as store:
            ENGINE_ZONE.append(store.query("SELECT timezone()")[1][0][0])
    zone = env.get("TZ", "")
    return bool(zone) and same_clock(zone, ENGINE_ZONE[0])


def sql_many(env: dict, queries: Mapping[str, store_reader.Query], apart: bool = False) -> dict[str, list[dict]]:
    """The rows of many queries (SQL, or SQL and its parameters) in one opening of the store of `env`, in order.

    Read in this process when that gives what the CLI would (a server store, or an embedded one where
    `engine_keeps_the_clock_of(env)`), else by tests/store_reader.py in a process with env. Each opening here leaves
    chDB's threads of that engine start behind (about 10, 3 MB) and some 20 file descriptors: fine for a test
    session, not for thousands of stores (`apart`: always in a process of its own).
    """
    if not apart and (not ci.Config.from_env(env).embedded or engine_keeps_the_clock_of(env)):
        return store_reader.read(env, queries)
    asked = {name: [query, {}] if isinstance(query, str) else [query[0], dict(query[1])]
             for name, query in queries.items()}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "store_reader.py")], input=json.dumps(asked), env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def canonical_models(env: dict) -> dict[str, str]:
    """Each raw model name of the store and the name the named queries group it under (ccusage_v_model_days)."""
    rows = sql(env, "SELECT DISTINCT model_name, model FROM ccusage_v_model_days")
    return {row["model_name"]: row["model"] for row in rows}


def named_query(name: str, params: Mapping[str, object]) -> tuple[str, dict[str, Any]]:
    """A named query's SQL and parameters, as `--query NAME --param KEY=VALUE ...` makes them (for `sql_many`)."""
    query = ci.find_query(QUERIES, name)
    return query.sql, ci.query_parameters(query, [f"{key}={value}" for key, value in params.items()])


@functools.cache
def same_clock(zone: str, other: str) -> bool:
    """Whether two zone names give the same local time every day of 2000-2040 (UTC and Etc/UTC do)."""
    try:
        first, second = zoneinfo.ZoneInfo(zone), zoneinfo.ZoneInfo(other)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return zone == other
    noon = dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)
    days = (noon + dt.timedelta(days=n) for n in range(41 * 366))
    return all(day.astimezone(first).utcoffset() == day.astimezone(second).utcoffset() for day in days)


def run_ccusage(bin_dir: Path, claude_dir: Path, *args: str) -> dict:
    """The pinned ccusage's own JSON for a report, the ground truth for costs."""
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "CLAUDE_CONFIG_DIR": str(claude_dir),
           "HOME": str(claude_dir), "TZ": "UTC"}
    done = subprocess.run([str(bin_dir / "ccusage"), "claude", *args, "--json", "--offline"], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)
