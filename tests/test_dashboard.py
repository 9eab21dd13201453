"""The dashboards: `--dashboard` opened in a real headless Chromium, and the Grafana JSON's SQL run on the engine.

One store serves the module: two machines import generated transcripts with the real pinned ccusage into one
embedded chDB store. One machine has a hostile name (it closes a script element and opens an HTML comment) and
hostile project names, and is working right now (a running 5-hour block); the other, `laptop`, last imported three
hours ago. The page must show the generator's token counts exactly and ccusage's own daily costs to the cent, make
no request, log no error, draw every chart, and fit a phone's width. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser import Browser
from conftest import IMPORTER, ROOT, ci, cli_env, run_ccusage, run_cli, sql, sql_many
from transcripts import DEFAULT_PROJECTS, GroundTruth, append_activity, generate

ARTIFACTS = ROOT / "test-artifacts"
GRAFANA_FILE = ROOT / "grafana" / "ccusage-dashboard.json"
HOSTILE_MACHINE = 'büro </script><!-- "2" 🚀'
HOSTILE_PROJECTS = ["<img src=x onerror=alert(1)>", 'it\'s a "quoted" <!--<script> dir', "ünïcødé proj", "-srv-api"]
CHART_IDS = ["chart-daily", "chart-agents", "chart-models", "chart-projects", "chart-machines", "chart-heatmap",
             "chart-cache"]


@dataclass
class Machine:
    name: str
    truth: GroundTruth
    daily_cost: dict[str, float]  # ccusage's own `claude daily` totalCost per date


@dataclass
class Store:
    env: dict
    machines: dict[str, Machine]
    page: Path

    def cost(self, days: Iterable[str] | None = None, machine: str | None = None) -> str:
        """ccusage's daily totals summed over some days (default all) and machines, as the page shows money."""
        chosen = [m for m in self.machines.values() if machine in (None, m.name)]
        total = sum(cost for m in chosen for day, cost in m.daily_cost.items() if days is None or day in days)
        return f"${total:,.2f}"

    def tokens(self, days: Iterable[str] | None = None, machine: str | None = None) -> str:
        chosen = [m for m in self.machines.values() if machine in (None, m.name)]
        total = sum(t.total for m in chosen for day, t in m.truth.by_day().items() if days is None or day in days)
        return f"{total:,}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> Store:
    base = tmp_path_factory.mktemp("dashboard")
    home = base / "home"
    home.mkdir()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    layout = {HOSTILE_MACHINE: (71, 25, 24, HOSTILE_PROJECTS, now - dt.timedelta(hours=6)),
              "laptop": (72, 40, 30, list(DEFAULT_PROJECTS), now - dt.timedelta(hours=4))}
    machines, env = {}, {}
    for name, (seed, days, sessions, projects, end) in layout.items():
        claude = base / f"claude-{seed}"
        truth = generate(claude, seed=seed, days=days, sessions=sessions, projects=projects, end=end)
        if name == HOSTILE_MACHINE:  # working now: its new activity opens a 5-hour block that is still running
            truth = append_activity(claude, start=now - dt.timedelta(minutes=30), minutes=25)
        env = cli_env(ccusage_bin_dir, home, base / "store" / "chdb", claude, name)
        done = run_cli(env, "--no-hash-projects")
        assert done.returncode == 0, done.stdout + done.stderr
        report = run_ccusage(ccusage_bin_dir, claude, "daily")
        machines[name] = Machine(name, truth, {item["date"]: item["totalCost"] for item in report["daily"]})
    # finished_at is not in the runs log's sorting key, so a synchronous mutation can age laptop's only import
    sql(env, "ALTER TABLE ccusage_import_runs UPDATE finished_at = finished_at - INTERVAL 3 HOUR "
             "WHERE machine_name = 'laptop' SETTINGS mutations_sync = 2")
    page = base / "out" / "dash board.html"
    page.parent.mkdir()
    done = run_cli(env, "--dashboard", str(page))
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert re.fullmatch(rf"Dashboard written to {re.escape(str(page))} \(\d+ KB, 2 machines\): open it in a "
                        r"browser; it needs no network\.\n", done.stdout)
    return Store(env, machines, page)




def open_page(browser: Browser, page: Path, width: int, height: int, mobile: bool = False) -> str:
    browser.viewport(width, height, mobile)
    browser.open(page.as_uri())
    return browser.evaluate("document.documentElement.dataset.state")


def assert_offline_and_quiet(browser: Browser, page: Path) -> None:
    """No console problem, and no request but the file itself (data: URLs are Chromium's own date-picker icon)."""
    problems = browser.console_problems()
    assert not problems, "\n".join(problems)
    requests = browser.requested_urls()
    assert [url for url in requests if not url.startswith("data:")] == [page.as_uri()] * requests.count(page.as_uri())
    assert page.as_uri() in requests


def text(browser: Browser, selector: str) -> str:
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")


# What every chart canvas holds: its size, how many of its pixels are painted, and its data points above zero.
CHARTS_JS = """[...document.querySelectorAll('canvas')].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const copy = document.createElement('canvas');  // read a copy: readbacks of the chart itself draw a warning
  [copy.width, copy.height] = [canvas.width, canvas.height];
  const context = copy.getContext('2d', {willReadFrequently: true});
  context.drawImage(canvas, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const points = chart ? chart.data.datasets.flatMap((d) => d.data)
    .filter((v) => v !== null && (typeof v === 'object' ? v.v > 0 : v > 0)).length : 0;
  return {id: canvas.id, type: chart ? chart.config.type : null, width: canvas.width, height: canvas.height,
          painted, points};
})"""


def assert_every_chart_drawn(browser: Browser) -> None:
    charts = browser.evaluate(CHARTS_JS)
    assert [c["id"] for c in charts] == CHART_IDS
    assert [c["type"] for c in charts] == ["bar", "bar", "doughnut", "bar", "bar", "matrix", "bar"]
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 200, chart
        assert chart["painted"] > chart["width"] * chart["height"] // 50, chart  # more than 2 % of it drawn
        assert chart["points"] > 0, chart


def last_days(today: str, count: int) -> set[str]:
    day = dt.date.fromisoformat(today)
    return {(day - dt.timedelta(days=n)).isoformat() for n in range(count)}


# ----------------------------------------------------------------------------------------------------------------
# The HTML dashboard in a real browser
# ----------------------------------------------------------------------------------------------------------------


def test_dashboard_shows_the_store_offline_with_every_chart_and_exact_numbers(store: Store, browser: Browser):
    assert open_page(browser, store.page, 1280, 900) == "ready"
    assert_every_chart_drawn(browser)
    today = browser.evaluate("JSON.parse(document.getElementById('ccusage-data').textContent).meta.today")
    assert today in {dt.datetime.now(dt.UTC).date().isoformat(), (dt.datetime.now(dt.UTC) - dt.timedelta(
        minutes=10)).date().isoformat()}

    assert text(browser, "#kpi-today .value") == store.cost(last_days(today, 1))
    assert text(browser, "#kpi-7d .value") == store.cost(last_days(today, 7))
    assert text(browser, "#kpi-30d .value") == store.cost(last_days(today, 30))
    assert text(browser, "#kpi-all .value") == store.cost()
    assert text(browser, "#kpi-tokens .value") == store.tokens()
    assert (text(browser, "#range-cost"), text(browser, "#range-tokens")) == (store.cost(), store.tokens())

    blocks = browser.evaluate("[...document.querySelectorAll('#block-list .machine')].map((n) => n.textContent)")
    assert blocks == [HOSTILE_MACHINE]
    freshness = browser.evaluate("[...document.querySelectorAll('#freshness tr')].map((r) => "
                                 "[r.cells[0].textContent, r.cells[4].textContent, r.className])")
    assert sorted(freshness) == sorted([["laptop", "⚠ silent for more than 2 h", "stale"],
                                        [HOSTILE_MACHINE, "✓ fresh", ""]])

    # Hostile names are data, never markup: shown verbatim, no element made from them.
    options = browser.evaluate("[...document.getElementById('machine').options].map((o) => o.textContent)")
    assert options == ["All machines", *sorted(store.machines)]
    projects = browser.evaluate("Chart.getChart('chart-projects').data.labels")
    assert sorted(projects) == sorted(store.machines[HOSTILE_MACHINE].truth.by_project().keys()
                                      | store.machines["laptop"].truth.by_project().keys())
    assert "<img src=x onerror=alert(1)>" in projects
    assert browser.evaluate("[document.querySelectorAll('img').length, document.scripts.length]") == [0, 4]

    # Hovering a bar shows its day and values.
    point = browser.evaluate("""(() => {
      const chart = Chart.getChart('chart-daily');
      chart.canvas.scrollIntoView();
      const set = chart.data.datasets.findIndex((d) => d.data.some((v) => v > 0));
      const index = chart.data.datasets[set].data.findIndex((v) => v > 0);
      const bar = chart.getDatasetMeta(set).data[index];
      const box = chart.canvas.getBoundingClientRect();
      return {x: box.left + bar.x, y: box.top + (bar.y + bar.base) / 2, label: chart.data.labels[index]};
    })()""")
    browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=point["x"], y=point["y"])
    tooltip = browser.evaluate("(() => { const t = Chart.getChart('chart-daily').tooltip;"
                               " return {active: t.getActiveElements().length, title: t.title, footer: t.footer}; })()")
    assert tooltip["active"] > 0 and tooltip["title"][0].endswith(point["label"])
    assert re.fullmatch(r"Total: \$[\d,]+\.\d\d", tooltip["footer"][0])

    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-desktop.png")
    assert (ARTIFACTS / "dashboard-desktop.png").stat().st_size > 50_000

    # The filters: one machine, then the last 7 days.
    browser.evaluate("(() => { const s = document.getElementById('machine'); s.value = 'laptop';"
                     " s.dispatchEvent(new Event('change')); })()")
    assert text(browser, "#kpi-all .value") == store.cost(machine="laptop")
    assert text(browser, "#kpi-tokens .value") == store.tokens(machine="laptop")
    assert text(browser, "#block-list") == "No 5-hour block is running (as of the last import)."
    browser.evaluate("document.querySelector('#presets button[data-days=\"7\"]').click()")
    week = last_days(today, 7)
    assert (text(browser, "#range-cost"), text(browser, "#range-tokens")) == (
        store.cost(week, "laptop"), store.tokens(week, "laptop"))
    assert_every_chart_drawn_or_empty_week(browser)
    assert_offline_and_quiet(browser, store.page)


def assert_every_chart_drawn_or_empty_week(browser: Browser) -> None:
    """After filtering, every chart is still a drawn canvas of its size (a quiet week may have no points)."""
    for chart in browser.evaluate(CHARTS_JS):
        assert chart["width"] > 200 and chart["painted"] > 0, chart


def test_dashboard_fits_a_phone(store: Store, browser: Browser):
    assert open_page(browser, store.page, 390, 844, mobile=True) == "ready"
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert browser.evaluate("[...document.querySelectorAll('.card')].every((c) => c.getBoundingClientRect().right"
                            " <= window.innerWidth)")
    assert_every_chart_drawn(browser)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-phone.png")
    assert_offline_and_quiet(browser, store.page)


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory, ccusage_bin_dir: Path) -> Path:
    """The dashboard of `demo.py`'s store: three machines, four agents, 17 model names (of 13 models)."""
    folder = tmp_path_factory.mktemp("demo")
    env = {"PATH": f"{ccusage_bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(folder / "home"),
           "LANG": "C.UTF-8"}
    done = subprocess.run([sys.executable, str(ROOT / "demo.py"), "--folder", str(folder / "demo")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder / "demo" / "ccusage-dashboard.html"


SERIES_JS = """(() => {
  const colours = (chart) => chart.config.type === 'doughnut' ? chart.data.datasets[0].backgroundColor
    : chart.data.datasets.map((d) => d.backgroundColor);
  const inside = (box, outer) => box.left >= outer.left - 1 && box.right <= outer.right + 1 && box.top >= outer.top - 1
    && box.bottom <= outer.bottom + 1 && box.width > 0 && box.height > 0;
  return ['chart-daily', 'chart-agents', 'chart-models'].map((id) => {
    const chart = Chart.getChart(id);
    const card = chart.canvas.closest('.card');
    const items = [...card.querySelectorAll('.legend li')];
    return {id, colours: colours(chart), plot: chart.chartArea.height, legend: items.length,
            labels: items.map((li) => li.textContent),
            shown: items.filter((li) => inside(li.getBoundingClientRect(), card.getBoundingClientRect())).length};
  });
})()"""


@pytest.mark.parametrize(("width", "height", "mobile"), [(1280, 900, False), (390, 844, True)],
                         ids=["desktop", "phone"])
def test_many_series_have_their_own_colours_and_legends_that_fit(demo_page: Path, browser: Browser, width, height,
                                                                  mobile):
    """Issue 24.6: no two series of a chart share a colour (a palette of 20, then distinct hues), the legends are
    whole lists under their charts, so a phone's chart keeps its height, and a model's several names are one
    series."""
    assert open_page(browser, demo_page, width, height, mobile) == "ready"
    charts = browser.evaluate(SERIES_JS)
    for chart in charts:
        assert len(chart["colours"]) > 3 and len(set(chart["colours"])) == len(chart["colours"]), chart
        assert chart["legend"] == len(chart["colours"]) and chart["shown"] == chart["legend"], chart
        assert chart["plot"] >= 180, chart
    assert max(len(c["colours"]) for c in charts) >= 13
    daily = next(c["labels"] for c in charts if c["id"] == "chart-daily")  # one model, one series (canonical names)
    assert "sonnet-4-5" in daily and not [label for label in daily if re.search(r"-20\d{6}$|sonnet-4\.5", label)]
    assert browser.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / f"dashboard-demo-{'phone' if mobile else 'desktop'}.png")
    assert_offline_and_quiet(browser, demo_page)


def test_an_empty_store_gives_a_page_that_says_how_to_import(make_env, tmp_path: Path, browser: Browser):
    env = make_env(None, "fresh-machine")
    page = tmp_path / "empty.html"
    done = run_cli(env, "--dashboard", str(page))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (f"Dashboard written to {page}: the store holds no usage yet, so the page only says how "
                           "to import (`uv run ccusage_importer.py`).\n")
    assert open_page(browser, page, 1280, 900) == "empty"
    assert browser.evaluate("document.getElementById('dashboard').hidden") is True
    assert browser.evaluate("document.getElementById('empty').hidden") is False
    assert "uv run ccusage_importer.py" in browser.evaluate("document.getElementById('empty').innerText")
    assert browser.evaluate("[...document.querySelectorAll('canvas')].filter((c) => Chart.getChart(c)).length") == 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "dashboard-empty.png")
    assert_offline_and_quiet(browser, page)


# ----------------------------------------------------------------------------------------------------------------
# --dashboard on the command line, and the pure parts
# ----------------------------------------------------------------------------------------------------------------


def test_chromium_writes_nothing_into_the_home_folder(chromium: str, tmp_path: Path, monkeypatch):
    """docs/testing.md: the tests' side effects stay in temporary folders (issue 24.8): Chromium's crash-report
    folder, dconf and fontconfig caches go into its profile, not ~/.config and ~/.cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.send("Page.navigate", url="about:blank")
    assert not list(home.iterdir())


def test_chromium_answers_on_a_pipe_numbered_above_1024(chromium: str, tmp_path: Path):
    """A test process that has opened many stores in-process holds over a thousand descriptors, so the pipe to
    Chromium gets a number select() cannot take ("filedescriptor out of range"): tests/browser.py waits with poll()."""
    taken = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with Browser(chromium, tmp_path / "profile") as browser:
            assert browser.send("Runtime.evaluate", expression="6 * 7")["result"]["value"] == 42
    finally:
        for descriptor in taken:
            os.close(descriptor)


def test_dashboard_failures_are_one_line(store: Store, tmp_path: Path):
    failures = {
        ("--dashboard", str(tmp_path / "no-such-dir" / "d.html")):
            (ci.EXIT_FAILED, f"error: cannot write {tmp_path / 'no-such-dir' / 'd.html'}: No such file or directory\n"),
        ("--dashboard", "x.html", "--sql", "SELECT 1"):
            (ci.EXIT_USAGE, "error: argument --sql: not allowed with argument --dashboard "
                            "(see ccusage_importer.py --help)\n"),
        ("--dashboard", " "): (ci.EXIT_USAGE, "error: --dashboard: the file name is empty\n"),
    }
    for args, (code, message) in failures.items():
        done = run_cli(store.env, *args)
        assert (done.returncode, done.stderr, done.stdout) == (code, message, ""), args
    assert not list(tmp_path.iterdir())


def test_the_default_file_name(store: Store, tmp_path: Path):
    done = subprocess.run([sys.executable, str(IMPORTER), "--dashboard", "--quiet"], env=store.env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert [p.name for p in tmp_path.iterdir()] == [ci.DEFAULT_DASHBOARD_FILE]


def test_render_escapes_every_angle_bracket_so_no_name_leaves_the_data_element():
    data = {"names": ["</script><script>alert(1)</script>", "<!--", "a\u2028b", 'q"\'&']}
    library = {"lib.js": "var a = 1;\n//# sourceMappingURL=a.map"}
    page = ci.render_dashboard(data, "<x>@@LIBRARY@@</x><y>@@DATA@@</y>", library)
    body = page.partition("<y>")[2].rpartition("</y>")[0]
    assert "<" not in body and json.loads(body) == data
    assert page.startswith("<x><script>var a = 1;\n</script></x>")
    for bad in ("x = '</script>'", "x = '<!--'"):
        with pytest.raises(ci.UserError, match=r"lib\.js cannot be put inside a <script> element"):
            ci.render_dashboard({}, "@@LIBRARY@@", {"lib.js": bad})


def test_query_cells_become_json_with_utc_times():
    berlin = dt.timezone(dt.timedelta(hours=1))
    cells = [dt.datetime(2026, 1, 2, 3, 4, 5), dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=berlin), dt.date(2026, 1, 2),
             float("nan"), float("inf"), ("a", 1), 2.5, None, "x"]
    assert [ci.json_cell(c) for c in cells] == [
        "2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", "2026-01-02", None, None, ["a", 1], 2.5, None, "x"]


def test_vendored_libraries_are_the_versions_the_readme_names():
    readme = (ROOT / "dashboard" / "vendor" / "README.md").read_text(encoding="utf-8")
    labels = [ci.library_label((ROOT / "dashboard" / "vendor" / name).read_text(encoding="utf-8"))
              for name in ci.DASHBOARD_LIBRARIES]
    assert labels == ["Chart.js 4.6.1", "chartjs-chart-matrix 3.1.0"]
    for label in labels:
        name, version = label.split()
        assert f"{name.lower()}@{version}" in readme.lower()
    for name in ci.DASHBOARD_LIBRARIES:
        digest = hashlib.sha256((ROOT / "dashboard" / "vendor" / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in readme


def test_dashboard_parameters_are_the_pages_choices_or_the_query_defaults():
    queries = ci.load_queries()
    timeline = ci.find_query(queries, "project_timeline")
    assert ci.dashboard_parameters(timeline, "it's = me", "Europe/Berlin") == {
        "days": 36600, "limit": 4294967295, "project": "", "machine": "it's = me", "agent": ""}
    hours = ci.find_query(queries, "hour_cost_daily")
    assert ci.dashboard_parameters(hours, "", "Asia/Tokyo", "codex") == {
        "days": 36600, "tz": "Asia/Tokyo", "machine": "", "agent": "codex"}
    used = {name for _, name in (*ci.PER_MACHINE_DATASETS, *ci.AGENT_SPLIT_DATASETS, *ci.SHARED_DATASETS)}
    assert used <= {q.name for q in queries}


# ----------------------------------------------------------------------------------------------------------------
# The Grafana dashboard's SQL on the real engine
# ----------------------------------------------------------------------------------------------------------------

# What Grafana and the ClickHouse data source plugin put in place of each macro and variable before the query reaches
# ClickHouse (plugin README, "Macros"; Grafana docs, "Variable syntax"), for a time range FROM..TO:
#   $__timeFilter(col)                 col >= toDateTime(FROM epoch s) AND col <= toDateTime(TO epoch s)
#   $__dateFilter(col)                 col >= toDate('FROM date') AND col <= toDate('TO date')
#   $__fromTime / $__toTime            toDateTime(FROM epoch s) / toDateTime(TO epoch s)
#   $__conditionalAll(cond, $machine)  1=1 when "All" is selected, else cond (the same for $agent)
#   ${machine:singlequote}             each chosen value in '…' with ' escaped as \', joined by commas (and ${agent:…})
#   ${tz:singlequote}                  'UTC' (the textbox variable's default)


def conditional_all(sql: str, all_selected: dict[str, bool]) -> str:
    """Replace each $__conditionalAll(condition, $variable) the way the plugin does (brackets may nest), as
    all_selected says for that variable ("$machine": True is the "All" choice)."""
    macro = "$__conditionalAll("
    while (start := sql.find(macro)) >= 0:
        depth, index, comma = 1, start + len(macro), -1
        while depth:
            depth += {"(": 1, ")": -1}.get(sql[index], 0)
            comma = index if sql[index] == "," and depth == 1 else comma
            index += 1
        condition = sql[start + len(macro):comma].strip()
        sql = sql[:start] + ("1=1" if all_selected[sql[comma + 1:index - 1].strip()] else condition) + sql[index:]
    return sql


def grafana_sql(sql: str, start: dt.datetime, end: dt.datetime, machines: list[str] | None,
                agents: list[str] | None = None) -> str:
    """A panel's SQL as it reaches ClickHouse; machines=None (agents=None) is the "All" choice."""
    sql = conditional_all(sql, {"$machine": machines is None, "$agent": agents is None})
    epochs = (int(start.timestamp()), int(end.timestamp()))
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= toDateTime({epochs[0]}) AND {m[1]} <= toDateTime({epochs[1]})", sql)
    sql = re.sub(r"\$__dateFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= toDate('{start.date()}') AND {m[1]} <= toDate('{end.date()}')", sql)
    def quoted(names: list[str] | None) -> str:
        return ",".join("'" + name.replace("'", "\\'") + "'" for name in names or [])

    for variable, value in {"$__fromTime": f"toDateTime({epochs[0]})", "$__toTime": f"toDateTime({epochs[1]})",
                            "${machine:singlequote}": quoted(machines), "${agent:singlequote}": quoted(agents),
                            "${tz:singlequote}": "'UTC'"}.items():
        sql = sql.replace(variable, value)
    assert "$" not in sql, sql
    return sql


def test_grafana_dashboard_sql_runs_on_the_engine(store: Store):
    dashboard = json.loads(GRAFANA_FILE.read_text(encoding="utf-8"))
    assert dashboard["__inputs"][0]["pluginId"] == "grafana-clickhouse-datasource"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["machine"]["includeAll"] and variables["machine"]["multi"]
    assert variables["agent"]["includeAll"] and variables["agent"]["multi"]

    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    assert len(panels) == 12
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=60)
    queries = {"machines": variables["machine"]["query"]["rawSql"]}
    for title, panel in panels.items():
        assert panel["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
        [target] = panel["targets"]
        assert "$__conditionalAll(" in target["rawSql"], title
        for choice in (None, [HOSTILE_MACHINE]):
            queries[f"{title}/{'all' if choice is None else 'one'}"] = grafana_sql(target["rawSql"], start, end, choice)
    answers = sql_many(store.env, queries)  # one opening of the store for all of them
    assert [row["machine_name"] for row in answers.pop("machines")] == sorted(store.machines)
    results = {tuple(label.rsplit("/", 1)): rows for label, rows in answers.items()}
    for title in panels:
        assert results[title, "all"], title

    spend = results["Spend", "all"][0]
    assert f"${spend['All time']:,.2f}" == store.cost()
    in_range = results["In the selected time range", "one"][0]
    assert f"${in_range['Cost']:,.2f}" == store.cost(machine=HOSTILE_MACHINE)
    assert f"{in_range['Tokens']:,}" == store.tokens(machine=HOSTILE_MACHINE)
    assert {r["machine_name"] for r in results["Cost per machine", "all"]} == set(store.machines)
    assert [r["machine_name"] for r in results["Cost per machine", "one"]] == [HOSTILE_MACHINE]
    assert [r["Machine"] for r in results["Active 5-hour block", "all"]] == [HOSTILE_MACHINE]
    assert {r["Machine"]: r["Status"] for r in results["Data freshness per machine", "all"]} == {
        "laptop": "silent for more than 2 h", HOSTILE_MACHINE: "fresh"}
    weekdays = results["When you work", "all"]
    assert [r["Weekday"] for r in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert len(weekdays[0]) == 25
