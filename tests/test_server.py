"""The server path end to end: the importer, its queries, its dashboard, --check and verify_setup.sh over HTTP
against a ClickHouse server stand-in (tests/clickhouse_http_server.py: ClickHouse's HTTP interface, the statements
run by chDB), with generated transcripts and the real pinned ccusage. What the stand-in cannot show is in
docs/testing.md."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import IMPORTER, QUERIES, ROOT, cli_env, named_query, run_ccusage, run_cli, sql, sql_many
from test_importer import import_ok, snapshot_queries
from test_verify import DISTINCT, PASSWORD, USER, Server, verify
from transcripts import GroundTruth, delete_older_than, generate, ground_truth

import ccusage_importer as ci

STAND_IN = ROOT / "tests" / "clickhouse_http_server.py"
ADMIN = "admin-" + "x7"  # the stand-in's `default` user, for the tests' own setup requests


@dataclass
class StandIn(Server):
    """A running stand-in: where it listens (its `run` sends statements as the admin user, for the tests' setup
    only), and the folder chDB keeps its data in."""

    folder: Path

    def database(self, name: str) -> str:
        self.run(f"CREATE DATABASE {name}")
        return name

    def settings(self, database: str, password: str = PASSWORD) -> dict[str, str]:
        """The importer's settings for this server: a new `database` on it, the tests' user."""
        return {"CH_HOST": "127.0.0.1", "CH_PORT": str(self.port), "CH_USER": USER, "CH_PASSWORD": password,
                "CH_DATABASE": database}


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """A server whose clock is UTC+14 while the machines' is UTC, as a team's server is often in another zone than
    its machines: nothing stored may depend on the server's zone."""
    with stand_in(tmp_path_factory.mktemp("clickhouse-stand-in"), "Pacific/Kiritimati") as server:
        yield server


@contextmanager
def stand_in(folder: Path, zone: str) -> Iterator[StandIn]:
    """The stand-in as a process (chDB hosts one engine per process), on a free loopback port; the passwords go in
    on stdin, never on its command line. Closing its stdin ends it."""
    process = subprocess.Popen([sys.executable, str(STAND_IN)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env={"TZ": zone, "PATH": "/usr/bin:/bin"})
    assert process.stdin and process.stdout
    process.stdin.write(json.dumps({"folder": str(folder / "data"), "users": {"default": ADMIN, USER: PASSWORD},
                                    "display_name": "stand-in"}) + "\n")
    process.stdin.flush()
    started = process.stdout.readline()
    assert started.startswith("port "), f"the stand-in did not start: {started!r}"
    try:
        yield StandIn(int(started.split()[1]), ADMIN, folder)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Machine:
    name: str
    env: dict[str, str]
    truth: GroundTruth
    claude: Path
    daily_cost: float  # ccusage's own daily report, summed


def machine_on(server: StandIn, database: str, base: Path, bin_dir: Path, name: str, seed: int, days: int,
               end: dt.datetime, password: str = PASSWORD) -> Machine:
    """A machine with its own HOME (its local state) and transcripts, importing into `database` on the server."""
    claude, home = base / f"claude-{name}", base / f"home-{name}"
    home.mkdir()
    truth = generate(claude, seed=seed, days=days, sessions=days + 4, end=end)
    env = cli_env(bin_dir, home, base / f"unused-store-{name}", claude, name, **server.settings(database, password))
    cost = sum(day["totalCost"] for day in run_ccusage(bin_dir, claude, "daily")["daily"])
    return Machine(name, env, truth, claude, cost)


@dataclass
class Populated:
    server: StandIn
    database: str
    machines: dict[str, Machine]
    import_seconds: list[float]


@pytest.fixture(scope="module")
def populated(clickhouse: StandIn, tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> Populated:
    """Two machines, each with its own transcripts, imported into one database of the server."""
    base = tmp_path_factory.mktemp("machines")
    database = clickhouse.database("team")
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    machines = {name: machine_on(clickhouse, database, base, ccusage_bin_dir, name, seed, days, end)
                for name, seed, days in (("alpha", 41, 12), ("beta", 42, 9))}
    seconds = []
    for machine in machines.values():
        clock = time.monotonic()
        import_ok(machine.env)
        seconds.append(time.monotonic() - clock)
    return Populated(clickhouse, database, machines, seconds)


def cli_json(env: dict, *args: str) -> list[dict]:
    done = run_cli(env, *args, "--format", "json")
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]  # one JSON object a line


def test_two_machines_import_into_one_server_and_each_keeps_its_own_totals(populated: Populated):
    alpha, beta = populated.machines.values()
    overview = {row["machine_name"]: row for row in cli_json(alpha.env, "--query", "machine_overview")}
    assert sorted(overview) == ["alpha", "beta"]
    for machine in (alpha, beta):
        row, days = overview[machine.name], sorted(machine.truth.by_day())
        assert row["tokens"] == machine.truth.total().total
        assert row["cost_usd"] == pytest.approx(machine.daily_cost, rel=1e-9)
        assert (row["first_day"], row["last_day"], row["active_days"]) == (str(days[0]), str(days[-1]), len(days))
        assert row["sessions"] == len(machine.truth.by_session())
    runs = sql(beta.env, "SELECT machine_name, status FROM ccusage_import_runs ORDER BY machine_name")
    assert runs == [{"machine_name": "alpha", "status": "ok"}, {"machine_name": "beta", "status": "ok"}]


def test_stored_sessions_read_by_key_over_http_are_those_a_read_of_all_finds(populated: Populated):
    """A plan that compares a few of many stored sessions reads them by key, the keys bound as an array of tuples:
    the server binds that parameter as the embedded engine does, and the spans name every stored session."""
    store = ci.open_store(ci.Config.from_env(populated.machines["alpha"].env))
    try:
        every = store.stored_records(ci.SESSIONS)
        keys = frozenset(sorted(every)[::2])
        assert len(every) > len(keys) > 1
        assert store.stored_records(ci.SESSIONS, keys) == {key: every[key] for key in keys}
        assert store.stored_records(ci.SESSIONS, frozenset()) == {}
        assert store.session_spans() == {key: ci.SessionSpan.of(record) for key, record in every.items()}
    finally:
        store.close()


def test_the_dashboard_over_http_shows_both_machines_with_their_totals(populated: Populated, tmp_path: Path):
    alpha = populated.machines["alpha"]
    page = tmp_path / "dashboard.html"
    done = run_cli(alpha.env, "--dashboard", str(page))
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    assert "2 machines" in done.stdout
    found = re.search(r'<script type="application/json" id="ccusage-data">(.*?)</script>', page.read_text(), re.S)
    assert found
    data = json.loads(found.group(1))
    assert data["machines"] == ["alpha", "beta"]
    totals = {}
    for scope in data["scopes"]:
        summary = scope["data"]["summary"]
        totals[scope["machine"], scope["agent"]] = dict(zip(summary["columns"], summary["rows"][0], strict=True))
    for name, machine in populated.machines.items():
        assert totals[name, ""]["all_time_tokens"] == machine.truth.total().total
    assert totals["", ""]["all_time_tokens"] == sum(m.truth.total().total for m in populated.machines.values())


def test_check_against_the_server_passes_its_store_checks(populated: Populated):
    done = run_cli(populated.machines["beta"].env, "--check")
    lines = done.stdout.splitlines()
    assert done.stderr == "" and DISTINCT not in done.stdout
    store_lines = [line for line in lines if re.match(r"\S+ (store connection|server version|database|tables and "
                                                      r"views|write permission|response time|last import):", line)]
    assert len(store_lines) == 7 and all(line.startswith("✅") for line in store_lines), done.stdout
    assert f"✅ store connection: http://{USER}@127.0.0.1:{populated.server.port} (database team) in " in done.stdout
    assert re.search(r"^✅ server version: .*26\.\d+", done.stdout, re.M), done.stdout


def test_verify_setup_passes_against_the_server(populated: Populated):
    env = {"PATH": populated.machines["alpha"].env["PATH"], "HOME": str(populated.server.folder), "LANG": "C.UTF-8",
           "CH_HOST": "127.0.0.1", "CH_PORT": str(populated.server.port), "CH_USER": USER,
           "CH_PASSWORD": PASSWORD, "CH_DATABASE": populated.database}
    done = verify(env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(rf"✅ server: ClickHouse 26\.[\d.]+ at http://127\.0\.0\.1:{populated.server.port} answered in "
                        r"\d+ ms", lines[1])
    daily = int(sql(populated.machines["alpha"].env, "SELECT count() AS n FROM ccusage_usage_daily")[0]["n"])
    assert f"✅ ccusage_usage_daily: {daily} rows" in lines
    assert "✅ ccusage_import_runs: 2 rows" in lines
    for name in populated.machines:
        assert re.search(rf"^✅ machine {name}: last import \d+ min ago \(ok\)$", done.stdout, re.M), done.stdout
    assert lines[-1] == "All checks passed."

    refused = verify({**env, "CH_PASSWORD": DISTINCT + "-wrong"})
    assert refused.returncode == 1
    assert (f"❌ server: http://127.0.0.1:{populated.server.port} refused user {USER}: Code: 516. DB::Exception: "
            f"{USER}: Authentication failed") in refused.stdout


def test_a_reimport_writes_nothing_and_cleanup_keeps_the_history(clickhouse: StandIn, tmp_path: Path,
                                                                 ccusage_bin_dir: Path):
    """--force reads everything again and writes no row; Claude Code deleting old transcripts shrinks nothing."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    database = clickhouse.database("history")
    machine = machine_on(clickhouse, database, tmp_path, ccusage_bin_dir, "gamma", 43, 30, now - dt.timedelta(hours=2))
    import_ok(machine.env)
    raw = {table: f"SELECT count() AS n FROM {table}" for table in (
        *(t.name for t in ci.USAGE_TABLES), *ci.CHILD_TABLES, "ccusage_settings")}
    before = sql_many(machine.env, {**snapshot_queries("gamma"), **raw})

    import_ok(machine.env, "--force")
    assert sql_many(machine.env, {**snapshot_queries("gamma"), **raw}) == before
    written = sql(machine.env, "SELECT rows_written FROM ccusage_import_runs ORDER BY started_at")
    assert [len(row["rows_written"]) for row in written] == [len(ci.USAGE_TABLES)] * 2  # rows written per usage table
    assert not any(written[1]["rows_written"].values())

    assert delete_older_than(machine.claude, now - dt.timedelta(days=15))
    assert ground_truth(machine.claude).total().total < machine.truth.total().total  # ccusage now sees less
    import_ok(machine.env)
    assert sql_many(machine.env, snapshot_queries("gamma")) == {name: before[name] for name in snapshot_queries()}


def test_a_wrong_password_is_one_line_without_the_secret(clickhouse: StandIn, tmp_path: Path, ccusage_bin_dir: Path):
    wrong = DISTINCT + "-not-it \"'$"
    machine = machine_on(clickhouse, "default", tmp_path, ccusage_bin_dir, "delta", 44, 2,
                         dt.datetime.now(dt.UTC) - dt.timedelta(hours=3), password=wrong)
    prefix = f"cannot use http://{USER}@127.0.0.1:{clickhouse.port} (database default): "
    done = run_cli(machine.env)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"error: {prefix}authentication failed for user '{USER}' (check CH_USER and CH_PASSWORD)\n"

    checked = run_cli(machine.env, "--check")
    assert checked.returncode == 1 and DISTINCT not in checked.stdout + checked.stderr
    assert f"❌ store connection: {prefix}authentication failed for user '{USER}'" in checked.stdout

    missing = run_cli({**machine.env, "CH_PASSWORD": PASSWORD, "CH_DATABASE": "nowhere"})
    assert missing.returncode == 1 and DISTINCT not in missing.stdout + missing.stderr
    assert missing.stderr.count("\n") == 1 and "database 'nowhere' does not exist" in missing.stderr, missing.stderr


def test_the_stand_in_answers_as_a_server_does(clickhouse: StandIn):
    """The parts of the HTTP interface the tests above rely on, checked directly: statuses, codes, headers."""
    url = f"http://127.0.0.1:{clickhouse.port}/"
    with urllib.request.urlopen(url + "ping", timeout=10) as response:
        assert response.read() == b"Ok.\n"

    def ask(query: str, data: bytes | None = None, user: str | None = "default", password: str = ADMIN,
            **headers: str) -> tuple[int, dict[str, str], bytes]:
        """A request with Basic credentials (none when `user` is None) and `headers`: status, headers, body."""
        request = urllib.request.Request(url + "?" + query, data=data, headers=headers)
        if user is not None:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    status, headers, body = ask("param_n=41", b"SELECT {n:UInt8} + 1 AS x FORMAT JSONEachRow")
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b'{"x":42}\n', "JSONEachRow")
    assert headers["X-ClickHouse-Server-Display-Name"] == "stand-in" and headers["X-ClickHouse-Timezone"]
    assert json.loads(headers["X-ClickHouse-Summary"])["result_rows"] == "1"
    status, headers, body = ask("enable_http_compression=1", b"SELECT 'x' FORMAT TSV", **{"Accept-Encoding": "gzip"})
    assert (status, headers["Content-Encoding"], gzip.decompress(body)) == (200, "gzip", b"x\n")
    key = {"X-ClickHouse-User": USER, "X-ClickHouse-Key": PASSWORD}
    assert ask("", b"SELECT 7", None, **key)[::2] == (200, b"7\n")

    auth = "Code: 516. DB::Exception: "
    refusals = [  # (request, HTTP status, X-ClickHouse-Exception-Code, start of the body)
        (("", b"SELECT 1", "default", "wrong"), {}, 403, "516", f"{auth}default: Authentication failed"),
        (("", b"SELECT 1", None), {**key, "X-ClickHouse-Key": "wrong"}, 403, "516", f"{auth}{USER}: Authentication"),
        (("", b"SELECT 1", "default", ADMIN), key, 403, "516", f"{auth}Invalid authentication: it is not allowed"),
        (("", b"SELECT 1; SELECT 2"), {}, 400, "62", "Code: 62. DB::Exception: Syntax error (Multi-statements"),
        (("", b"SELECT * FROM no_such_table"), {}, 404, "60", "Code: 60. DB::Exception: Unknown table"),
        (("query=CREATE+TABLE+t+(x+UInt8)+ENGINE=Memory",), {}, 500, "164", "Code: 164. DB::Exception: default: "
                                                                           "Cannot execute query in readonly mode"),
        (("readonly=1", b"CREATE TABLE t (x UInt8) ENGINE = Memory"), {}, 500, "164", "Code: 164. "),
        (("no_such_setting=1", b"SELECT 1"), {}, 404, "115", "Code: 115. DB::Exception: Unknown setting"),
        (("", b"SET max_threads = 1"), {}, 501, "48", "Code: 48. DB::Exception: SET keeps state"),
    ]
    for request, headers, status, code, start in refusals:
        answer = ask(*request, **headers)
        assert (answer[0], answer[1].get("X-ClickHouse-Exception-Code")) == (status, code), (request, answer)
        assert answer[2].decode().startswith(start), answer[2]
        assert re.search(rb"\(version 26[\d.]+\)\n$", answer[2]), answer[2]
    status, _, _ = ask("", b"CREATE TABLE t (x UInt8) ENGINE = Memory")  # a read-only request left nothing behind
    assert status == 200


def test_two_machines_importing_at_the_same_moment_into_a_new_database(clickhouse: StandIn, tmp_path: Path,
                                                                       ccusage_bin_dir: Path):
    """Nothing serialises machines on a server: two imports started at once into a new database both succeed, agree
    on one hash key (the same transcripts on both give the same session keys) and keep their own totals. Whether
    their schema and key creation really overlap depends on timing; the key's first-by-server-clock rule is what
    makes an overlap harmless."""
    database = clickhouse.database("race")
    end = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    machines = [machine_on(clickhouse, database, tmp_path, ccusage_bin_dir, name, 45, 6, end) for name in ("e", "w")]
    runs = [subprocess.Popen([sys.executable, str(IMPORTER)], env=m.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for m in machines]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    stored = sql_many(machines[0].env, {
        "tokens": "SELECT machine_name, sum(total_tokens) AS t FROM ccusage_usage_daily FINAL GROUP BY machine_name "
                  "ORDER BY machine_name",
        "keys": "SELECT machine_name, groupArray(session_key) AS k FROM (SELECT * FROM ccusage_usage_sessions FINAL "
                "ORDER BY session_key) GROUP BY machine_name ORDER BY machine_name"})
    assert stored["tokens"] == [{"machine_name": m.name, "t": m.truth.total().total} for m in machines]
    assert stored["keys"][0]["k"] == stored["keys"][1]["k"] and len(stored["keys"][0]["k"]) == len(
        machines[0].truth.by_session())


def test_every_named_query_answers_over_http_as_on_the_embedded_store(tmp_path: Path, ccusage_bin_dir: Path):
    """The same transcripts imported into the embedded store and into a server (one hash key, both in UTC): every
    named query gives the same rows, so what the server path decodes (every column type, over HTTP) is what the
    embedded one does."""
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    key = {"CCUSAGE_HASH_KEY": "one key for both stores"}
    with stand_in(tmp_path / "server", "UTC") as server:
        served = machine_on(server, server.database("same"), tmp_path, ccusage_bin_dir, "omega", 47, 15, end)
        embedded = {key: value for key, value in served.env.items() if not key.startswith("CH_")}
        for env in (served.env, embedded):
            import_ok({**env, **key})
        asked = {query.name: named_query(query.name, {}) for query in QUERIES}
        answers = [sql_many(env, asked) for env in (served.env, embedded)]
    served_rows, embedded_rows = ({name: [without_run_times(row) for row in rows] for name, rows in answer.items()}
                                  for answer in answers)
    assert [name for name in asked if served_rows[name] != embedded_rows[name]] == []
    assert sum(bool(rows) for rows in served_rows.values()) >= 50  # of 66: the agents' queries have no rows here


# Columns about the import run itself (when it ran, how long it took): the two stores' runs differ in them.
RUN_COLUMNS = {"last_import", "last_written", "minutes_since_write", "started_at", "seconds", "fetch_seconds",
               "write_seconds", "last_successful_import", "last_run", "hours_since"}


def without_run_times(row: dict) -> dict:
    return {column: value for column, value in row.items() if column not in RUN_COLUMNS}
