"""setup_cronjob.sh against the real `crontab` program (Debian's cron package), with a throwaway HOME.

`crontab` edits the crontab of the user running the tests, so every test saves it first and restores it after,
under a file lock (two test runs on one machine never interleave their edits).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, sql, unavailable
from transcripts import generate

SETUP = ROOT / "setup_cronjob.sh"
MARKER = "# ccusage-import:"
SECRET = "Cr0n-pw 'q' \"dq\" $HOME \\ `x` %%"
FOREIGN = "3 4 * * * /bin/true  # someone else's job"


def crontab_program() -> str:
    """The crontab binary; installed with apt where we are root and apt exists (as CI does)."""
    found = shutil.which("crontab")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "cron"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
        found = shutil.which("crontab")
    if not found:
        unavailable("crontab is not installed (Debian/Ubuntu: apt-get install cron; macOS has it)")
    return found


def read_crontab() -> str | None:
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def write_crontab(text: str | None) -> None:
    if text is None:
        subprocess.run(["crontab", "-r"], capture_output=True)
    else:
        subprocess.run(["crontab", "-"], input=text, text=True, check=True)


@pytest.fixture
def user_crontab(tmp_path: Path) -> Iterator[None]:
    """The real crontab of this user, saved and restored; starts with one foreign line that must survive."""
    crontab_program()
    with open(Path(os.environ.get("TMPDIR", "/tmp")) / "ccusage-import-tests-crontab.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = read_crontab()
        write_crontab(FOREIGN + "\n")
        try:
            yield
        finally:
            write_crontab(saved)


@pytest.fixture
def cron_env(tmp_path: Path, make_env) -> dict:
    claude = tmp_path / "claude"
    generate(claude, seed=21, days=3, sessions=4)
    return make_env(claude, "cronbox", CH_PASSWORD=SECRET, CCUSAGE_LOG_MAX_BYTES="300")


def setup(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=120)
    assert SECRET not in done.stdout + done.stderr
    return done


def our_lines() -> list[str]:
    return [line for line in (read_crontab() or "").splitlines() if MARKER in line]


def env_file(env: dict) -> Path:
    return Path(env["HOME"]) / ".config" / "ccusage-import" / "env"


def log_dir(env: dict) -> Path:
    return Path(env["HOME"]) / ".local" / "state" / "ccusage-import"


def test_install_twice_leaves_one_secret_free_entry_and_a_private_env_file(user_crontab, cron_env):
    for _ in range(2):
        done = setup(cron_env, "--minute", "17")
        assert done.returncode == 0, done.stderr
    crontab = read_crontab()
    assert SECRET not in crontab and "Cr0n-pw" not in crontab
    bash = shutil.which("bash", path=cron_env["PATH"])  # the bash that ran the setup, by absolute path
    assert our_lines() == [
        f"17 * * * * {bash} '{SETUP}' cron-run import '{env_file(cron_env)}' # ccusage-import:import"]
    assert crontab.splitlines()[0] == FOREIGN
    assert len(crontab.splitlines()) == 2

    path = env_file(cron_env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert "Cr0n-pw" in path.read_text()
    # The value survives quoting exactly, read back by the plain sh that cron uses.
    shown = subprocess.run(["sh", "-c", f". '{path}' && printf '%s' \"$CH_PASSWORD\""], env={},
                           capture_output=True, text=True, check=True).stdout
    assert shown == SECRET
    sourced = subprocess.run(["sh", "-c", f". '{path}' && env"], env={}, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    for name in ("MACHINE_NAME", "CLAUDE_CONFIG_DIR", "CCUSAGE_IMPORT_DB", "PATH", "CCUSAGE_LOG_MAX_BYTES"):
        assert f"{name}={cron_env[name]}" in sourced
    assert f"CCUSAGE_CRON_LOG_DIR={log_dir(cron_env)}" in sourced

    done = setup(cron_env, "--minute", "5")  # a new minute replaces the entry, still one
    assert [line.split()[0] for line in our_lines()] == ["5"]


def test_dry_run_changes_nothing(user_crontab, cron_env):
    done = setup(cron_env, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert read_crontab() == FOREIGN + "\n"
    assert not env_file(cron_env).exists()
    assert "(dry run: nothing changed)" in done.stdout
    assert "CH_PASSWORD" in done.stdout  # the names it would write, never the values

    assert setup(cron_env, "--minute", "9").returncode == 0
    before = (read_crontab(), env_file(cron_env).read_bytes())
    for args in (("--dry-run", "--minute", "40"), ("--remove", "--dry-run")):
        done = setup({**cron_env, "CH_PASSWORD": "other"}, *args)
        assert done.returncode == 0 and "(dry run: nothing changed)" in done.stdout
        assert (read_crontab(), env_file(cron_env).read_bytes()) == before


def test_remove_takes_out_the_entry_and_the_env_file(user_crontab, cron_env):
    assert setup(cron_env).returncode == 0
    assert len(our_lines()) == 1
    minute = int(our_lines()[0].split()[0])
    assert 0 <= minute <= 59
    done = setup(cron_env, "--remove")
    assert done.returncode == 0, done.stderr
    assert our_lines() == []
    assert read_crontab() == FOREIGN + "\n"
    assert not env_file(cron_env).exists()


def test_bad_options_are_refused(user_crontab, cron_env):
    for args, message in ((("--minute", "60"), "--minute must be 0-59, not 60"),
                          (("--minute", "x"), "--minute must be 0-59, not x"),
                          (("--hourly",), "unknown option --hourly")):
        done = setup(cron_env, *args)
        assert done.returncode == 2 and message in done.stderr
    assert read_crontab() == FOREIGN + "\n"


def test_the_cron_command_imports_under_crons_minimal_environment(user_crontab, cron_env, tmp_path):
    assert setup(cron_env).returncode == 0
    line = our_lines()[0]
    command = line.split(maxsplit=5)[5]
    logs = log_dir(cron_env)
    logs.mkdir(parents=True)
    for suffix, text in (("", "old0\n" * 80), (".1", "old1\n"), (".2", "old2\n"), (".3", "old3\n")):
        (logs / f"import.log{suffix}").write_text(text)

    cron_like = ["env", "-i", f"HOME={cron_env['HOME']}", "SHELL=/bin/sh", "PATH=/usr/bin:/bin", "sh", "-c", command]
    done = subprocess.run(cron_like, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""  # everything went to the log

    # The 400-byte log was over CCUSAGE_LOG_MAX_BYTES=300: rotated before the run, the oldest dropped.
    assert (logs / "import.log.1").read_text() == "old0\n" * 80
    assert (logs / "import.log.2").read_text() == "old1\n"
    assert (logs / "import.log.3").read_text() == "old2\n"
    assert not (logs / "import.log.4").exists()
    log = (logs / "import.log").read_text()
    assert log.startswith("=== ") and " import started\n" in log and log.endswith(" import exit 0\n")
    assert "Status: ok" in log and "machine cronbox" in log
    assert SECRET not in log
    assert stat.S_IMODE((logs / "import.log").stat().st_mode) == 0o600

    rows = sql(cron_env, "SELECT machine_name, count() AS n FROM ccusage_import_runs GROUP BY machine_name")
    assert rows == [{"machine_name": "cronbox", "n": 1}]
    days = sql(cron_env, "SELECT count() AS n FROM ccusage_usage_daily")[0]["n"]
    assert days > 0

    done = subprocess.run(cron_like, capture_output=True, text=True, timeout=300)  # the next hour
    assert done.returncode == 0
    assert (logs / "import.log.1").read_text() == log  # the first run's log rotated in turn
    assert (logs / "import.log.2").read_text() == "old0\n" * 80


def test_the_shell_scripts_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        unavailable("shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck)")
    done = subprocess.run([shellcheck, str(SETUP), str(ROOT / "verify_setup.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_admin_api_line_is_added_and_removed_with_the_rest(user_crontab, cron_env):
    done = setup(cron_env, "--minute", "12", "--with-admin-api")
    if not (ROOT / "claude_admin_importer.py").exists():
        assert done.returncode == 2 and "claude_admin_importer.py does not exist" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    bash, env = shutil.which("bash", path=cron_env["PATH"]), env_file(cron_env)
    assert our_lines() == [f"12 * * * * {bash} '{SETUP}' cron-run import '{env}' # ccusage-import:import",
                           f"12 6 * * * {bash} '{SETUP}' cron-run admin '{env}' # ccusage-import:admin"]
    assert setup(cron_env, "--minute", "12").returncode == 0  # without the option: the daily line goes
    assert [line.split()[-1] for line in our_lines()] == ["ccusage-import:import"]
    assert setup(cron_env, "--with-admin-api").returncode == 0
    assert setup(cron_env, "--remove").returncode == 0
    assert read_crontab() == FOREIGN + "\n"
