"""What a hostile environment or a careless user does to the importer (issue 11): no secret leaks, in any encoding;
no traceback from any input; no hang; a second program on the store is named; absurd numbers are refused whole.

Real chDB, the real pinned ccusage (behind a stand-in script where a failure has to be injected), loopback servers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, NpmError, free_port, npm_install, run_cli, sql
from echo_server import credential_forms, serve
from transcripts import generate

import ccusage_importer as ci

USER, PASSWORD = "alice", "SuperSecret123"


def assert_no_secret(text: str, user: str = USER, password: str = PASSWORD) -> None:
    for form, value in credential_forms(user, password).items():
        assert value not in text, f"the password leaked as {form}: {text}"


@pytest.mark.parametrize("kind", ["echo", "clickhouse-echo"])
def test_a_server_that_echoes_the_request_never_shows_the_password(kind, make_env):
    """A proxy or server that sends the request back (Basic auth header = base64 of user:password) or the
    password itself (literal, JSON-escaped, URL-encoded, hex) in its error text."""
    with serve(kind) as server:
        env = make_env(None, CH_HOST="127.0.0.1", CH_PORT=str(server.port), CH_USER=USER, CH_PASSWORD=PASSWORD)
        for args in ((), ("--check",), ("--sql", "SELECT 1"), ("--query", "daily_cost_30d")):
            done = run_cli(env, *args, timeout=60)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
            assert_no_secret(done.stdout + done.stderr)
        assert any("Authorization" in request.headers for request in server.requests)  # it had something to echo


def test_redaction_covers_every_encoding_of_the_secrets():
    config = ci.Config.from_env({"HOME": "/h", "CH_HOST": "h", "CH_USER": USER, "CH_PASSWORD": "pä ss/word+1",
                                 "CCUSAGE_HASH_KEY": "hash-key-0123"})
    forms = {**credential_forms(USER, "pä ss/word+1"), **{f"key {k}": v for k, v in
                                                          credential_forms(USER, "hash-key-0123").items()}}
    text = " | ".join(f"{name}: {value}" for name, value in forms.items())
    redacted = config.redact(text)
    for value in forms.values():
        assert value not in redacted
    assert redacted.count("***") >= len(forms) - 1  # base64 of user:key is no form a server can see


STAND_IN = """\
#!/bin/sh
# Records the environment ccusage is started with, then runs the real one.
env > "$(dirname "$0")/environment.$$"
exec "$(cat "$(dirname "$0")/real")" "$@"
"""


def stand_in_ccusage(folder: Path, real: Path, script: str = STAND_IN) -> Path:
    folder.mkdir()
    (folder / "ccusage").write_text(script)
    (folder / "ccusage").chmod(0o755)
    (folder / "real").write_text(str(real))
    return folder


def test_ccusage_gets_no_secret_in_its_environment(tmp_path, make_env, ccusage_bin_dir):
    generate(tmp_path / "claude", seed=31, days=2, sessions=3)
    secrets = {"CH_PASSWORD": "ch-pw-Secret-42", "CCUSAGE_HASH_KEY": "hash-Secret-43",
               "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-Secret-44"}
    fake = stand_in_ccusage(tmp_path / "fake-bin", ccusage_bin_dir / "ccusage")
    env = make_env(tmp_path / "claude", **secrets, HTTPS_PROXY="http://proxy.invalid:3128", LC_ALL="C.UTF-8")
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    done = run_cli(env)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = [path.read_text() for path in fake.glob("environment.*")]
    assert len(recorded) >= 3  # --version and the three reports
    for environment in recorded:
        variables = dict(line.split("=", 1) for line in environment.splitlines() if "=" in line)
        assert not set(secrets) & set(variables)
        assert not [v for v in secrets.values() if v in environment]
        assert variables["HOME"] == env["HOME"] and variables["HTTPS_PROXY"] == "http://proxy.invalid:3128"
        assert variables["LC_ALL"] == "C.UTF-8" and "MACHINE_NAME" not in variables
    assert any(f"CLAUDE_CONFIG_DIR={tmp_path / 'claude' / 'projects'}" in e for e in recorded)


def test_the_child_environment_is_an_allow_list():
    env = {"PATH": "/bin", "HOME": "/h", "CH_PASSWORD": "pw-123", "AWS_SECRET_ACCESS_KEY": "x", "LC_TIME": "C",
           "npm_config_cache": "/c", "CODEX_HOME": "/codex", "MY_PROXY_NOTE": "uses pw-123",
           "HTTPS_PROXY": "http://u:pw-123@p"}
    assert ci.child_environment(env) == {"PATH": "/bin", "HOME": "/h", "LC_TIME": "C", "npm_config_cache": "/c",
                                         "CODEX_HOME": "/codex"}


@pytest.mark.parametrize("args", [("--sql", ""), ("--sql", "  "), ("--query", ""), ("--dashboard", ""),
                                  ("--query", "", "--param", "days=3")])
def test_an_empty_mode_value_is_a_usage_error_never_an_import(args, make_env, tmp_path):
    generate(tmp_path / "claude", seed=32, days=1, sessions=1)
    env = make_env(tmp_path / "claude")
    done = run_cli(env, *args, "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: --") and "is empty" in done.stderr, done.stderr
    assert not Path(env["CCUSAGE_IMPORT_DB"]).exists()  # nothing imported, no store created


def test_two_modes_at_once_are_refused(make_env):
    # As a program: argparse's own exit code, and its message as one line.
    done = run_cli(make_env(None), "--sql", "SELECT 1", "--query", "daily_cost_30d", process=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not allowed with argument" in done.stderr


SHAPES = {
    "projects map of numbers": ("daily --instances", '{"projects": {"p": 5}}'),
    "sessions is a number": ("claude session", '{"sessions": 5}'),
    "a count beyond any float": ("claude session", '{"sessions": [{"sessionId": "s", "inputTokens": 1e400, '
                                                   '"lastActivity": "2026-11-01T00:00:00Z"}]}'),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_unknown_json_is_one_line_and_a_failed_report_in_the_run_row(case, tmp_path, make_env, ccusage_bin_dir):
    generate(tmp_path / "claude", seed=33, days=2, sessions=2)
    report, output = SHAPES[case]
    broken = f"case \"$*\" in *\"{report}\"*) echo '{output}'; exit 0 ;; esac\n"
    script = STAND_IN.replace('exec "$(cat', broken + 'exec "$(cat')
    fake = stand_in_ccusage(tmp_path / "fake-bin", ccusage_bin_dir / "ccusage", script)
    env = make_env(tmp_path / "claude")
    env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    done = run_cli(env)
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "printed JSON of an unknown shape, report skipped" in done.stdout
    run = sql(env, "SELECT status, error_text, report_rows FROM ccusage_import_runs")
    assert len(run) == 1 and run[0]["status"] == "partial" and "unknown shape" in run[0]["error_text"]


def claude_line(n: int, timestamp: str, tokens: int) -> str:
    return json.dumps({"type": "assistant", "sessionId": "huge", "timestamp": timestamp, "version": "2.0.31",
                       "requestId": f"req_{n}", "message": {"id": f"msg_{n}", "model": "claude-sonnet-4-5-20250929",
                                                            "usage": {"input_tokens": tokens, "output_tokens": 1}}},
                      separators=(",", ":")) + "\n"


def test_a_day_beyond_uint64_is_refused_by_name_and_nothing_half_written(tmp_path, make_env):
    claude = tmp_path / "claude"
    generate(claude, seed=34, days=3, sessions=3)
    session = claude / "projects" / "-home-me-huge" / "huge.jsonl"
    session.parent.mkdir(parents=True)
    session.write_text(claude_line(1, "2026-11-20T10:00:00.000Z", 10**19)
                       + claude_line(2, "2026-11-20T11:00:00.000Z", 10**19))
    env = make_env(claude)
    for _ in range(2):  # the same refusal every run, and never a half-written chain
        done = run_cli(env)
        assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
        assert "2026-11-20" in done.stdout and "more than a table can hold" in done.stdout
    counts = sql(env, "SELECT (SELECT count() FROM ccusage_usage_projects_daily) AS p, (SELECT count() "
                      "FROM ccusage_usage_daily) AS d, (SELECT count() FROM ccusage_usage_monthly) AS m")
    assert counts == [{"p": 0, "d": 0, "m": 0}]
    runs = sql(env, "SELECT status, error_text FROM ccusage_import_runs ORDER BY started_at")
    assert [r["status"] for r in runs] == ["failed", "failed"] and "2026-11-20" in runs[0]["error_text"]


def test_the_version_probe_obeys_the_command_timeout(tmp_path, make_env):
    """A `ccusage` on PATH that is not the pinned package is asked its version; hanging there holds the lock."""
    hanging = tmp_path / "bin"
    hanging.mkdir()
    (hanging / "ccusage").write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 60\n")
    (hanging / "ccusage").chmod(0o755)
    generate(tmp_path / "claude", seed=35, days=1, sessions=1)
    env = make_env(tmp_path / "claude", CCUSAGE_TIMEOUT="1", PATH=str(hanging))
    clock = time.monotonic()
    done = run_cli(env, timeout=60)
    assert time.monotonic() - clock < 20
    assert done.returncode == 1 and "ccusage 20.0.24 not found" in done.stderr


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_is_given_up_in_the_set_time(silent_server, make_env):
    env = make_env(None, CH_HOST="127.0.0.1", CH_PORT=str(silent_server), CH_TIMEOUT="2")
    clock = time.monotonic()
    done = run_cli(env, "--sql", "SELECT 1", timeout=60)
    assert time.monotonic() - clock < 20
    assert done.returncode == 1 and "no answer within 2 s" in done.stderr and "Traceback" not in done.stderr


HOLDER = """
import sys, time, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
client.query("SELECT 1")
print("open", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_another_program_holding_the_store_is_named_then_waited_for(tmp_path, make_env):
    generate(tmp_path / "claude", seed=36, days=1, sessions=1)
    env = make_env(tmp_path / "claude", CCUSAGE_LOCK_TIMEOUT="1")
    assert run_cli(env).returncode == 0
    link = tmp_path / "link-to-store"
    link.symlink_to(Path(env["CCUSAGE_IMPORT_DB"]))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(link), "30"], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert run_cli(env).returncode == 0  # nothing new: the engine is not even opened
        for args in (("--force",), ("--sql", "SELECT 1"), ("--check",)):
            done = run_cli(env, *args)
            assert "Traceback" not in done.stderr and "Cannot lock file" not in done.stdout + done.stderr
            assert "another program has the embedded store" in done.stdout + done.stderr, (args, done)
            assert done.returncode == (1 if args == ("--check",) else 3)
    finally:
        holder.kill()
        holder.wait()
    assert run_cli(env, "--force").returncode == 0  # once it is closed, the import goes on


def test_a_symlinked_store_shares_the_lock(tmp_path):
    real = tmp_path / "data" / "chdb"
    real.mkdir(parents=True)
    (tmp_path / "elsewhere").symlink_to(real)
    locks = {ci.Config.from_env({"HOME": str(tmp_path), "CCUSAGE_IMPORT_DB": str(path)}).lock_path()
             for path in (real, tmp_path / "elsewhere")}
    assert len(locks) == 1


@pytest.mark.parametrize(("fmt", "expected"), [("csv", "day,tokens"), ("json", "[]")])
def test_empty_results_still_print_their_shape(fmt, expected, make_env):
    env = make_env(None)
    done = run_cli(env, "--sql", "SELECT today() AS day, 1 AS tokens WHERE 0", "--format", fmt)
    assert done.returncode == 0 and done.stdout == expected + "\n"


def test_force_with_nothing_changed_writes_nothing(tmp_path, make_env):
    # months summed from many days (float noise); ended in the past, so no 5-hour block is still active (an active
    # block's burn rate and projection move with the clock and are rewritten on purpose)
    generate(tmp_path / "claude", seed=37, days=40, sessions=60, end=dt.datetime(2026, 11, 21, 20, 7, tzinfo=dt.UTC))
    env = make_env(tmp_path / "claude")
    assert run_cli(env).returncode == 0
    for _ in range(2):
        assert run_cli(env, "--force").returncode == 0
    runs = sql(env, "SELECT rows_written FROM ccusage_import_runs ORDER BY started_at")
    assert len(runs) == 3 and sum(runs[0]["rows_written"].values()) > 0
    assert [sum(r["rows_written"].values()) for r in runs[1:]] == [0, 0], runs


def test_costs_print_without_binary_noise():
    text = ci.format_table(["cost"], [(51.43546264999998,)], "csv")
    assert text == "cost\n51.43546265"
    assert json.loads(ci.format_table(["cost"], [(0.1 + 0.2,)], "json")) == {"cost": 0.3}
    assert dt.date(2026, 1, 1).isoformat() in ci.format_table(["d"], [(dt.date(2026, 1, 1),)], "json")


def test_a_secret_inside_a_longer_base64_text_is_redacted_at_any_offset():
    """A proxy that base64-encodes a whole header block puts the password at any of three byte offsets."""
    secret = b"correct-horse-battery"
    config = ci.Config.from_env({"HOME": "/h", "CH_HOST": "h", "CH_PASSWORD": secret.decode()})
    for prefix in (b"", b"x", b"xy", b"Authorization: Basic ...\r\n"):
        plain = prefix + b"password=" + secret + b"; next header\r\n"
        blob = base64.b64encode(plain).decode()
        first, last = plain.index(secret), plain.index(secret) + len(secret)
        only_secret = blob[-(-first * 8 // 6) + 1:last * 8 // 6 - 1]  # characters made of the password's bits alone
        assert len(only_secret) >= 20 and only_secret in blob
        assert only_secret[:8] not in config.redact(blob) and only_secret[-8:] not in config.redact(blob)


def test_the_tests_npm_install_keeps_the_npm_configuration_and_fails_fast(tmp_path):
    """Issue 24.9: the registry of the user's global npmrc (npm's own PREFIX/etc/npmrc) is the one the tests' install
    of ccusage uses, and a registry that refuses gives up in seconds with npm's reason."""
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed")
    global_prefix = tmp_path / "global"
    (global_prefix / "etc").mkdir(parents=True)
    port = free_port()
    (global_prefix / "etc" / "npmrc").write_text(f"registry=http://127.0.0.1:{port}/\n")
    env = {**os.environ, "NPM_CONFIG_PREFIX": str(global_prefix), "npm_config_cache": str(tmp_path / "cache")}
    started = time.monotonic()
    with pytest.raises(NpmError) as failure:
        npm_install(npm, tmp_path / "prefix", "ccusage@20.0.24", env)
    assert time.monotonic() - started < 60
    message = str(failure.value)
    assert f"registry http://127.0.0.1:{port}/" in message and "ECONNREFUSED" in message, message
    assert "\n" not in message
