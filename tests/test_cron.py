"""setup_cronjob.sh against the real `crontab` program (Debian's cron package), with a throwaway HOME.

The tests never change the crontab of the user who runs them. As root, they create a throwaway system user
(`ccusage-test-<random>`, no home, no login shell) for the session and send every `crontab` call of the script to
that user's crontab: a `crontab` first on the script's PATH runs the real program with `-u <user>`. The script
itself runs as the invoking user, because pytest's temporary folders, uv and the pinned ccusage may sit where an
unprivileged user cannot go (/root). At the end the user, its group and its spool file are removed, and the
invoking user's crontab is checked to be as it was. Without root (or useradd/userdel) those tests skip and say why.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import ROOT, sql, unavailable
from transcripts import append_activity, generate

SETUP = ROOT / "setup_cronjob.sh"
MARKER = "# ccusage-import:"
SECRET = "Cr0n-pw 'q' \"dq\" $HOME \\ `x` %%"
FOREIGN = "3 4 * * * /bin/true  # someone else's job"
SPOOL_DIRS = (Path("/var/spool/cron/crontabs"), Path("/var/spool/cron"))  # Debian, then Red Hat


def crontab_program() -> str:
    found = shutil.which("crontab")
    if not found:
        unavailable("crontab is not installed (Debian/Ubuntu: apt-get install cron; .ci/run installs it)")
    return found


def invoking_users_crontab(crontab: str) -> tuple[int, str]:
    """Read only: the exit code and text of `crontab -l` for the user running the tests."""
    done = subprocess.run([crontab, "-l"], capture_output=True, text=True)
    return done.returncode, done.stdout


@pytest.fixture(scope="session")
def cron_user() -> Iterator[str]:
    """A throwaway system user for this session, removed with its crontab afterwards."""
    crontab = crontab_program()
    if os.geteuid() != 0:
        unavailable("the crontab tests need root, to create a throwaway user whose crontab they may change "
                    "(they never change the crontab of the user running them)")
    for tool in ("useradd", "userdel"):
        if not shutil.which(tool):
            unavailable(f"{tool} is not installed (Debian: the passwd package)")
    before = invoking_users_crontab(crontab)
    name = f"ccusage-test-{secrets.token_hex(4)}"
    added = subprocess.run(["useradd", "--system", "--no-create-home", "--no-log-init", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True)
    if added.returncode != 0:
        unavailable(f"useradd {name} failed: {added.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run([crontab, "-u", name, "-r"], capture_output=True)
        removed = subprocess.run(["userdel", name], capture_output=True, text=True)
        for spool in SPOOL_DIRS:
            (spool / name).unlink(missing_ok=True)
        assert removed.returncode == 0, removed.stderr
        assert invoking_users_crontab(crontab) == before


@dataclass
class UserCrontab:
    """The throwaway user's crontab, and a folder whose `crontab` edits it (put first on the script's PATH)."""

    user: str
    program: str
    bin_dir: Path

    def read(self) -> str | None:
        done = subprocess.run([self.program, "-u", self.user, "-l"], capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def write(self, text: str) -> None:
        subprocess.run([self.program, "-u", self.user, "-"], input=text, text=True, check=True, capture_output=True)

    def remove(self) -> None:
        subprocess.run([self.program, "-u", self.user, "-r"], capture_output=True)


@pytest.fixture
def user_crontab(cron_user: str, tmp_path: Path) -> Iterator[UserCrontab]:
    """The throwaway user's crontab, starting with one foreign line that must survive; emptied afterwards."""
    program = crontab_program()
    bin_dir = tmp_path / "crontab-of-test-user"
    bin_dir.mkdir()
    (bin_dir / "crontab").write_text(f"#!/bin/sh\nexec {shlex.quote(program)} -u {shlex.quote(cron_user)} \"$@\"\n")
    (bin_dir / "crontab").chmod(0o755)
    table = UserCrontab(cron_user, program, bin_dir)
    table.write(FOREIGN + "\n")
    try:
        yield table
    finally:
        table.remove()


@pytest.fixture
def cron_env(tmp_path: Path, make_env, user_crontab: UserCrontab) -> dict:
    """The settings a user would export, with the throwaway user's `crontab` first on PATH."""
    claude = tmp_path / "claude"
    generate(claude, seed=21, days=3, sessions=4)
    (tmp_path / "tmp").mkdir()
    env = make_env(claude, "cronbox", CH_PASSWORD=SECRET, CCUSAGE_LOG_MAX_BYTES="300", TMPDIR=str(tmp_path / "tmp"))
    env["PATH"] = f"{user_crontab.bin_dir}{os.pathsep}{env['PATH']}"
    return env


def setup(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=120)
    assert SECRET not in done.stdout + done.stderr
    return done


def our_lines(table: UserCrontab) -> list[str]:
    return [line for line in (table.read() or "").splitlines() if MARKER in line]


def env_file(env: dict) -> Path:
    return Path(env["HOME"]) / ".config" / "ccusage-import" / "env"


def log_dir(env: dict) -> Path:
    return Path(env["HOME"]) / ".local" / "state" / "ccusage-import"


def test_install_twice_leaves_one_secret_free_entry_and_a_private_env_file(user_crontab, cron_env):
    for _ in range(2):
        done = setup(cron_env, "--minute", "17")
        assert done.returncode == 0, done.stderr
    crontab = user_crontab.read()
    assert SECRET not in crontab and "Cr0n-pw" not in crontab
    bash = shutil.which("bash", path=cron_env["PATH"])  # the bash that ran the setup, by absolute path
    assert our_lines(user_crontab) == [
        f"17 * * * * {bash} '{SETUP}' cron-run import '{env_file(cron_env)}' # ccusage-import:import"]
    assert crontab.splitlines()[0] == FOREIGN
    assert len(crontab.splitlines()) == 2
    # Written by the real crontab into cron's spool, owned by that user and private, as cron requires to run it;
    # and the unprivileged user, through the setgid crontab and the spool's permissions, sees it as its own.
    user = user_crontab.user
    spool = next(folder / user for folder in SPOOL_DIRS if (folder / user).exists())
    assert (spool.stat().st_uid, stat.S_IMODE(spool.stat().st_mode)) == (pwd.getpwnam(user).pw_uid, 0o600)
    as_user = subprocess.run([user_crontab.program, "-l"], user=user, cwd="/", env={"PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True)
    assert (as_user.returncode, as_user.stdout) == (0, crontab), as_user.stderr

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
    assert [line.split()[0] for line in our_lines(user_crontab)] == ["5"]


def test_the_share_and_its_s3_credentials_go_into_the_env_file_and_nowhere_else(user_crontab, cron_env):
    share = {"CCUSAGE_SHARE": "s3://team-usage/ccusage", "CCUSAGE_S3_ENDPOINT": "https://minio.example:9000",
             "AWS_ACCESS_KEY_ID": "AKIATEAM", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": f"tok-{SECRET}",
             "AWS_REGION": "eu-central-1"}
    done = setup({**cron_env, **share}, "--minute", "9")  # setup() holds the secret out of its output
    assert done.returncode == 0 and all(name in done.stdout for name in share), done.stdout
    assert SECRET not in (user_crontab.read() or "")
    path = env_file(cron_env)
    sourced = subprocess.run(["sh", "-c", f". '{path}' && env"], env={}, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert all(f"{name}={value}" in sourced for name, value in share.items())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dry_run_changes_nothing(user_crontab, cron_env):
    done = setup(cron_env, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert user_crontab.read() == FOREIGN + "\n"
    assert not env_file(cron_env).exists()
    assert "(dry run: nothing changed)" in done.stdout
    assert "CH_PASSWORD" in done.stdout  # the names it would write, never the values

    assert setup(cron_env, "--minute", "9").returncode == 0
    before = (user_crontab.read(), env_file(cron_env).read_bytes())
    for args in (("--dry-run", "--minute", "40"), ("--remove", "--dry-run")):
        done = setup({**cron_env, "CH_PASSWORD": "other"}, *args)
        assert done.returncode == 0 and "(dry run: nothing changed)" in done.stdout
        assert (user_crontab.read(), env_file(cron_env).read_bytes()) == before


def path_without(tmp_path: Path, path: str, program: str) -> str:
    """A PATH with every program of `path` but one: links to them in a single folder under tmp_path."""
    folder = tmp_path / f"path-without-{program}"
    folder.mkdir()
    for directory in path.split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            link = folder / entry.name
            if entry.name != program and not link.is_symlink() and entry.is_file() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    return str(folder)


def test_dry_run_without_crontab_shows_the_plan_the_first_run_and_that_cron_is_needed(make_env, tmp_path):
    """Needs neither root nor cron: a dry run never calls crontab, so its absence is a warning, not a refusal."""
    env = make_env(None, "cronbox", CH_PASSWORD=SECRET)
    env["PATH"] = path_without(tmp_path, env["PATH"], "crontab")
    assert shutil.which("crontab", path=env["PATH"]) is None
    home = Path(env["HOME"])
    before = sorted(home.rglob("*"))
    warning = ("warning: crontab not found: install cron (Debian/Ubuntu: apt-get install cron) before running "
               "setup_cronjob.sh without --dry-run\n")

    done = setup(env, "--first-run", "--dry-run", "--minute", "7")
    assert (done.returncode, done.stderr) == (0, warning)
    lines = done.stdout.splitlines()
    bash = shutil.which("bash", path=env["PATH"])
    job = f"{bash} '{SETUP}' cron-run import '{env_file(env)}' # ccusage-import:import"
    assert f"  7 * * * * {job}" in lines
    log = home / ".local" / "state" / "ccusage-import" / "import.log"
    first_run = lines.index(f"Would then run one import now, as cron will, and show the end of {log}:")
    assert shlex.split(lines[first_run + 1]) == [
        "env", "-i", f"HOME={home}", f"LOGNAME={pwd.getpwuid(os.geteuid()).pw_name}", "SHELL=/bin/sh",
        "PATH=/usr/bin:/bin", "/bin/sh", "-c", job]
    assert lines[-1] == "(dry run: nothing changed)"

    done = setup(env, "--remove", "--dry-run")
    assert (done.returncode, done.stderr) == (0, "warning: crontab not found: no crontab line to remove, only "
                                                 "the env file\n")
    assert done.stdout.splitlines()[-1] == "(dry run: nothing changed)"
    assert sorted(home.rglob("*")) == before  # no env file, no log, no store: nothing ran
    assert not Path(env["CCUSAGE_IMPORT_DB"]).exists()

    env_file(env).parent.mkdir(parents=True)  # left by an earlier install: --remove still takes it out
    env_file(env).write_text("export CH_PASSWORD='x'\n")
    done = setup(env, "--remove")
    assert (done.returncode, done.stderr.splitlines()) == (0, ["warning: crontab not found: no crontab line to "
                                                               "remove, only the env file"])
    assert not env_file(env).exists()


def test_remove_takes_out_the_entry_and_the_env_file(user_crontab, cron_env):
    assert setup(cron_env).returncode == 0
    assert len(our_lines(user_crontab)) == 1
    minute = int(our_lines(user_crontab)[0].split()[0])
    assert 0 <= minute <= 59
    done = setup(cron_env, "--remove")
    assert done.returncode == 0, done.stderr
    assert our_lines(user_crontab) == []
    assert user_crontab.read() == FOREIGN + "\n"
    assert not env_file(cron_env).exists()


def test_bad_options_are_refused(user_crontab, cron_env):
    for args, message in ((("--minute", "60"), "--minute must be 0-59, not 60"),
                          (("--minute", "x"), "--minute must be 0-59, not x"),
                          (("--hourly",), "unknown option --hourly")):
        done = setup(cron_env, *args)
        assert done.returncode == 2 and message in done.stderr
    assert user_crontab.read() == FOREIGN + "\n"


def test_the_cron_command_imports_under_crons_minimal_environment(user_crontab, cron_env, tmp_path):
    assert setup(cron_env).returncode == 0
    line = our_lines(user_crontab)[0]
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

    done = setup(cron_env, "--first-run")  # the next hour, as --first-run runs it: the same line, the same log
    assert done.returncode == 0, done.stderr
    assert "\nFirst run (as cron runs it)...\n" in done.stdout and "\nStatus: unchanged" in done.stdout
    assert done.stdout.endswith(" import exit 0\n")
    assert len(our_lines(user_crontab)) == 1
    assert (logs / "import.log.1").read_text() == log  # the first run's log rotated in turn
    assert (logs / "import.log.2").read_text() == "old0\n" * 80

    # An hour of new work: cron's run keeps its reports in the journal; the next opening of the store files them.
    before = sql(cron_env, "SELECT sum(total_tokens) AS n FROM ccusage_usage_daily FINAL")[0]["n"]
    claude = Path(cron_env["CLAUDE_CONFIG_DIR"])
    newest = max(path.stat().st_mtime for path in claude.rglob("*.jsonl"))
    append_activity(claude, start=datetime.fromtimestamp(newest, UTC) + timedelta(minutes=5), minutes=50)
    done = subprocess.run(cron_like, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\nStatus: deferred (" in (logs / "import.log").read_text()
    assert "connect" not in (logs / "import.log").read_text().split("Status: deferred")[1]  # no engine opened
    after = sql(cron_env, "SELECT sum(total_tokens) AS n FROM ccusage_usage_daily FINAL")[0]["n"]
    assert after > before


def test_the_shell_scripts_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        unavailable("shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck; .ci/run installs it)")
    done = subprocess.run([shellcheck, str(SETUP), str(ROOT / "verify_setup.sh"), str(ROOT / ".ci" / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


STAND_IN = """#!/bin/sh
# Stand-in for `{name}`: records its arguments, answers `{answer}`.
printf '%s\\n' "$*" >>"$RECORD"
{answer}
"""


@pytest.mark.parametrize("code", [0, 1, 5])
def test_ci_runs_exactly_the_readme_test_command_and_exits_with_its_code(tmp_path, code):
    """`.ci/run` ends in `uv run pytest` and passes its exit code on. `id` answers a non-root uid, so this test can
    never reach the install step."""
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    for name, answer in (("id", "echo 1000"), ("uv", f"exit {code}")):
        (stand_ins / name).write_text(STAND_IN.format(name=name, answer=answer))
        (stand_ins / name).chmod(0o755)
    record = tmp_path / "calls"
    done = subprocess.run([str(ROOT / ".ci" / "run")], env={"PATH": f"{stand_ins}{os.pathsep}/usr/bin:/bin",
                          "RECORD": str(record)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == code, done.stderr
    assert record.read_text().splitlines() == ["-u", "run pytest"]


def test_no_test_installs_system_packages_or_edits_the_invoking_users_crontab():
    """Installing is .ci/run's job, and crontab tests work on a throwaway user's crontab (through `crontab -u`):
    no test calls a package manager or a bare `crontab`, which would edit the crontab of whoever runs the tests."""
    calls = re.compile(r"""\[\s*["'](apt-get|apt|aptitude|dpkg|dnf|yum|zypper|apk|brew|port|snap|crontab)["']""")
    found = [f"{path.name}: {match.group(0)}" for path in sorted((ROOT / "tests").glob("*.py"))
             for match in calls.finditer(path.read_text())]
    assert found == []


def test_admin_api_line_is_added_and_removed_with_the_rest(user_crontab, cron_env):
    done = setup(cron_env, "--minute", "12", "--with-admin-api")
    if not (ROOT / "claude_admin_importer.py").exists():
        assert done.returncode == 2 and "claude_admin_importer.py does not exist" in done.stderr
        return
    assert done.returncode == 0, done.stderr
    bash, env = shutil.which("bash", path=cron_env["PATH"]), env_file(cron_env)
    assert our_lines(user_crontab) == [f"12 * * * * {bash} '{SETUP}' cron-run import '{env}' # ccusage-import:import",
                           f"12 6 * * * {bash} '{SETUP}' cron-run admin '{env}' # ccusage-import:admin"]
    assert setup(cron_env, "--minute", "12").returncode == 0  # without the option: the daily line goes
    assert [line.split()[-1] for line in our_lines(user_crontab)] == ["ccusage-import:import"]
    assert setup(cron_env, "--with-admin-api").returncode == 0
    assert setup(cron_env, "--remove").returncode == 0
    assert user_crontab.read() == FOREIGN + "\n"
