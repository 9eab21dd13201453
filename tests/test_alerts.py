"""Budgets and alerts across machines (issue 14, part 1): the pure evaluation on its own; then real chDB stores
filled by real imports of generated transcripts (the pinned ccusage), a loopback webhook receiver and a stand-in
notify-send. Each breach is POSTed once per period, across runs and across two machines writing to one store; nothing
is POSTed under budget; the webhook URL's tokens are never printed or stored; --alerts exits 4 on a breach.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import cli_env, run_cli, sql, sql_many
from echo_server import credential_forms
from transcripts import GroundTruth, append_activity, generate

import ccusage_importer as ci

TOKENS = ("T0ALERT42", "B0ALERT43", "xoxbWebhookSecret0123456789")  # a Slack-style incoming webhook's path
DAY = dt.date(2026, 11, 21)


# ---------------------------------------------------------------------------------------------------------------
# A loopback webhook receiver and a stand-in notify-send
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Post:
    path: str
    content_type: str
    body: dict


@dataclass
class Receiver:
    """Where the receiver listens (its URL carries TOKENS in the path), what it got, and what it answers next."""

    url: str
    posts: list[Post] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses for the next POSTs, then 200
    hang: threading.Event | None = None  # set: answer; unset: hold every request until the test ends


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        receiver.posts.append(Post(self.path, self.headers.get("Content-Type", ""), json.loads(body)))
        if receiver.hang is not None:
            receiver.hang.wait(10)
        status = receiver.answers.pop(0) if receiver.answers else 200
        answer = f"{status} for {self.path}".encode()  # echoes the secret path: a client must never print it
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@contextmanager
def webhook_receiver(answers: Sequence[int] = (), hang: bool = False) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/services/{'/'.join(TOKENS)}",
                               answers=list(answers), hang=threading.Event() if hang else None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        if server.receiver.hang is not None:
            server.receiver.hang.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


RECORDER = """#!/bin/sh
# Stands in for a desktop notifier: records its arguments (one call a line, \\037 between them), shows nothing.
printf '%s\\037' "$@" >> "${0%/*}/calls"
printf '\\n' >> "${0%/*}/calls"
"""


def stand_in(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(RECORDER)
    (folder / name).chmod(0o755)
    return folder


def calls(folder: Path) -> list[list[str]]:
    path = folder / "calls"
    return [line.split("\x1f")[:-1] for line in path.read_text().splitlines()] if path.exists() else []


def assert_no_webhook_secret(text: str) -> None:
    for token in TOKENS:
        for form, value in credential_forms("hook", token).items():
            assert value not in text, f"a webhook token leaked as {form}: {text}"


# ---------------------------------------------------------------------------------------------------------------
# The evaluation, pure
# ---------------------------------------------------------------------------------------------------------------


def block(machine: str, hour: int, tokens: int, projected: int | None) -> ci.ActiveBlock:
    start = dt.datetime(2026, 11, 21, hour, tzinfo=dt.UTC)
    return ci.ActiveBlock(machine, start, start + dt.timedelta(hours=5), tokens, projected)


def test_cost_budgets_add_up_every_machine_and_are_over_only_when_strictly_above():
    usage = ci.BudgetUsage(DAY, {"desk": 4.25, "laptop": 6.5, "idle": 0.0}, {"desk": 40.0, "laptop": 60.0})
    states = ci.evaluate_budgets(ci.Budgets(daily_usd=10.0, monthly_usd=100.0), usage, "all")
    assert states == [
        ci.BudgetState(kind="daily_cost", period="2026-11-21", scope="all", limit=10.0, value=10.75,
                       machines=("desk", "laptop"), status="exceeded"),
        ci.BudgetState(kind="monthly_cost", period="2026-11", scope="all", limit=100.0, value=100.0,
                       machines=("desk", "laptop"), status="ok"),
    ]
    assert states[0].text() == ("🚨 budget exceeded: daily cost $10.75 over the $10.00 budget on 2026-11-21 "
                                "(all machines: desk, laptop)")
    assert states[1].text() == "monthly cost $100.00 of the $100.00 budget in 2026-11 (all machines: desk, laptop)"
    own = ci.evaluate_budgets(ci.Budgets(daily_usd=5.0, scope="machine"), ci.BudgetUsage(DAY, {"desk": 4.25}, {}),
                              "machine:desk")
    assert own == [ci.BudgetState(kind="daily_cost", period="2026-11-21", scope="machine:desk", limit=5.0,
                                  value=4.25, machines=("desk",), status="ok")]
    assert own[0].key == {"kind": "daily_cost", "period": "2026-11-21", "scope": "machine:desk"}
    assert ci.evaluate_budgets(ci.Budgets(), usage, "all") == []


def test_block_budget_sums_the_active_blocks_and_warns_on_the_projection():
    usage = ci.BudgetUsage(DAY, {}, {}, (block("laptop", 15, 600_000, 900_000), block("desk", 16, 300_000, None)),
                           largest_block=1_200_000)
    exceeded, = ci.evaluate_budgets(ci.Budgets(block_tokens=800_000), usage, "all")
    assert exceeded == ci.BudgetState(kind="block_tokens", period="2026-11-21 15:00 UTC", scope="all", limit=800_000,
                                      value=900_000, machines=("desk", "laptop"), status="exceeded",
                                      until="2026-11-21 21:00 UTC")
    assert exceeded.text() == ("🚨 budget exceeded: 5-hour block 900,000 tokens over the 800,000-token limit in the "
                               "block from 2026-11-21 15:00 UTC (all machines: desk, laptop)")
    # Not over yet (900,000 is not above 900,000), but the projection is: laptop's 900,000 plus desk's 300,000.
    will, = ci.evaluate_budgets(ci.Budgets(block_tokens=900_000), usage, "all")
    assert (will.kind, will.status, will.value, will.so_far) == ("block_projection", "will exceed", 1_200_000, 900_000)
    assert will.text() == ("⚠️ budget will be exceeded: 5-hour block projected to reach 1,200,000 tokens by its end at "
                           "2026-11-21 21:00 UTC (now 900,000), over the 900,000-token limit in the block from "
                           "2026-11-21 15:00 UTC (all machines: desk, laptop)")
    # `max` is the largest finished block, as ccusage's --token-limit max: 1,200,000 is not exceeded by 1,200,000.
    at_max, = ci.evaluate_budgets(ci.Budgets(block_tokens_max=True), usage, "all")
    assert (at_max.kind, at_max.status, at_max.limit, at_max.limit_is_max) == ("block_tokens", "ok", 1_200_000, True)
    assert at_max.text().startswith("5-hour block 900,000 tokens of the 1,200,000-token limit (max: the largest")


def test_a_block_budget_without_an_active_block_or_a_finished_one_for_max_is_no_breach():
    idle = ci.BudgetUsage(DAY, {}, {}, (), largest_block=5)
    assert [s.text() for s in ci.evaluate_budgets(ci.Budgets(block_tokens=1), idle, "all")] == [
        "5-hour block: none active (all machines: none)"]
    fresh = ci.BudgetUsage(DAY, {}, {}, (block("laptop", 15, 10, 20),), largest_block=0)
    state, = ci.evaluate_budgets(ci.Budgets(block_tokens_max=True), fresh, "machine:laptop")
    assert state.status == "ok"
    assert state.text() == "5-hour block: no finished block yet to take the max limit from (machine laptop)"


# ---------------------------------------------------------------------------------------------------------------
# Settings and secrets
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("CCUSAGE_BUDGET_DAILY_USD", "ten"), ("CCUSAGE_BUDGET_DAILY_USD", "$10"), ("CCUSAGE_BUDGET_DAILY_USD", "0"),
    ("CCUSAGE_BUDGET_MONTHLY_USD", "-5"), ("CCUSAGE_BUDGET_MONTHLY_USD", "1" * 400),
    ("CCUSAGE_BLOCK_TOKEN_LIMIT", "maximum"), ("CCUSAGE_BLOCK_TOKEN_LIMIT", "0"), ("CCUSAGE_BLOCK_TOKEN_LIMIT", "1.5"),
    ("CCUSAGE_BLOCK_TOKEN_LIMIT", str(2 ** 64)), ("CCUSAGE_BUDGET_SCOPE", "team"), ("CCUSAGE_ALERT_DESKTOP", "yes"),
])
def test_an_invalid_budget_setting_is_a_usage_error_naming_it(name, value):
    with pytest.raises(ci.UserError) as error:
        ci.Config.from_env({"HOME": "/h", name: value})
    assert error.value.exit_code == ci.EXIT_USAGE and str(error.value).startswith(f"{name}=")


def test_budget_settings_are_read_from_the_environment():
    config = ci.Config.from_env({"HOME": "/h", "CCUSAGE_BUDGET_DAILY_USD": "7.50", "CCUSAGE_BUDGET_MONTHLY_USD": "200",
                                 "CCUSAGE_BLOCK_TOKEN_LIMIT": "MAX", "CCUSAGE_BUDGET_SCOPE": "machine"})
    assert config.budgets == ci.Budgets(7.5, 200.0, None, True, "machine") and config.budgets.any
    assert ci.Config.from_env({"HOME": "/h", "CCUSAGE_BLOCK_TOKEN_LIMIT": "500000"}).budgets == ci.Budgets(
        block_tokens=500_000)
    assert not ci.Config.from_env({"HOME": "/h"}).budgets.any


@pytest.mark.parametrize("url", ["ftp://hooks.example/T0ALERT42", "hooks.example/T0ALERT42", "file:///etc/T0ALERT42"])
def test_a_webhook_that_is_not_an_http_url_is_refused_without_showing_it(url, tmp_path):
    env = cli_env(tmp_path, tmp_path, tmp_path / "store", None, "laptop", CCUSAGE_ALERT_WEBHOOK=url,
                  CCUSAGE_BUDGET_DAILY_USD="1")
    done = run_cli(env, "--alerts", timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("error: CCUSAGE_ALERT_WEBHOOK is not an http:// or https:// URL (its value is not shown: "
                           "it is a secret)\n")
    assert not (tmp_path / "store").exists()


def test_alerts_without_a_budget_and_an_invalid_value_are_one_line_usage_errors(tmp_path):
    env = cli_env(tmp_path, tmp_path, tmp_path / "store", None, "laptop")
    done = run_cli(env, "--alerts", timeout=60)
    assert (done.returncode, done.stderr) == (2, "error: --alerts: no budget is set (CCUSAGE_BUDGET_DAILY_USD, "
                                                 "CCUSAGE_BUDGET_MONTHLY_USD or CCUSAGE_BLOCK_TOKEN_LIMIT)\n")
    done = run_cli({**env, "CCUSAGE_BLOCK_TOKEN_LIMIT": "lots"}, timeout=60)
    assert (done.returncode, done.stderr) == (2, "error: CCUSAGE_BLOCK_TOKEN_LIMIT='lots' must be a whole number from "
                                                 f"1 to {2**64 - 1} (tokens; or max: the largest block seen)\n")
    done = run_cli(env, "--alerts", "--sql", "SELECT 1", timeout=60)
    assert done.returncode == 2 and "not allowed with argument" in done.stderr
    assert not (tmp_path / "store").exists()


def test_the_webhook_url_is_redacted_in_every_form_and_kept_from_ccusage():
    url = f"https://hooks.example.com/services/{'/'.join(TOKENS)}?sig=Abc123def456"
    config = ci.Config.from_env({"HOME": "/h", "CCUSAGE_ALERT_WEBHOOK": url})
    forms = [url, f"/services/{'/'.join(TOKENS)}?sig=Abc123def456", "Abc123def456",
             *(value for token in TOKENS for value in credential_forms("hook", token).values())]
    redacted = config.redact(" | ".join(forms))
    assert_no_webhook_secret(redacted)
    assert url not in redacted and "Abc123def456" not in redacted and "hooks.example.com" not in redacted
    assert "services" in config.redact("services") and url not in repr(config)
    environment = ci.child_environment({"PATH": "/bin", "HOME": "/h", "CCUSAGE_ALERT_WEBHOOK": url,
                                        "NODE_PATH": f"/n {url}"})
    assert environment == {"PATH": "/bin", "HOME": "/h"}


# ---------------------------------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------------------------------


def test_the_webhook_gets_a_json_text_and_one_retry():
    with webhook_receiver(answers=[503]) as hook:
        assert ci.post_webhook(hook.url, "over budget", time.monotonic() + 10) is None
    assert [(p.path, p.content_type, p.body) for p in hook.posts] == [
        (f"/services/{'/'.join(TOKENS)}", "application/json", {"text": "over budget"})] * 2
    with webhook_receiver(answers=[500, 500, 500]) as hook:
        assert ci.post_webhook(hook.url, "over budget", time.monotonic() + 10) == "HTTP 500 (2 attempts)"
    assert len(hook.posts) == 2


def test_a_webhook_that_never_answers_holds_nothing_up_for_long():
    with webhook_receiver(hang=True) as hook:
        clock = time.monotonic()
        assert ci.post_webhook(hook.url, "x", clock + 10, timeout=0.3) == "timed out (2 attempts)"
        assert time.monotonic() - clock < ci.WEBHOOK_RETRY_DELAY + 2
        assert ci.post_webhook(hook.url, "x", time.monotonic() - 1) == "no time left (0 attempts)"
    assert len(hook.posts) == 2


def test_a_desktop_notification_uses_notify_send_or_osascript(tmp_path):
    linux = stand_in(tmp_path / "linux", "notify-send")
    assert ci.desktop_notify("🚨 budget exceeded: x", {"PATH": str(linux)}) is None
    assert calls(linux) == [["ccusage-import", "🚨 budget exceeded: x"]]
    mac = stand_in(tmp_path / "mac", "osascript")
    assert ci.desktop_notify('say "hi"', {"PATH": str(mac)}) is None
    assert calls(mac) == [["-e", "on run argv", "-e", 'display notification (item 1 of argv) with title '
                           '"ccusage-import"', "-e", "end run", 'say "hi"']]  # the text is an argument, never code
    assert ci.desktop_notify("x", {"PATH": str(tmp_path / "empty")}) == "neither notify-send nor osascript is on PATH"


def test_racing_claims_agree_on_one_winner(tmp_path):
    """Four runs claim each breach at the same moment (threads on one real engine, each insert before any read-back):
    exactly one of them wins, every time, and a later claim sees the winner and inserts nothing."""
    config = ci.Config.from_env({"HOME": str(tmp_path), "CCUSAGE_IMPORT_DB": str(tmp_path / "db"),
                                 "MACHINE_NAME": "laptop"})
    store = ci.Store.open(config)

    def claim(breach: ci.BudgetState, start: threading.Barrier, won: list[bool]) -> None:
        start.wait()
        won.append(ci.BudgetStore(store).claim_alert(breach, 0.2)[0])

    try:
        for day in range(1, 6):
            breach = ci.BudgetState(kind="daily_cost", period=f"2026-11-{day:02d}", scope="all", limit=1.0,
                                    value=2.0, machines=("laptop",), status="exceeded")
            start, won = threading.Barrier(4), []
            racers = [threading.Thread(target=claim, args=(breach, start, won)) for _ in range(4)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(30)
            assert sorted(won) == [False, False, False, True]
            rows = store.query("SELECT count() FROM ccusage_alerts WHERE period = {p:String}", {"p": breach.period})
            assert ci.BudgetStore(store).claim_alert(breach, 0.0)[0] is False
            assert store.query("SELECT count() FROM ccusage_alerts WHERE period = {p:String}",
                               {"p": breach.period}) == rows
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------------------------
# End to end: real imports into one store
# ---------------------------------------------------------------------------------------------------------------


def now_minute() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


def recent_history(root: Path, seed: int, lines: int = 150) -> GroundTruth:
    """Two days of sessions that ended 6 hours ago, then the last half hour's: today has usage and a 5-hour block is
    active (it started under an hour ago)."""
    now = now_minute()
    generate(root, seed=seed, days=2, sessions=5, lines_per_session=12, end=now - dt.timedelta(hours=6))
    start = max(now - dt.timedelta(minutes=40), now.replace(hour=0, minute=0))
    return append_activity(root, start=start, minutes=30, lines=lines, seed=seed)


def costs(env: dict) -> dict[str, list[dict]]:
    return sql_many(env, {
        "day": "SELECT machine_name, sum(total_cost) AS cost FROM ccusage_usage_daily FINAL WHERE date = today() "
               "GROUP BY machine_name ORDER BY machine_name",
        "month": "SELECT machine_name, sum(total_cost) AS cost FROM ccusage_usage_monthly FINAL WHERE month = "
                 "toStartOfMonth(today()) GROUP BY machine_name ORDER BY machine_name"})


def total(rows: list[dict], *machines: str) -> str:
    return f"${math.fsum(row['cost'] for row in rows if row['machine_name'] in machines):,.2f}"


def lines_with(output: str, text: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


def test_each_breach_is_posted_once_across_runs_and_two_machines(tmp_path, make_env):
    recent_history(tmp_path / "laptop", seed=41)
    recent_history(tmp_path / "desk", seed=42)
    desktop = stand_in(tmp_path / "desktop-bin", "notify-send")
    outputs: list[str] = []

    def run(env: dict, *args: str) -> tuple[int, str]:
        done = run_cli(env, *args)
        assert "Traceback" not in done.stderr, done.stderr
        outputs.append(done.stdout + done.stderr)
        return done.returncode, done.stdout

    with webhook_receiver() as hook:
        settings = {"CCUSAGE_BUDGET_DAILY_USD": "0.01", "CCUSAGE_BUDGET_MONTHLY_USD": "0.02",
                    "CCUSAGE_ALERT_WEBHOOK": hook.url, "CCUSAGE_ALERT_DESKTOP": "1"}
        laptop = make_env(tmp_path / "laptop", "laptop", **settings)
        desk = make_env(tmp_path / "desk", "desk", **settings)
        for env in (laptop, desk):
            env["PATH"] = f"{desktop}:{env['PATH']}"

        code, out = run(laptop)
        assert code == 0  # the import's own exit code, though budgets are exceeded
        spent, today = costs(laptop), dt.datetime.now(dt.UTC).date()
        daily = (f"🚨 budget exceeded: daily cost {total(spent['day'], 'laptop')} over the $0.01 budget on {today} "
                 "(all machines: laptop)")
        monthly = (f"🚨 budget exceeded: monthly cost {total(spent['month'], 'laptop')} over the $0.02 budget in "
                   f"{today:%Y-%m} (all machines: laptop)")
        assert lines_with(out, "🚨") == [f"{daily} — notified now: log, webhook, desktop",
                                        f"{monthly} — notified now: log, webhook, desktop"]
        assert [(post.content_type, post.body) for post in hook.posts] == [
            ("application/json", {"text": f"ccusage-import: {daily}"}),
            ("application/json", {"text": f"ccusage-import: {monthly}"})]
        assert calls(desktop) == [["ccusage-import", daily], ["ccusage-import", monthly]]

        code, out = run(laptop, "--force")  # a second run of the same machine
        assert code == 0 and len(lines_with(out, "— notified ")) == 2 and not lines_with(out, "notified now")
        code, out = run(desk)  # a second machine on the same store: the totals now cover both
        spent = costs(desk)
        both, = lines_with(out, "daily cost")
        assert code == 0 and both.startswith(
            f"🚨 budget exceeded: daily cost {total(spent['day'], 'desk', 'laptop')} over the $0.01 budget on {today} "
            f"(all machines: desk, laptop) — notified {today} ")
        assert both.endswith(" UTC by laptop")
        for env in (laptop, desk):
            code, out = run(env, "--alerts")
            assert code == ci.EXIT_BUDGET and len(lines_with(out, "🚨")) == 2
        assert len(hook.posts) == 2 and len(calls(desktop)) == 2

        # This machine alone is another scope: its own breaches are new ones, notified once too.
        own = {**desk, "CCUSAGE_BUDGET_SCOPE": "machine"}
        for _ in range(2):
            code, out = run(own, "--alerts", "--quiet")
            assert code == ci.EXIT_BUDGET and len(out.splitlines()) == 2
        assert [post.body["text"].split(" over ")[0] for post in hook.posts[2:]] == [
            f"ccusage-import: 🚨 budget exceeded: daily cost {total(spent['day'], 'desk')}",
            f"ccusage-import: 🚨 budget exceeded: monthly cost {total(spent['month'], 'desk')}"]
        assert all(post.body["text"].endswith("(machine desk)") for post in hook.posts[2:])
        assert len(hook.posts) == 4 and len(calls(desktop)) == 4

    stored = sql_many(laptop, {"alerts": "SELECT kind, period, scope, machine_name, machines FROM ccusage_alerts "
                                         "ORDER BY scope, kind",
                               "everything": "SELECT * FROM ccusage_alerts",
                               "runs": "SELECT * FROM ccusage_import_runs"})
    assert stored["alerts"] == [
        {"kind": "daily_cost", "period": str(today), "scope": "all", "machine_name": "laptop", "machines": ["laptop"]},
        {"kind": "monthly_cost", "period": f"{today:%Y-%m}", "scope": "all", "machine_name": "laptop",
         "machines": ["laptop"]},
        {"kind": "daily_cost", "period": str(today), "scope": "machine:desk", "machine_name": "desk",
         "machines": ["desk"]},
        {"kind": "monthly_cost", "period": f"{today:%Y-%m}", "scope": "machine:desk", "machine_name": "desk",
         "machines": ["desk"]}]
    assert_no_webhook_secret(json.dumps(stored, ensure_ascii=False) + "\n".join(outputs))


def test_nothing_is_posted_under_budget_and_a_failed_post_is_said_without_the_url(tmp_path, make_env):
    recent_history(tmp_path / "claude", seed=43)
    with webhook_receiver(answers=[500, 500]) as hook:
        env = make_env(tmp_path / "claude", CCUSAGE_BUDGET_DAILY_USD="1000000", CCUSAGE_BUDGET_MONTHLY_USD="1000000",
                       CCUSAGE_BLOCK_TOKEN_LIMIT=str(10 ** 12), CCUSAGE_ALERT_WEBHOOK=hook.url)
        imported = run_cli(env)
        assert imported.returncode == 0, imported.stderr
        within, = lines_with(imported.stdout, "Within budget: ")
        assert within.startswith("Within budget: daily cost $") and "of the $1,000,000.00 budget on" in within
        assert "5-hour block " in within and "tokens of the 1,000,000,000,000-token limit in the block from" in within
        checked = run_cli(env, "--alerts")
        assert (checked.returncode, checked.stdout) == (0, within + "\n")
        assert hook.posts == [] and sql(env, "SELECT count() AS n FROM ccusage_alerts") == [{"n": 0}]

        low = {**env, "CCUSAGE_BUDGET_DAILY_USD": "0.01"}
        failed = run_cli(low, "--alerts")  # the receiver answers 500 (echoing its secret path) to both attempts
        assert failed.returncode == ci.EXIT_BUDGET and len(hook.posts) == 2
        breach, = lines_with(failed.stdout, "🚨")
        assert breach.endswith(" — notified now: log; webhook not delivered: HTTP 500 (2 attempts)")
        again = run_cli(low, "--alerts")  # at most once: the claim is recorded, the next run does not post again
        assert again.returncode == ci.EXIT_BUDGET and len(hook.posts) == 2
    assert_no_webhook_secret(imported.stdout + checked.stdout + failed.stdout + failed.stderr + again.stdout)


def test_the_block_limit_max_and_the_projection_alert(tmp_path, make_env):
    truth = recent_history(tmp_path / "claude", seed=44, lines=400)
    blocks = truth.blocks()
    active = blocks[max(blocks)]
    largest = max(b.tokens.total for start, b in blocks.items() if start != active.start)
    assert active.tokens.total > largest, "the generated active block must be the largest for this test"
    start = f"{active.start:%Y-%m-%d %H:%M UTC}"
    with webhook_receiver() as hook:
        env = make_env(tmp_path / "claude", CCUSAGE_BLOCK_TOKEN_LIMIT="max", CCUSAGE_ALERT_WEBHOOK=hook.url)
        imported = run_cli(env)
        over = (f"🚨 budget exceeded: 5-hour block {active.tokens.total:,} tokens over the {largest:,}-token limit "
                f"(max: the largest block seen) in the block from {start} (all machines: laptop)")
        assert imported.returncode == 0
        assert lines_with(imported.stdout, "🚨") == [f"{over} — notified now: log, webhook"]
        checked = run_cli(env, "--alerts")
        assert checked.returncode == ci.EXIT_BUDGET and lines_with(checked.stdout, "🚨")[0].startswith(over)
        quiet = run_cli(env, "--force", "--quiet")  # a quiet import still says a budget is exceeded, on stderr
        assert (quiet.returncode, quiet.stdout) == (0, "") and quiet.stderr.startswith(f"{over} — notified ")

        # A limit the block has just reached, not passed: not exceeded, but ccusage's projection to the block's
        # end is over it, so it will be.
        at_limit = {**env, "CCUSAGE_BLOCK_TOKEN_LIMIT": str(active.tokens.total)}
        projected = sql(env, "SELECT projected_total_tokens AS p, toString(end_time) AS end FROM ccusage_usage_blocks "
                             "FINAL WHERE is_active = 1")[0]
        assert projected["p"] > active.tokens.total
        warned = run_cli(at_limit, "--alerts")
        will = (f"⚠️ budget will be exceeded: 5-hour block projected to reach {projected['p']:,} tokens by its end at "
                f"{projected['end'][:16]} UTC (now {active.tokens.total:,}), over the {active.tokens.total:,}-token "
                f"limit in the block from {start} (all machines: laptop)")
        assert (warned.returncode, warned.stdout) == (0, f"{will} — notified now: log, webhook\n")
        assert run_cli(at_limit, "--alerts").returncode == 0
        assert [post.body["text"] for post in hook.posts] == [f"ccusage-import: {over}", f"ccusage-import: {will}"]
    assert_no_webhook_secret(imported.stdout + checked.stdout + warned.stdout)
