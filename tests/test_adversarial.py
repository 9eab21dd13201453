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

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, run_admin, run_cli

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


