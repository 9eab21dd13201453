"""verify_setup.sh against a real ClickHouse HTTP server: Debian's clickhouse-server (18.16), started here on a
loopback port with a throwaway config. 18.16 cannot create our schema, so the tests create simple ccusage_ tables
with the columns the script reads. The script's queries are also run on the current engine (chDB) against the
real schema, so they hold for both. Servers that are not ClickHouse, or that echo the request back, are small
loopback servers from tests/echo_server.py."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from conftest import ROOT, free_port, run_cli, sql, stop, unavailable
from echo_server import EchoServer, credential_forms, echo_text, serve
from transcripts import generate

import ccusage_importer as ci

SCRIPT = ROOT / "verify_setup.sh"
USER = "ccusage_writer"
PASSWORD = 'Vf-pw "q" \\b $x \'y\' <z>&'
DISTINCT = "Vf-pw"
TABLES = ci.schema_names("table")  # the tables verify_setup.sh checks: every ccusage_ table of the schema file

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{port}</http_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
</yandex>
"""
USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default><password>{admin}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></{user}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


def server_command() -> list[str]:
    """Debian's package installs /usr/sbin/clickhouse-server; newer ones a `clickhouse` multi-tool."""
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        if found := shutil.which(name):
            return [found]
    if found := shutil.which("clickhouse"):
        return [found, "server"]
    unavailable("no ClickHouse server program (Debian/Ubuntu: apt-get install clickhouse-server; .ci/run installs it)")
    raise AssertionError  # unreachable: unavailable() skips or fails


@dataclass
class Server:
    port: int
    admin_password: str

    def run(self, query: str, database: str = "default") -> str:
        """A query as the admin user (test setup only; the script under test uses curl)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/?database={database}", data=query.encode())
        token = base64.b64encode(f"default:{self.admin_password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    command = server_command()
    folder = tmp_path_factory.mktemp("clickhouse")
    port = free_port()
    admin = "admin-" + os.urandom(6).hex()
    (folder / "config.xml").write_text(CONFIG.format(dir=folder, port=port))
    (folder / "users.xml").write_text(USERS.format(admin=admin, user=USER, password=escape(PASSWORD)))
    with open(folder / "stdout.log", "wb") as output:
        process = subprocess.Popen([*command, f"--config-file={folder / 'config.xml'}"], cwd=folder,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.read() == b"Ok.\n":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "error.log").read_text(errors="replace")[-800:] if (
                    folder / "error.log").exists() else (folder / "stdout.log").read_text(errors="replace")[-800:]
                unavailable(f"clickhouse-server did not start on 127.0.0.1:{port}: {log}")
            time.sleep(0.2)
        yield Server(port, admin)
    finally:
        stop(process, 20)


def create_tables(server: Server, database: str, tables: list[str]) -> None:
    """Simple 18.16 versions of the ccusage_ tables with the columns verify_setup.sh reads, and a few rows."""
    server.run(f"CREATE DATABASE IF NOT EXISTS {database}")
    for table in tables:
        if table == "ccusage_usage_daily":
            columns = "machine_name String, date Date, total_tokens UInt64, total_cost Float64"
        elif table == "ccusage_import_runs":
            columns = "machine_name String, finished_at DateTime, status String"
        else:
            columns = "machine_name String, n UInt8"
        server.run(f"CREATE TABLE {table} ({columns}) ENGINE = MergeTree ORDER BY machine_name", database)
    server.run("CREATE VIEW ccusage_v_daily_summary AS SELECT machine_name, date, total_tokens, total_cost "
               "FROM ccusage_usage_daily", database)
    server.run("INSERT INTO ccusage_usage_daily VALUES ('laptop', today(), 100, 1.5), "
               "('laptop', today() - 1, 50, 0.25), ('desk', today() - 30, 10, 9)", database)
    if "ccusage_import_runs" in tables:
        server.run("INSERT INTO ccusage_import_runs VALUES ('laptop', now() - 600, 'ok'), "
                   "('desk', now() - 10800, 'ok'), ('desk', now() - 20000, 'failed'), "
                   "('tower', now() - 60, 'failed')", database)
    if "ccusage_settings" in tables:
        server.run("INSERT INTO ccusage_settings VALUES ('a', 1), ('b', 2)", database)


@pytest.fixture(scope="module")
def healthy(server: Server) -> str:
    create_tables(server, "ccusage", TABLES)
    return "ccusage"


def verify(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
    assert DISTINCT not in done.stdout + done.stderr
    return done


def server_env(server: Server, database: str, **extra: str) -> dict:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8",
            "CH_HOST": "127.0.0.1", "CH_PORT": str(server.port), "CH_USER": USER, "CH_PASSWORD": PASSWORD,
            "CH_DATABASE": database, **extra}


def test_healthy_server_shows_counts_the_view_and_flags_the_stale_machine(server, healthy):
    done = verify(server_env(server, healthy))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"verify_setup.sh: http://127.0.0.1:{server.port} as {USER}, database ccusage, "
                        "password set (not shown)")
    assert re.fullmatch(rf"✅ server: ClickHouse 18\.16\.\d+ at http://127\.0\.0\.1:{server.port} answered in \d+ ms",
                        lines[1])
    counts = {"ccusage_usage_daily": 3, "ccusage_import_runs": 4, "ccusage_settings": 2}
    rows = 2 + len(TABLES)
    assert lines[2:rows] == [f"✅ {table}: {counts.get(table, 0)} rows" for table in TABLES]
    assert lines[rows] == "✅ ccusage_v_daily_summary: 2 machine-days, $1.75 in the last 7 days"
    assert re.fullmatch(r"⚠️ machine desk: last import 3 h \d+ min ago, more than 2 h \(last run: ok\)", lines[rows + 1])
    assert lines[rows + 2] == ("   fix: on desk, check its cron job (crontab -l) and log "
                         "(~/.local/state/ccusage-import/import.log)")
    assert re.fullmatch(r"✅ machine laptop: last import 1\d min ago \(ok\)", lines[rows + 3])
    assert lines[rows + 4] == "⚠️ machine tower: no successful import yet (last run: failed)"
    assert lines[rows + 5].startswith("✅ ccusage on this machine: runs via ")
    assert lines[-1] == "All checks passed."

    relaxed = verify(server_env(server, healthy), "--stale-hours", "4")
    assert re.search(r"^✅ machine desk: last import 3 h \d+ min ago \(ok\)$", relaxed.stdout, re.M)


def test_wrong_password_fails_with_one_clear_line(server, healthy):
    done = verify(server_env(server, healthy, CH_PASSWORD="not-the-password"))
    assert done.returncode == 1
    assert (f"❌ server: http://127.0.0.1:{server.port} refused user {USER}: Code: 193, e.displayText() = "
            f"DB::Exception: Wrong password for user {USER}") in done.stdout
    assert "   fix: check CH_USER and CH_PASSWORD" in done.stdout.splitlines()
    assert "not-the-password" not in done.stdout + done.stderr
    assert "rows" not in done.stdout  # nothing is checked past a refused login
    assert done.stdout.splitlines()[-1] == "Some checks failed (❌): see the fixes above."


def test_missing_table_and_missing_database_fail(server):
    create_tables(server, "partial", [t for t in TABLES if t != "ccusage_usage_blocks"])
    done = verify(server_env(server, "partial"))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[lines.index("❌ ccusage_usage_blocks: missing") + 1] == (
        "   fix: run an import against this server once (uv run ccusage_importer.py), it creates the schema")
    assert "✅ ccusage_usage_daily: 3 rows" in lines

    done = verify(server_env(server, "nowhere"))
    assert done.returncode == 1
    assert "Database nowhere doesn't exist" in done.stdout
    assert "   fix: create it (CREATE DATABASE nowhere) or set CH_DATABASE" in done.stdout.splitlines()


def test_unreachable_server_fails():
    port = free_port()
    env = {"PATH": os.environ["PATH"], "CH_HOST": "127.0.0.1", "CH_PORT": str(port), "CH_PASSWORD": PASSWORD}
    done = verify(env)
    assert done.returncode == 1
    assert done.stdout.splitlines()[1].startswith(f"❌ server: no answer from http://127.0.0.1:{port}: curl: (7) ")


@pytest.mark.parametrize(("settings", "message"), [
    ({"CH_HOST": "db.example.com;rm -rf /"}, "CH_HOST='db.example.com;rm -rf /' is not a host name or IP address"),
    ({"CH_HOST": "-K/etc/passwd"}, "is not a host name or IP address"),
    ({"CH_HOST": "a b"}, "is not a host name or IP address"),
    ({"CH_PORT": "0"}, "CH_PORT='0' is not a port number (1-65535)"),
    ({"CH_PORT": "65536"}, "CH_PORT='65536' is not a port number (1-65535)"),
    ({"CH_PORT": "81a"}, "CH_PORT='81a' is not a port number (1-65535)"),
    ({"CH_PORT": "9000"}, "CH_PORT=9000 is ClickHouse's native-protocol port"),
    ({"CH_PORT": "9440"}, "CH_PORT=9440 is ClickHouse's native-protocol port"),
    ({"CH_DATABASE": "a-b"}, "CH_DATABASE='a-b' is not a plain database name"),
    ({"CH_DATABASE": "x;DROP TABLE y"}, "is not a plain database name"),
    ({"CH_DATABASE": "1abc"}, "CH_DATABASE='1abc' is not a plain database name"),
    ({"CH_PROTOCOL": "ftp"}, "CH_PROTOCOL='ftp' must be http or https"),
])
def test_bad_settings_exit_2_before_any_request(settings, message):
    env = {"PATH": os.environ["PATH"], "CH_HOST": "127.0.0.1", **settings}
    done = verify(env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("verify_setup.sh: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_embedded_store_points_to_check():
    done = verify({"PATH": os.environ["PATH"], "CH_PASSWORD": PASSWORD})
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "CH_HOST is not set: the importer uses its embedded chDB store, which has no HTTP interface.",
        "Check it with: uv run ccusage_importer.py --check"]


def test_help_documents_the_exit_codes():
    done = verify({"PATH": os.environ["PATH"]}, "--help")
    assert done.returncode == 0
    for code in ("  0  every check passed", "  1  a check failed", "  2  bad configuration"):
        assert code in done.stdout


SLOW_CURL = """#!/bin/sh
# Slows every request down so the process list can be sampled while curl runs; the arguments are passed on as given.
sleep 0.3
exec "$REAL_CURL" "$@"
"""


def command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


def test_the_password_never_appears_in_the_process_list(server, healthy, tmp_path):
    if not Path("/proc/self/cmdline").exists():
        unavailable("no /proc to read command lines from")
    slow_bin = tmp_path / "slow-bin"
    slow_bin.mkdir()
    (slow_bin / "curl").write_text(SLOW_CURL)
    (slow_bin / "curl").chmod(0o755)
    env = server_env(server, healthy, PATH=f"{slow_bin}{os.pathsep}{os.environ['PATH']}",
                     REAL_CURL=shutil.which("curl"))
    runs = [subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(3)]
    seen_curl = 0
    samples = 0
    while any(run.poll() is None for run in runs):
        for line in command_lines():
            assert DISTINCT not in line, line
            seen_curl += "--config -" in line
        if samples % 10 == 0:
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            assert DISTINCT not in listing
            seen_curl += listing.count("--config -")
        samples += 1
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert seen_curl > 0  # the sampling really saw curl running with its arguments


def test_the_scripts_queries_run_on_the_current_engine(tmp_path, make_env):
    """Every query in verify_setup.sh, on chDB with the real schema (DateTime64, Map, ReplacingMergeTree)."""
    claude = tmp_path / "claude"
    generate(claude, seed=31, days=2, sessions=3)
    env = make_env(claude, "engine-box")
    assert run_cli(env).returncode == 0
    queries = re.findall(r'query "([^"$]*(?:\$table[^"]*)?)"', SCRIPT.read_text())
    assert len(queries) == 5
    for query in queries:
        done = run_cli(env, "--sql", query.replace("$table", "ccusage_import_runs"), "--format", "csv")
        assert done.returncode == 0, (query, done.stderr)
    assert sql(env, "SELECT count() AS n FROM ccusage_import_runs")[0]["n"] == 1
    fresh = sql(env, next(q for q in queries if "dateDiff" in q))
    assert len(fresh) == 1
    machine, good, age, status = fresh[0].values()
    assert (machine, good, status) == ("engine-box", 1, "ok") and 0 <= age < 600


def test_check_against_this_server_names_the_problem_without_the_password(server, healthy, make_env):
    """`ccusage_importer.py --check` on a real server: a refused login, then a server too old for the driver."""
    settings = {"CH_HOST": "127.0.0.1", "CH_PORT": str(server.port), "CH_USER": USER, "CH_DATABASE": healthy}
    refused = run_cli(make_env(None, **settings, CH_PASSWORD=DISTINCT + "-wrong"), "--check")
    old = run_cli(make_env(None, **settings, CH_PASSWORD=PASSWORD), "--check")
    for done in (refused, old):
        assert done.returncode == 1 and done.stderr == ""
        assert DISTINCT not in done.stdout and "Traceback" not in done.stdout
    prefix = f"❌ store connection: cannot use http://{USER}@127.0.0.1:{server.port} (database {healthy}): "
    assert f"{prefix}HTTP driver received HTTP status 401" in refused.stdout
    assert f"Wrong password for user {USER}" in refused.stdout
    assert f"{prefix}HTTP driver received HTTP status 404" in old.stdout
    assert "Unknown identifier: readonly" in old.stdout
    assert ("   fix: this ClickHouse server is too old for the importer's driver (clickhouse-connect): upgrade it"
            in old.stdout.splitlines())


def echo_env(echo: EchoServer, password: str = PASSWORD, lang: str = "C.UTF-8") -> dict:
    return {"PATH": os.environ["PATH"], "LANG": lang, "CH_HOST": "127.0.0.1", "CH_PORT": str(echo.port),
            "CH_USER": USER, "CH_PASSWORD": password}


def leaked_forms(done: subprocess.CompletedProcess, password: str = PASSWORD) -> list[str]:
    """The names of the password's forms that appear in what the script printed."""
    printed = done.stdout + done.stderr
    return [name for name, form in credential_forms(USER, password).items() if form in printed]


def assert_echo_carried_every_form(echo: EchoServer, password: str = PASSWORD) -> None:
    """The server did receive the credentials, so its answers held every form: the test could have caught a leak."""
    assert echo.requests, "the script sent no request"
    answer = echo_text(echo.requests[0])
    assert all(form in answer for form in credential_forms(USER, password).values())


@pytest.mark.parametrize(("kind", "status", "what"), [
    ("echo", 500, "HTTP 500 (application/json) and no X-ClickHouse-* header"),
    ("echo", 200, "HTTP 200 (application/json) and not a version number"),
    ("html", 200, "HTTP 200 (text/html; charset=utf-8) and not a version number"),
    ("binary", 200, "HTTP 200 (application/octet-stream) and not a version number"),
])
def test_an_answer_not_from_clickhouse_is_named_so_and_exits_2(kind, status, what):
    with serve(kind, status) as echo:
        done = verify(echo_env(echo))
    if kind == "echo":
        assert_echo_carried_every_form(echo)
    assert leaked_forms(done) == []
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == f"verify_setup.sh: {echo.url} as {USER}, database default, password set (not shown)\n"
    assert done.stderr == (f"verify_setup.sh: {echo.url} is not a ClickHouse server: it answered SELECT version() "
                           f"with {what}; check CH_HOST, CH_PORT and CH_PROTOCOL\n")


@pytest.mark.parametrize(("password", "lang"), [(PASSWORD, "C.UTF-8"), ("pä ss\tw🚀rd\x01/+&=%~\x7f", "C")],
                         ids=["quotes", "unicode-controls-in-C-locale"])
def test_an_echoed_password_is_redacted_in_every_form(password, lang):
    """A ClickHouse behind an echoing proxy: the version passes, every other answer sends the request back."""
    with serve("clickhouse-echo") as echo:
        done = verify(echo_env(echo, password, lang))
    assert_echo_carried_every_form(echo, password)
    assert leaked_forms(done, password) == []
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[1].startswith(f"✅ server: ClickHouse 24.8.4.13 at {echo.url} answered in ")
    redacted = "Code: 60. DB::Exception: echo: " + " ".join(
        f"{name}=***" for name in credential_forms(USER, password))
    for check in ("tables: cannot list them", "ccusage_v_daily_summary", "freshness: cannot read ccusage_import_runs"):
        assert any(line.startswith(f"❌ {check}: {redacted} ") for line in lines), (check, lines)
