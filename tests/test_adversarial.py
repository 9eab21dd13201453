"""What a third adversarial run found (issue 25): nothing lost, nothing leaked, no traceback.

The dashboard file is written through a symbolic link or refused, never renamed over a device or a FIFO; `--sql`
streams and the embedded store's lock is held for CH_TIMEOUT at most; the system databases, absurd numbers and a
machine name with control characters are refused in one line; files are private whatever the umask; a read-only
store, a crashed Node.js ccusage, impossible dates, several statements and a repeated parameter each get one clear
line. (The Admin API paging forever is in tests/test_admin_api.py, beside the fake API it needs.)

Real chDB and the real pinned ccusage where an import is needed; a read-only store is a read-only bind mount in a
mount namespace of its own when the tests run as root (root ignores file modes), else a folder without write
permission.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IMPORTER, ROOT, cli_env, run_admin, run_cli
from test_hardening import stand_in_ccusage
from transcripts import generate

import ccusage_importer as ci


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A run without Claude data and without ccusage: enough for refusals, queries and the dashboard."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return cli_env(tmp_path, tmp_path / "home", tmp_path / "store" / "chdb", None, "laptop", **extra)


def one_error_line(done: subprocess.CompletedProcess, code: int) -> str:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stderr


# -- 1. --dashboard FILE ----------------------------------------------------------------------------------------


def test_the_dashboard_is_written_through_a_symlink_and_never_over_a_fifo_or_a_device(tmp_path):
    env = bare_env(tmp_path)
    target = tmp_path / "target.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    assert run_cli(env, "--dashboard", str(link)).returncode == 0
    assert link.is_symlink() and "<html" in target.read_text().lower()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "new.html")
    assert run_cli(env, "--dashboard", str(dangling)).returncode == 0
    assert dangling.is_symlink() and (tmp_path / "new.html").is_file()

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused = [fifo, tmp_path]
    if os.geteuid() == 0:  # a device node of our own: as root, the old code renamed a file over /dev/full
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        refused.append(tmp_path / "null")
    for path in refused:
        line = one_error_line(run_cli(env, "--dashboard", str(path)), 2)
        assert f"{path} is not a regular file" in line
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    if os.geteuid() == 0:
        assert stat.S_ISCHR((tmp_path / "null").stat().st_mode)
    assert not list(tmp_path.glob(".*.tmp"))


# -- 3. --sql streams ---------------------------------------------------------------------------------------------


def test_a_table_reads_only_its_first_rows_before_it_prints():
    taken = itertools.count()
    rows = ((next(taken), "x" * 3) for _ in range(10_000))
    lines = ci.format_lines(["n", "s"], rows, "table")
    assert [next(lines) for _ in range(3)] == ["n    s", "---  ---", "  0  xxx"]
    assert next(taken) == ci.TABLE_SAMPLE_ROWS  # the rows it read before its first line: the sample
    assert list(lines)[-1] == "(10000 rows)"


def limit_memory() -> None:
    """The child may not pass 3 GB of data (the old code held an endless result until the machine ran out)."""
    resource.setrlimit(resource.RLIMIT_DATA, (3 << 30, 3 << 30))


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_an_endless_query_streams_and_the_store_is_released_after_ch_timeout(fmt, tmp_path):
    env = bare_env(tmp_path, CH_TIMEOUT="3")
    assert run_cli(env, "--sql", "SELECT 1").returncode == 0  # the store exists
    done = subprocess.run([sys.executable, str(IMPORTER), "--sql", "SELECT number FROM system.numbers", "--format",
                           fmt], env=env, capture_output=True, text=True, timeout=120, preexec_fn=limit_memory)
    line = one_error_line(done, 1)
    assert "the query ran past CH_TIMEOUT (3 s)" in line
    lines = done.stdout.splitlines()
    assert len(lines) > 10_000 and lines[:2] == {
        "csv": ["number", "0"], "json": ['{"number": 0}', '{"number": 1}'], "table": ["number", "------"]}[fmt]
    assert run_cli({**env, "CCUSAGE_LOCK_TIMEOUT": "0"}, "--sql", "SELECT 1").returncode == 0  # the lock is free


# -- 4, 5, 6. settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["system", "INFORMATION_SCHEMA", "information_schema", "System"])
def test_the_system_databases_are_refused(name, tmp_path):
    line = one_error_line(run_cli(bare_env(tmp_path, CH_DATABASE=name)), 2)
    assert f"CH_DATABASE={name!r} is one of ClickHouse's own databases" in line
    assert not (tmp_path / "store").exists()


NUMBERS = [("CCUSAGE_TIMEOUT", "9999999999"), ("CCUSAGE_TIMEOUT", "1e300"), ("CCUSAGE_TIMEOUT", str(2**64)),
           ("CH_TIMEOUT", "1e10"), ("CH_CONNECT_TIMEOUT", "1e10"), ("CCUSAGE_RETRY_BACKOFF", "1e10"),
           ("CCUSAGE_RETRIES", "2000"), ("CCUSAGE_RETRIES", "99999999999"), ("CCUSAGE_RETRIES", "1.5"),
           ("CCUSAGE_LOCK_TIMEOUT", "nan"), ("CCUSAGE_BUDGET_DAILY_USD", "1e12"), ("CH_PORT", "70000"),
           ("ANTHROPIC_TIMEOUT", "1e10"), ("ANTHROPIC_MAX_RETRIES", "1e18"), ("ANTHROPIC_RETRY_BACKOFF", "-1"),
           ("ANTHROPIC_PAGE_LIMIT", "5000"), ("ANTHROPIC_TIMEOUT", "0")]


@pytest.mark.parametrize(("name", "value"), NUMBERS)
def test_a_number_out_of_its_range_is_one_line_naming_the_range(name, value, tmp_path):
    env = bare_env(tmp_path, **{name: value}, ANTHROPIC_ADMIN_KEY="sk-ant-admin01-test",
                   ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    setting = ci.NUMBER_SETTINGS[name]
    run = run_admin if name.startswith("ANTHROPIC_") else run_cli
    line = one_error_line(run(env, "--since", "2025-08-01") if run is run_admin else run(env), 2)
    assert line == f"error: {name}={value!r} must be {setting.describe()}\n"
    assert f"from {setting.low:g} to {setting.high} " in line


@pytest.mark.parametrize("value", ["inf", "1e10", "-1"])
def test_the_lock_timeout_flag_has_the_range_of_its_variable(value, tmp_path):
    line = one_error_line(run_cli(bare_env(tmp_path), "--lock-timeout", value, "--sql", "SELECT 1"), 2)
    assert line.startswith(f"error: --lock-timeout={value!r} must be a number from 0 to 86400 (seconds)")


def test_every_numeric_setting_is_documented_with_its_range():
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "admin-api.md").read_text()
    for name, setting in ci.NUMBER_SETTINGS.items():
        rows = [line for line in docs.splitlines() if line.startswith("|") and f"`{name}`" in line.split("|")[1]]
        assert rows, f"{name} has no row in README.md or docs/admin-api.md"
        assert any(f"{setting.low:g}–{setting.high}" in row for row in rows), f"{name}: range not in {rows}"


@pytest.mark.parametrize(("args", "extra", "said"), [
    ((), {"MACHINE_NAME": "lap\ntop"}, "control character"),
    ((), {"MACHINE_NAME": "\x1b[31mred\x1b[0m"}, "control character"),
    ((), {"MACHINE_NAME": "x" * 10_000}, "10,000 characters long: at most 128"),
    (("--machine-name", "a\tb"), {}, "(from --machine-name) holds a control character"),
])
def test_a_machine_name_with_control_characters_or_absurd_length_is_refused(args, extra, said, tmp_path):
    line = one_error_line(run_cli(bare_env(tmp_path, **extra), *args), 2)
    assert said in line and "\x1b" not in line and "xxxxxxxx" not in line
    assert not (tmp_path / "store").exists()


# -- 7. private files ---------------------------------------------------------------------------------------------


def test_state_names_pending_runs_store_and_dashboard_are_private_whatever_the_umask(tmp_path, make_env):
    generate(tmp_path / "claude", seed=71, days=2, sessions=2)
    env = make_env(tmp_path / "claude", db=tmp_path / "data" / "store" / "chdb")
    previous = os.umask(0)
    try:
        assert run_cli(env, process=True).returncode == 0
        assert run_cli(env, process=True).returncode == 0  # nothing changed: a pending run
        store = Path(env["CCUSAGE_IMPORT_DB"])
        pending = stat.S_IMODE((store / "ccusage-import-pending-runs.jsonl").stat().st_mode)
        assert run_cli(env, "--dashboard", str(tmp_path / "dash.html"), process=True).returncode == 0
    finally:
        os.umask(previous)
    assert pending == 0o600
    files = [store / "ccusage-import-state.json", store / "ccusage-import-names.json", tmp_path / "dash.html",
             store.with_name("chdb.lock")]
    folders = [store, store.parent, store.parent.parent]
    modes = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in files + folders}
    assert modes == {**{str(f): "0o600" for f in files}, **{str(f): "0o700" for f in folders}}


def test_a_pending_run_is_private_and_an_old_store_folder_is_tightened(tmp_path):
    env = bare_env(tmp_path)
    state = ci.LocalState(tmp_path)
    previous = os.umask(0)
    try:
        state.add_pending_run({"run_id": "x"})
        store = Path(env["CCUSAGE_IMPORT_DB"])
        store.mkdir(parents=True, mode=0o755)
        assert run_cli(env, "--sql", "SELECT 1").returncode == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(state.pending_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.stat().st_mode) == 0o700


# -- 8. messages --------------------------------------------------------------------------------------------------


def run_on_read_only_store(env: dict[str, str], *args: str, folder: str = "") -> subprocess.CompletedProcess:
    """The importer as a process whose store folder (or `folder`) is read-only: a read-only bind mount in a mount
    namespace of its own as root, else the folder's write permission taken away (and given back)."""
    store = folder or env["CCUSAGE_IMPORT_DB"]
    command = [sys.executable, str(IMPORTER), *args]
    if os.geteuid() != 0:
        os.chmod(store, 0o500)
        try:
            return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        finally:
            os.chmod(store, 0o700)
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "-m", "true"], capture_output=True) if unshare else None
    if not probe or probe.returncode:
        pytest.skip("root without a mount namespace of its own: no way to make the store read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    return subprocess.run([unshare, "-m", "sh", "-c", script, store, *command], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_read_only_store_is_one_line_that_names_the_file_problem(tmp_path, make_env):
    generate(tmp_path / "claude", seed=72, days=2, sessions=2)
    env = make_env(tmp_path / "claude")
    assert run_cli(env).returncode == 0
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    line = one_error_line(run_on_read_only_store(env, "--sql", "SELECT 1"), 1)
    assert "the store's folder is not writable" in line and reason in line and "Code:" not in line
    line = one_error_line(run_on_read_only_store(env), 1)  # nothing changed: only a pending run to write
    assert line == f"error: cannot use {env['CCUSAGE_IMPORT_DB']}/ccusage-import-pending-runs.jsonl: {reason}\n"


NODE_CRASH = """\
file:///home/me/.npm/_npx/1/node_modules/ccusage/dist/index.js:4821
        throw new Error(`No valid Claude data directories found`);
              ^

Error: No valid Claude data directories found
    at getClaudePaths (file:///home/me/.npm/_npx/1/node_modules/ccusage/dist/index.js:4821:15)
    at async main (file:///home/me/.npm/_npx/1/node_modules/ccusage/dist/index.js:9001:3)

Node.js v20.20.2
"""


CRASHING_CCUSAGE = """\
#!/bin/sh
# The pinned ccusage for --version (so the importer runs it), a Node.js crash for every report.
case "$*" in *--version*) exec "$(cat "$(dirname "$0")/real")" "$@" ;; esac
cat "$(dirname "$0")/crash" >&2
exit 1
"""


def test_a_node_crash_of_an_old_ccusage_says_what_it_means(tmp_path, make_env, ccusage_bin_dir):
    generate(tmp_path / "claude", seed=73, days=1, sessions=1)
    fake = stand_in_ccusage(tmp_path / "fake-bin", ccusage_bin_dir / "ccusage", CRASHING_CCUSAGE)
    (fake / "crash").write_text(NODE_CRASH)
    env = make_env(tmp_path / "claude", CCUSAGE_RETRIES="0")
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    done = run_cli(env)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "exited 1: Error: No valid Claude data directories found (ccusage stopped on an uncaught JavaScript error " \
           "under Node.js v20.20.2; pin the tested release with CCUSAGE_VERSION=20.0.24)" in done.stdout
    assert "exited 1: Node.js v20.20.2" not in done.stdout
    assert ci.failure_line("Node.js v22.1.0").startswith("no error message (ccusage stopped on an uncaught")
    assert ci.failure_line("warming up\nsomething else failed") == "something else failed"


@pytest.mark.parametrize("day", ["0001-01-01", "1969-12-31", "2149-06-07"])
def test_admin_dates_the_tables_cannot_hold_are_refused(day, tmp_path):
    env = bare_env(tmp_path, ANTHROPIC_ADMIN_KEY="sk-ant-admin01-test", ANTHROPIC_BASE_URL="http://127.0.0.1:9")
    done = run_admin(env, "--since", day)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{day} is outside 1970-01-01…2149-06-06, the days a Date column holds" in done.stderr


def test_sql_runs_one_statement_and_a_parameter_is_given_once(tmp_path):
    env = bare_env(tmp_path)
    line = one_error_line(run_cli(env, "--sql", "SELECT 1; SELECT 2"), 2)
    assert "--sql runs one statement; this text holds 2" in line
    done = run_cli(env, "--sql", "SELECT ';' AS s; -- a comment; with ;", "--format", "csv")
    assert (done.returncode, done.stdout) == (0, "s\n;\n")
    line = one_error_line(run_cli(env, "--query", "daily_cost_30d", "--param", "days=7", "--param", "days=8"), 2)
    assert "--param days is given twice" in line
