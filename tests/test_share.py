"""The share (issue 21): machines that publish their own rows to one folder or S3 bucket and each see every machine
under the ordinary table names. Real chDB, the real pinned ccusage, generated transcripts; S3 is moto_server on a
loopback port (tests/s3_server.py), skipped with the reason where it cannot start. A publish cut short is a fault
injected after each file the engine wrote (the files themselves are real)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import IMPORTER, free_port, run_ccusage, run_cli, sql
from s3_server import s3_server
from test_adversarial import one_error_line, run_on_read_only_store
from transcripts import append_activity, generate

import ccusage_importer as ci

KEY = "team-hash-key-0123456789"


@pytest.fixture
def machines(tmp_path, make_env, ccusage_bin_dir):
    """machines(name, seed, **settings): a machine with its own transcripts and store on the test's share folder;
    truth(env) is its own ccusage's daily totals (tokens, cost)."""
    share = tmp_path / "share"
    share.mkdir()

    def make(name: str, seed: int, **settings: str) -> dict:
        claude = tmp_path / name / "claude"
        if not claude.exists():
            generate(claude, seed=seed, days=4, sessions=4, end=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        return make_env(claude, machine=name, db=tmp_path / name / "store",
                        **{"CCUSAGE_HASH_KEY": KEY, "CCUSAGE_SHARE": str(share), **settings})

    def truth(env: dict) -> tuple[int, float]:
        totals = run_ccusage(ccusage_bin_dir, Path(env["CLAUDE_CONFIG_DIR"]), "daily")["totals"]
        return totals["totalTokens"], totals["totalCost"]

    make.share, make.truth = share, truth
    return make


def imported(env: dict, *args: str) -> str:
    done = run_cli(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def overview(env: dict) -> dict[str, tuple[int, float]]:
    """machine_overview as --query prints it: every machine's all-time tokens and cost."""
    done = run_cli(env, "--query", "machine_overview", "--format", "json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {row["machine_name"]: (row["tokens"], row["cost_usd"]) for row in rows}


def dashboard_freshness(env: dict, page: Path) -> tuple[dict[str, dict], list[str]]:
    """The dashboard's freshness table by machine, and the machines it offers to choose from."""
    assert run_cli(env, "--dashboard", str(page), "--quiet").returncode == 0
    data = json.loads(re.search(r'id="ccusage-data">(.*?)</script>', page.read_text(), re.S).group(1))
    freshness = data["shared"]["freshness"]
    rows = [dict(zip(freshness["columns"], row, strict=True)) for row in freshness["rows"]]
    return {row["machine_name"]: row for row in rows}, data["machines"]


def dashboard_machines(env: dict, folder: Path) -> tuple[list[str], list[str]]:
    """The machines of the dashboard's freshness table, each fresh, and those it offers to choose from."""
    freshness, machines = dashboard_freshness(env, folder / "dashboard.html")
    assert not any(row["is_stale"] for row in freshness.values()), freshness
    return sorted(freshness), machines


def same(seen: dict[str, tuple[int, float]], truths: dict[str, tuple[int, float]]) -> None:
    assert set(seen) == set(truths)
    for name, (tokens, cost) in truths.items():
        assert seen[name][0] == tokens, name
        assert seen[name][1] == pytest.approx(cost, abs=1e-3), name


def manifest(share: Path, machine: str) -> dict:
    return json.loads((share / ci.machine_folder(machine) / "manifest.json").read_text())


def test_two_machines_then_a_third_see_every_machine_with_its_own_totals(machines, tmp_path):
    laptop, desktop = machines("laptop", 1), machines("desktop", 2)
    imported(laptop)
    imported(desktop)
    truths = {"laptop": machines.truth(laptop), "desktop": machines.truth(desktop)}
    for env in (laptop, desktop):
        same(overview(env), truths)
    server = machines("server", 3)  # joins late
    imported(server)
    truths["server"] = machines.truth(server)
    for env in (laptop, desktop, server):
        same(overview(env), truths)
        assert dashboard_machines(env, tmp_path) == (sorted(truths), sorted(truths))
    # a plain --sql sees them too, and the import's summary names every machine
    plain = run_cli(laptop, "--sql", "SELECT DISTINCT machine_name FROM ccusage_usage_daily FINAL", "--format", "csv")
    assert sorted(plain.stdout.split()[1:]) == sorted(truths)
    summary = imported(laptop, "--force")
    assert all(f"{name}: $" in summary for name in truths), summary
    alerts = run_cli({**desktop, "CCUSAGE_BUDGET_MONTHLY_USD": "0.01"}, "--alerts")  # budgets of scope all
    assert alerts.returncode == 4 and all(name in alerts.stdout.split("all machines: ")[1] for name in truths)


def test_a_share_setting_that_is_not_one_is_one_line(tmp_path):
    base = {"HOME": str(tmp_path), "CCUSAGE_HASH_KEY": KEY}
    for settings, said in (
            ({"CCUSAGE_SHARE": "s3://No_Such Bucket/x"}, "is not an S3 bucket name"),
            ({"CCUSAGE_SHARE": "s3://team-usage/x"}, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            ({"CCUSAGE_SHARE": "s3://team-usage", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s3cret-1",
              "CCUSAGE_S3_ENDPOINT": "ftp://minio/path"}, "CCUSAGE_S3_ENDPOINT='ftp://minio/path' must be"),
            ({"CCUSAGE_SHARE": str(tmp_path), "CH_HOST": "clickhouse.example"}, "a server already holds")):
        with pytest.raises(ci.UserError, match=re.escape(said)) as refused:
            ci.Config.from_env({**base, **settings})
        assert refused.value.exit_code == 2 and "s3cret-1" not in str(refused.value)
    s3 = ci.Config.from_env({**base, "CCUSAGE_SHARE": "s3://team-usage/a b/c", "AWS_ACCESS_KEY_ID": "a",
                             "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-3"}).share
    assert s3.where == "https://team-usage.s3.eu-west-3.amazonaws.com/a%20b/c" and s3.s3


def test_a_re_import_publishes_nothing_new_and_deleted_transcripts_change_nothing(machines):
    laptop, desktop = machines("laptop", 4), machines("desktop", 5)
    imported(laptop)
    imported(desktop)
    first = manifest(machines.share, "laptop")
    files = {path: path.stat().st_mtime_ns for path in (machines.share / ci.machine_folder("laptop")).iterdir()}
    imported(laptop)
    imported(laptop, "--force")
    assert manifest(machines.share, "laptop") == first
    assert {p: p.stat().st_mtime_ns for p in (machines.share / ci.machine_folder("laptop")).iterdir()} == files
    state_file = Path(laptop["CCUSAGE_IMPORT_DB"]) / "ccusage-import-share.json"
    state = json.loads(state_file.read_text())
    state["published"]["at"] = "2026-01-01T00:00:00+00:00"  # a day without a publish: one is made all the same
    state_file.write_text(json.dumps(state))
    imported(laptop)
    second = manifest(machines.share, "laptop")
    assert second["generation"] != first["generation"] and second["slot"] == "b"
    path = machines.share / ci.machine_folder("laptop") / "manifest.json"
    path.write_text(json.dumps({**second, "generation": "not-the-one-it-wrote"}))
    imported(laptop, "--force")  # an import that opens the store notices, and publishes again
    assert manifest(machines.share, "laptop")["generation"] not in (second["generation"], "not-the-one-it-wrote")
    before = overview(desktop)
    for transcript in sorted(Path(laptop["CLAUDE_CONFIG_DIR"]).rglob("*.jsonl"))[:2]:  # Claude Code's cleanup
        transcript.unlink()
    imported(laptop)
    assert overview(desktop) == before == overview(laptop)


def test_a_machine_re_importing_into_a_new_store_republishes_the_same_rows(machines, tmp_path):
    laptop, desktop = machines("laptop", 6), machines("desktop", 7)
    imported(laptop)
    imported(desktop)
    before = overview(desktop)
    published = {t: e["rows"] for t, e in manifest(machines.share, "laptop")["tables"].items()
                 if t != "ccusage_import_runs"}
    fresh = {**laptop, "CCUSAGE_IMPORT_DB": str(tmp_path / "laptop" / "new-store")}
    imported(fresh)
    again = manifest(machines.share, "laptop")
    assert {t: e["rows"] for t, e in again["tables"].items() if t != "ccusage_import_runs"} == published
    assert overview(desktop) == before == overview(fresh)


def test_a_new_store_gets_its_machines_history_back_from_the_share_before_it_publishes(machines, tmp_path):
    """Claude Code's cleanup deleted a transcript, then the store was lost: the new store's first import restores
    the machine's published history and publishes it whole, not less. While the share cannot be read, nothing is
    published over it (one line, exit 1); the next import restores it and reads everything over it."""
    laptop, desktop = machines("laptop", 8), machines("desktop", 9)
    imported(laptop)
    imported(desktop)
    whole = machines.truth(laptop)
    oldest = min((Path(laptop["CLAUDE_CONFIG_DIR"]) / "projects").rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    oldest.unlink()
    assert machines.truth(laptop)[0] < whole[0]
    published = manifest(machines.share, "laptop")["tables"]["ccusage_usage_daily"]
    fresh = {**laptop, "CCUSAGE_IMPORT_DB": str(tmp_path / "laptop" / "new-store")}
    assert "history was restored from the share" in imported(fresh)
    same(overview(fresh), {"laptop": whole, "desktop": machines.truth(desktop)})
    assert manifest(machines.share, "laptop")["tables"]["ccusage_usage_daily"]["rows"] == published["rows"]
    same(overview(desktop), {"laptop": whole, "desktop": machines.truth(desktop)})

    again = {**laptop, "CCUSAGE_IMPORT_DB": str(tmp_path / "laptop" / "third-store")}
    machines.share.rename(tmp_path / "away")
    done = run_cli(again)
    published_and_recorded(done, again, 1)
    assert "the folder does not exist" in done.stdout, done.stdout
    (tmp_path / "away").rename(machines.share)
    assert "history was restored from the share" in imported(again)  # the owed restore, though nothing changed
    same(overview(again), {"laptop": whole, "desktop": machines.truth(desktop)})
    same(overview(desktop), {"laptop": whole, "desktop": machines.truth(desktop)})


def test_other_machines_rows_never_enter_the_importers_plan_nor_its_published_files(machines):
    """The plan reads and writes rows of its own machine only: with another machine's rows loaded, a forced
    re-import writes nothing, and what it publishes holds its own rows alone."""
    laptop, desktop = machines("laptop", 8), machines("desktop", 9)
    imported(laptop)
    imported(desktop)
    imported(laptop)  # loads desktop
    forced = imported(laptop, "--force")
    assert re.search(r"ccusage_usage_daily\s+0\s+0\s+\d+\s+0", forced), forced
    published = manifest(machines.share, "laptop")["tables"]
    own = sql(laptop, "SELECT count() AS n FROM ccusage_usage_daily FINAL WHERE machine_name = 'laptop'")[0]["n"]
    assert published["ccusage_usage_daily"]["rows"] == own
    assert sql(laptop, "SELECT count() AS n FROM ccusage_usage_daily FINAL WHERE machine_name = 'desktop'")[0]["n"]


def add_activity(env: dict, seed: int) -> None:
    append_activity(Path(env["CLAUDE_CONFIG_DIR"]), start=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=90),
                    minutes=30, lines=40, seed=seed)


@pytest.mark.parametrize("cut_after", range(len(ci.SHARED_TABLES) + 1))
def test_a_publish_cut_short_anywhere_leaves_the_share_readable_and_the_next_import_repairs_it(
        machines, monkeypatch, cut_after):
    """The fault comes after `cut_after` files were written (the last case: every file, before the manifest)."""
    laptop, desktop = machines("laptop", 10), machines("desktop", 11)
    imported(laptop)
    imported(desktop)
    before = overview(desktop)
    add_activity(laptop, seed=cut_after)
    written, write_table = [], ci.Share.write_table

    def cut(share, *args):
        if len(written) == cut_after:
            raise ci.ShareError("injected fault: the publish is cut short here")
        written.append(args)
        return write_table(share, *args)

    if cut_after < len(ci.SHARED_TABLES):
        monkeypatch.setattr(ci.Share, "write_table", cut)
    else:
        monkeypatch.setattr(ci.Share, "write_json", _failing_manifest(ci.Share.write_json))
    done = run_cli(laptop)
    assert done.returncode == 1 and done.stdout.count("❌") == 1 and "the next one publishes again" in done.stdout
    assert sql(laptop, "SELECT count() AS n FROM ccusage_import_runs WHERE status = 'ok'")[0]["n"] == 2
    assert overview(desktop) == before  # the last generation, whole
    monkeypatch.undo()
    imported(laptop)  # nothing new in the transcripts: the publish owed is made
    same(overview(desktop), {"laptop": machines.truth(laptop), "desktop": machines.truth(desktop)})


def _failing_manifest(write_json):
    def write(share, relative, value):
        if relative.endswith("manifest.json"):
            raise ci.ShareError("injected fault before the manifest")
        return write_json(share, relative, value)
    return write


def published_and_recorded(done, laptop: dict, runs: int) -> None:
    """The import succeeded and was recorded; the publish failure is one ❌ line and exit 1."""
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert done.stdout.count("❌") == 1 and "the next one publishes again" in done.stdout, done.stdout
    assert sql(laptop, "SELECT count() AS n FROM ccusage_import_runs WHERE status IN ('ok', 'unchanged')"
               )[0]["n"] == runs


def test_a_missing_or_read_only_share_fails_the_publish_alone_and_the_next_import_publishes(machines, tmp_path):
    laptop = machines("laptop", 12)
    missing = {**laptop, "CCUSAGE_SHARE": str(tmp_path / "unmounted")}
    done = run_cli(missing)
    published_and_recorded(done, laptop, 1)
    assert "the folder does not exist" in done.stdout
    assert not (tmp_path / "unmounted").exists()  # never created: a mount point left empty stays empty
    check = run_cli(missing, "--check")
    assert check.returncode == 1 and "❌ share: " in check.stdout and "the folder does not exist" in check.stdout
    assert "fix: mount or sync the folder" in check.stdout, check.stdout
    done = run_on_read_only_store(laptop, folder=str(machines.share))
    published_and_recorded(done, laptop, 2)
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert f": {reason}: this import is recorded" in done.stdout and "Code:" not in done.stdout, done.stdout
    assert not list(machines.share.iterdir())
    imported(laptop)  # transcripts unchanged: the publish owed is made all the same
    assert manifest(machines.share, "laptop")["tables"]["ccusage_usage_daily"]["rows"] > 0


def test_a_full_share_fails_the_publish_alone(machines):
    """A share on a file system with 16 KiB of room (a tmpfs in a mount namespace of the importer's own, as root)."""
    laptop = machines("laptop", 26)
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or not unshare or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs root and a mount namespace of its own to mount a small file system")
    script = 'mount -t tmpfs -o size=16k tmpfs "$0" && exec "$@"'
    done = subprocess.run([unshare, "-m", "sh", "-c", script, str(machines.share), sys.executable, str(IMPORTER)],
                          env=laptop, capture_output=True, text=True, timeout=300)
    published_and_recorded(done, laptop, 1)
    assert "is the share full?" in done.stdout or "No space left on device" in done.stdout, done.stdout
    imported(laptop)
    assert manifest(machines.share, "laptop")["tables"]["ccusage_usage_daily"]["rows"] > 0


def test_two_machines_of_one_name_are_told_so(machines, tmp_path):
    """Two stores publishing as one MACHINE_NAME overwrite each other's rows in the share: the store that finds its
    machine's manifest written by another store since its own last publish says so (the first publish cannot
    know)."""
    laptop = machines("laptop", 14)
    twin = {**machines("twin", 15), "MACHINE_NAME": "laptop"}
    first = run_cli(laptop)
    assert first.returncode == 0 and "two machines named" not in first.stdout + first.stderr
    assert "two machines named" not in imported(twin)
    add_activity(laptop, 16)
    done = run_cli(laptop)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "two machines named laptop? Give each its own MACHINE_NAME" in done.stdout + done.stderr
    add_activity(laptop, 17)
    again = run_cli(laptop)  # its own manifest now: nothing to say
    assert again.returncode == 0 and "two machines named" not in again.stdout + again.stderr


def test_a_share_needs_the_hash_key_and_refuses_another_key_or_time_zone(machines):
    laptop = machines("laptop", 13)
    imported(laptop)
    keyless = {k: v for k, v in machines("desktop", 14).items() if k != "CCUSAGE_HASH_KEY"}
    assert "CCUSAGE_SHARE needs CCUSAGE_HASH_KEY" in one_error_line(run_cli(keyless), 2)
    other_key = machines("desktop", 14, CCUSAGE_HASH_KEY="another-key-98765")
    done = run_cli(other_key)
    assert done.returncode == 2 and done.stdout.count("❌") == 1, done.stdout
    assert "hashed with another CCUSAGE_HASH_KEY" in done.stdout and "another-key-98765" not in done.stdout
    assert "another CCUSAGE_HASH_KEY" in one_error_line(run_cli(other_key, "--query", "machine_overview"), 2)
    other_zone = machines("tokyo", 15, CCUSAGE_TIMEZONE="Asia/Tokyo")
    done = run_cli(other_zone)
    assert done.returncode == 2 and "counted in 'UTC', this machine's in 'Asia/Tokyo'" in done.stdout, done.stdout
    assert sorted(p.name.split("-")[0] for p in (machines.share / "machines").iterdir()) == ["laptop"]


def test_a_damaged_or_foreign_file_is_named_and_skipped(machines):
    laptop, desktop = machines("laptop", 16), machines("desktop", 17)
    imported(laptop)
    imported(desktop)
    daily = machines.share / ci.machine_folder("desktop") / manifest(machines.share, "desktop")["tables"][
        "ccusage_usage_daily"]["file"]
    daily.write_bytes(b"not parquet at all")
    foreign = machines.share / "machines" / "intruder-00000000"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"machine": "laptop", "tables": {"x": {"file": "../../etc/passwd"}}}')
    fresh = {**laptop, "CCUSAGE_IMPORT_DB": str(machines.share.parent / "laptop" / "other-store")}
    imported(fresh)
    done = run_cli(fresh, "--query", "machine_overview", "--format", "csv")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    notes = done.stderr.splitlines()
    assert any("machines/intruder-00000000/manifest.json skipped: not a manifest" in n for n in notes), notes
    assert any("machine desktop not loaded" in n and "ccusage_usage_daily" in n for n in notes), notes
    assert [line.split(",")[0] for line in done.stdout.splitlines()[1:]] == ["laptop"]


def test_the_dashboard_shows_each_machine_of_the_share_fresh_or_stale_by_its_last_publish(machines, browser):
    laptop, desktop, server = machines("laptop", 27), machines("desktop", 28), machines("server", 29)
    for env in (laptop, desktop, server):
        imported(env)
    path = machines.share / ci.machine_folder("desktop") / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "published_at": "2026-01-02T03:04:05+00:00"}))
    page = machines.share.parent / "dashboard.html"
    dashboard_freshness(laptop, page)
    browser.open(page.as_uri())
    assert browser.evaluate("document.documentElement.dataset.state") == "ready"
    rows = browser.evaluate("[...document.querySelectorAll('#freshness tr')].map((r) => "
                            "[r.cells[0].textContent, r.cells[4].textContent, r.className])")
    published = manifest(machines.share, "server")["published_at"].replace("T", " ")[:16]
    assert sorted(rows) == [["desktop", "⚠ no publish since 2026-01-02 03:04 UTC", "stale"],
                            ["laptop", "✓ fresh", ""],
                            ["server", f"✓ published {published} UTC", ""]]
    note = browser.evaluate("document.getElementById('freshness-note').textContent")
    assert "another machine of the share when it has not published for 3 days" in note and "1 of 3 silent" in note


def test_without_the_share_reads_answer_from_the_rows_loaded_before_and_an_unchanged_import_needs_none(machines):
    laptop, desktop = machines("laptop", 23), machines("desktop", 24)
    imported(desktop)
    imported(laptop)
    truths = overview(laptop)
    machines.share.rename(machines.share.with_name("unmounted"))
    done = run_cli(laptop, "--query", "machine_overview", "--format", "json")
    assert done.returncode == 0
    assert sorted(json.loads(line)["machine_name"] for line in done.stdout.splitlines()) == sorted(truths)
    assert done.stderr.startswith("⚠️ share ") and done.stderr.count("\n") == 1, done.stderr
    assert "the folder does not exist (is the synced folder or the mount there?): showing the rows loaded before" \
        in done.stderr
    assert "❌" not in imported(laptop)  # nothing new: no engine, no share


def test_a_machine_that_stopped_publishing_is_shown_stale_with_its_last_publish(machines):
    laptop, desktop = machines("laptop", 18), machines("desktop", 19)
    imported(laptop)
    imported(desktop)
    path = machines.share / ci.machine_folder("desktop") / "manifest.json"
    old = json.loads(path.read_text())
    old["published_at"] = "2026-01-02T03:04:05+00:00"
    path.write_text(json.dumps(old))
    done = run_cli(laptop, "--query", "machine_overview")
    assert "machine desktop is stale: last published 2026-01-02 03:04 UTC" in done.stderr, done.stderr
    check = run_cli(laptop, "--check")
    assert "desktop (stale: last published 2026-01-02 03:04 UTC)" in check.stdout, check.stdout
    freshness, _ = dashboard_freshness(laptop, machines.share.parent / "dashboard.html")
    assert (freshness["desktop"]["is_stale"], freshness["desktop"]["last_publish"]) == (1, "2026-01-02T03:04:05Z")
    assert (freshness["laptop"]["is_stale"], freshness["laptop"]["last_publish"]) == (0, None)
    before = overview(laptop)
    for file in path.parent.iterdir():  # gone from the share: its rows stay where they were loaded
        file.unlink()
    path.parent.rmdir()
    assert overview(laptop) == before and "desktop" in before


# -- the same over S3 (moto_server on a loopback port) --------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    try:
        with s3_server() as server:
            yield server
    except RuntimeError as exc:
        pytest.skip(f"no S3 server for the share's tests: {exc}")


def s3_objects(server, prefix: str) -> dict[str, bytes]:
    import boto3
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=server.key_id, aws_secret_access_key=server.secret)
    listed = client.list_objects_v2(Bucket=server.bucket, Prefix=prefix).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=server.bucket, Key=item["Key"])["Body"].read() for item in listed}


def test_over_s3_machines_see_each_other_and_no_credential_is_left_anywhere(machines, s3, tmp_path):
    laptop, desktop = (machines(name, seed, **s3.env("team-a")) for name, seed in (("laptop", 20), ("desktop", 21)))
    outputs = [run_cli(laptop), run_cli(desktop)]
    assert all(done.returncode == 0 for done in outputs), [d.stdout + d.stderr for d in outputs]
    truths = {"laptop": machines.truth(laptop), "desktop": machines.truth(desktop)}
    for env in (laptop, desktop):
        same(overview(env), truths)
    objects = s3_objects(s3, "team-a/")
    manifest_key = f"team-a/{ci.machine_folder('laptop')}/manifest.json"
    assert {"team-a/share.json", manifest_key} <= set(objects)
    outputs += [run_cli(laptop, "--force"), run_cli(laptop, "--check")]
    assert all(done.returncode == 0 for done in outputs[2:]), [d.stdout + d.stderr for d in outputs]
    probe = f"team-a/{ci.machine_folder('laptop')}/check-probe.json"  # --check writes it, as a publish would
    assert {key: data for key, data in s3_objects(s3, "team-a/").items() if key != probe} == objects
    assert "share: http://127.0.0.1" in outputs[-1].stdout and "desktop (published" in outputs[-1].stdout
    add_activity(laptop, seed=25)  # a second publish overwrites the manifest in one PUT, into the other slot
    outputs.append(run_cli(laptop))
    assert manifest_of(s3, "team-a", "laptop")["slot"] == "b"
    truths["laptop"] = machines.truth(laptop)
    same(overview(desktop), truths)
    objects = s3_objects(s3, "team-a/")
    everything = b"".join(objects.values()) + b"".join(
        p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "claude" not in p.parts)
    for secret in (s3.secret, s3.secret.encode().hex(), KEY):
        assert secret.encode() not in everything
        assert all(secret not in done.stdout + done.stderr for done in outputs)


def manifest_of(server, prefix: str, machine: str) -> dict:
    return json.loads(s3_objects(server, f"{prefix}/{ci.machine_folder(machine)}/")[
        f"{prefix}/{ci.machine_folder(machine)}/manifest.json"])


def test_over_s3_refused_credentials_or_an_endpoint_down_fail_the_publish_alone(machines, s3):
    laptop = machines("laptop", 22, **{**s3.env("team-b"), "AWS_SECRET_ACCESS_KEY": "wrong-secret-123456"})
    done = run_cli(laptop)
    published_and_recorded(done, laptop, 1)
    assert "wrong-secret-123456" not in done.stdout + done.stderr
    down = {**laptop, "CCUSAGE_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    clock = time.monotonic()
    published_and_recorded(run_cli(down), laptop, 2)
    assert time.monotonic() - clock < 60
    assert not s3_objects(s3, "team-b/")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        clock = time.monotonic()
        done = run_cli({**laptop, "CCUSAGE_S3_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        published_and_recorded(done, laptop, 3)
        assert time.monotonic() - clock < 60
    imported({**laptop, **s3.env("team-b")})  # right again: the publish owed is made
    assert f"team-b/{ci.machine_folder('laptop')}/manifest.json" in s3_objects(s3, "team-b/")


# -- the share's files, without an import -------------------------------------------------------------------------


def a_manifest(machine: str = "laptop", **changes) -> dict:
    return {"format": 1, "machine": machine, "generation": "g1", "slot": "a",
            "published_at": "2026-12-01T10:00:00+00:00", "key_fingerprint": ci.key_fingerprint(KEY), "timezone": "UTC",
            "tables": {"ccusage_usage_daily": {"file": "ccusage_usage_daily.a.parquet", "rows": 3, "bytes": 900},
                       "ccusage_alerts": {"file": None, "rows": 0, "bytes": 0}}, **changes}


@pytest.mark.parametrize("change", [
    {"tables": {"ccusage_usage_daily": {"file": "../../../etc/passwd", "rows": 1, "bytes": 1}}},
    {"tables": {"ccusage_usage_daily": {"file": "ccusage_usage_monthly.a.parquet", "rows": 1, "bytes": 1}}},
    {"tables": {"claude_api_costs": {"file": "claude_api_costs.a.parquet", "rows": 1, "bytes": 1}}},
    {"tables": {"ccusage_usage_daily": {"file": None, "rows": 5, "bytes": 0}}},
    {"machine": "desktop"},  # not the machine of the folder it is in
    {"machine": "laptop\n"}, {"published_at": "yesterday"}, {"published_at": "2026-12-01T10:00:00"}, {"tables": []},
])
def test_a_manifest_names_only_its_own_tables_slots_in_its_own_machines_folder(change):
    folder = ci.machine_folder("laptop")
    assert isinstance(ci.parse_manifest(json.dumps(a_manifest()), folder), dict)
    assert ci.parse_manifest(json.dumps(a_manifest(**change)), folder).startswith("not a manifest")
    assert ci.parse_manifest("not json", folder).startswith("not a manifest")


def test_machine_folders_are_safe_for_any_file_system_and_apart_for_names_that_read_the_same():
    names = ["laptop", "Lap Top/../x", "lap top", "lap_top", "ノート", ".hidden", "a" * 128]
    folders = [ci.machine_folder(name) for name in names]
    assert len(set(folders)) == len(names)
    assert all(re.fullmatch(r"machines/[A-Za-z0-9][A-Za-z0-9._-]{0,59}-[0-9a-f]{8}", f) or
               re.fullmatch(r"machines/machine-[0-9a-f]{8}", f) for f in folders), folders


def test_the_shared_tables_are_the_schemas_tables_of_machines():
    assert set(ci.SHARED_TABLES) == {n for n in ci.schema_names("table") if "machine_name" in ci.SCHEMA[n].columns}
    assert {t.name for t in ci.USAGE_TABLES} | {"ccusage_import_runs", *ci.CHILD_TABLES} <= set(ci.SHARED_TABLES)
