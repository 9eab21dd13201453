"""Write docs/queries.md, the reference of the named queries, from queries.sql.

    uv run python docs/make_query_reference.py

The queries, their descriptions and parameters come from ccusage_importer.load_queries() (the parser `--query`
uses); the groups and their notes come from the section comments of queries.sql. tests/test_docs.py fails when
docs/queries.md differs from what this script writes, so edit queries.sql or the text below, never the page.
"""

# The Markdown tables of the page text below are one line per row, as Markdown needs them.
# ruff: noqa: E501

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
ROOT = DOCS_DIR.parent
QUERIES_SQL = ROOT / "queries.sql"
REFERENCE_PAGE = DOCS_DIR / "queries.md"
REGENERATE_COMMAND = "uv run python docs/make_query_reference.py"

sys.path.insert(0, str(ROOT))
from ccusage_importer import NamedQuery, load_queries  # noqa: E402

BANNER = re.compile(r"--\s*={10,}")
INLINE_SECTION = re.compile(r"--\s*==\s*(.+?)\s*==")
QUERY_NAME = re.compile(r"--\s*name:\s*(\w+)")
UNGROUPED_TITLE = "Other queries"

# A value to show in each query's example command line, for the parameters whose meaning is the same everywhere;
# used only where the query declares the parameter with this type and a different default.
EXAMPLE_VALUES: dict[str, tuple[str, str]] = {
    "days": ("UInt32", "7"),
    "weeks": ("UInt32", "4"),
    "months": ("UInt32", "3"),
    "hours": ("UInt32", "24"),
    "limit": ("UInt32", "3"),
    "sigma": ("Float64", "3"),
    "horizon": ("UInt32", "14"),
    "stale_hours": ("UInt32", "24"),
    "tz": ("String", "Europe/Berlin"),
    "date": ("String", "2026-11-30"),
    "machine": ("String", "laptop"),
    "agent": ("String", "codex"),
}


@dataclass
class QueryGroup:
    """A section of queries.sql: its title, the comment lines under it, and its queries in file order."""

    title: str
    notes: list[str] = field(default_factory=list)
    query_names: list[str] = field(default_factory=list)


def query_groups(sql_text: str) -> list[QueryGroup]:
    """The sections of queries.sql in file order: a title framed by `-- ====` lines, or a `-- == Title ==` line.

    Comment lines inside the frame, or right under a `-- == Title ==` line, are the section's notes. A title that
    comes again gets " (continued)", so every section has its own heading and anchor.
    """
    lines = [line.strip() for line in sql_text.splitlines()]
    groups: list[QueryGroup] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if BANNER.fullmatch(line):
            closing = next((i for i in range(index + 1, len(lines)) if BANNER.fullmatch(lines[i])), None)
            if closing is None or closing == index + 1:
                raise ValueError(f"queries.sql line {index + 1}: a `-- ====` frame without a title or an end")
            comments = [_comment_text(text) for text in lines[index + 1:closing]]
            groups.append(QueryGroup(comments[0], [text for text in comments[1:] if text]))
            index = closing + 1
            continue
        if inline := INLINE_SECTION.fullmatch(line):
            group = QueryGroup(inline.group(1))
            index += 1
            while index < len(lines) and lines[index].startswith("--") and not QUERY_NAME.match(lines[index]):
                group.notes.append(_comment_text(lines[index]))
                index += 1
            groups.append(group)
            continue
        if name := QUERY_NAME.fullmatch(line):
            if not groups:
                groups.append(QueryGroup(UNGROUPED_TITLE))
            groups[-1].query_names.append(name.group(1))
        index += 1
    seen: set[str] = set()
    for group in groups:
        title, note = _split_title(group.title)
        if note:
            group.notes.insert(0, note)
        group.title = f"{title} (continued)" if title in seen else title
        seen.add(title)
    return [group for group in groups if group.query_names]


def _comment_text(line: str) -> str:
    return line.removeprefix("--").strip()


def _split_title(title: str) -> tuple[str, str]:
    """'Projects (hashed keys or real names, ...)' -> ('Projects', 'Hashed keys or real names, ....')."""
    match = re.fullmatch(r"(.+?) \((.+)\)", title)
    if not match:
        return title, ""
    note = match.group(2)
    return match.group(1), note[0].upper() + note[1:] + "."


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def example_assignments(query: NamedQuery) -> list[str]:
    """KEY=VALUE for the parameters that have an example value other than their default."""
    assignments = []
    for param in query.params:
        example = EXAMPLE_VALUES.get(param.name)
        if example and example[0] == param.type and example[1] != param.default:
            assignments.append(f"{param.name}={example[1]}")
    return assignments


def render_query(query: NamedQuery) -> list[str]:
    out = [f"### `{query.name}`", "", query.description, ""]
    if query.params:
        out += ["| parameter | type | default |", "|---|---|---|"]
        out += [f"| `{p.name}` | {p.type} | {f'`{p.default}`' if p.default else '*(empty)*'} |" for p in query.params]
    else:
        out.append("No parameters.")
    command = f"uv run ccusage_importer.py --query {query.name}"
    out += ["", "```bash", command]
    if assignments := example_assignments(query):
        out.append(command + "".join(f" --param {assignment}" for assignment in assignments))
    out += ["```", ""]
    return out


HEADER = """\
# Named queries

`queries.sql` is the answer book: {count} named, parameterised analytics queries over the tables and views of
[the schema](design.md#tables-and-views), in {groups} groups, from daily cost to the Anthropic Admin API. Every
query runs unchanged from the command line, and any client that sends ClickHouse query parameters can run the same
SQL.

This page is generated from `queries.sql` by `docs/make_query_reference.py`: do not edit it by hand, edit
`queries.sql` (or the script's text) and run `{command}`.
"""

GUIDE = """\
## Running them

```bash
uv run ccusage_importer.py --query list                                  # name and description of each
uv run ccusage_importer.py --query list --verbose                        # ... and its parameters
uv run ccusage_importer.py --query daily_cost_30d                        # aligned table, default parameters
uv run ccusage_importer.py --query daily_cost_30d --param days=7 --param machine=laptop
uv run ccusage_importer.py --query daily_cost_30d --param agent=codex     # one coding agent only
uv run ccusage_importer.py --query agent_summary                         # every agent on every machine
uv run ccusage_importer.py --query model_cost_all_time --format csv > models.csv
uv run ccusage_importer.py --query dashboard_summary --format json       # one JSON object per row (JSON Lines)
```

| option | meaning |
|---|---|
| `--query NAME` | run the query called NAME against the configured store: the embedded chDB store (`CCUSAGE_IMPORT_DB`, default `~/.local/share/ccusage-import/chdb`), or the ClickHouse server when `CH_HOST` is set (`CH_PORT`, `CH_USER`, `CH_PASSWORD`, `CH_DATABASE`, `CH_PROTOCOL`, as for imports) |
| `--query list` | print every query's name and description; `--verbose` adds its parameters with their defaults. Reads only `queries.sql`, never opens the store |
| `--param KEY=VALUE` | set a parameter (repeatable). Parameters not given take the default from the query's `-- params:` line. The value is checked against the declared type first and then sent as a ClickHouse query parameter, never spliced into the SQL (a machine called `A' OR '1'='1` is just a name that matches nothing) |
| `--format table\\|csv\\|json` | aligned table (default; floats shown with up to 4 decimals, a row count at the end; on a terminal it fits the width without cutting a number, a date or a column name: long text is cut with `…`, and a result that still does not fit shows each row as a block of `column  value` lines, the last line saying how to get everything whole), CSV with a header line, or JSON Lines (one object per row, full precision) |

The embedded store is opened under the same lock as an import, so a query started during an import waits for it (up
to `--lock-timeout` / `CCUSAGE_LOCK_TIMEOUT`, default 120 s).

**Names and keys.** The tables hold a keyed hash (a key such as `3f9c0a7d12e4b856`) for each project folder and
session id; only the machine that imported them knows the names (its name map, see
[privacy](design.md#privacy-keyed-hashes)). `--query` and `--sql` show the names this machine knows in place of the
keys, except in a `*_key` column whose name another column of the same row shows: there the key stays, beside the
name. A `project` or `session` parameter takes either: the name as shown on this machine (turned into its key
before the query is sent) or the key. In your own `--sql`, filter by the key, never by a name (the database holds
none): find it beside the name (`--query project_timeline --format csv`), or with `--no-names`, and write
`WHERE project_key = '3f9c0a7d12e4b856'`.

Failures are one line on stderr and a non-zero exit, for example:

| situation | message | exit |
|---|---|---|
| unknown name | `error: no query named 'x' in queries.sql; valid names: list, daily_cost_30d, …` (every name) | 2 |
| unknown parameter | `error: query top_days has no parameter 'days'; its parameters: limit:UInt32=10, machine:String=, agent:String=` | 2 |
| value of the wrong type | `error: --param limit: 'ten' is not a UInt32` | 2 |
| `--param` without `=` | `error: --param 'days': expected KEY=VALUE` | 2 |
| `--param` without `--query`, `--query list` with `--param`, an empty name | `error: --param goes with --query NAME`, `error: --query list takes no --param`, `error: --query: the query name is empty` | 2 |
| `--query` with `--sql`, `--check` or `--dashboard` | `error: argument --sql: not allowed with argument --query (see ccusage_importer.py --help)` (argparse names the later of the two) | 2 |
| the database refuses the query | `error: database: ` and the first line of ClickHouse's message | 1 |
| `queries.sql` breaks its format | `error: …/queries.sql: line N: …` naming the line and the problem | 1 |

Each query took 3–40 ms inside chDB on a store holding two machines' worth of the reference sample (47 days of
usage each); a whole CLI call took 0.85–1.3 s on 2 busy cores, about 0.65 s of it starting Python and loading chDB
(`--query list` took 0.15 s: it never loads chDB).

## Parameters

The same names mean the same thing in every query:

| parameter | meaning |
|---|---|
| `machine` (String, default empty) | empty: all machines added up; a name: only that machine's rows |
| `agent` (String, default empty) | empty: all coding agents added up; a name (ccusage's: `claude`, `codex`, `gemini`, `opencode`, …): only that agent's rows. Only Claude Code (`claude`) has projects, 5-hour blocks and clock hours, so queries over those give another agent no rows |
| `days` (UInt32) | the last N calendar days up to and including today (ClickHouse's `today()`: the server's time zone, for the embedded store the importer's). Stored dates are days in `CCUSAGE_TIMEZONE` |
| `weeks`, `months` (UInt32) | the same in weeks (Monday first) or calendar months |
| `hours` (UInt32) | the last N hours (`admin_usage_hourly`) |
| `limit` (UInt32) | at most N rows (per machine where the description says so) |
| `tz` (String, default UTC) | the time zone the queries by hour of the day and `day_by_hour`'s day are read in (`hourly_pattern`: block start hours) |
| `date` (String, default empty) | one day (YYYY-MM-DD) in time zone `tz` for `day_by_hour`; empty: today so far |
| `sigma` (Float64, default 2) | how many standard deviations above the mean make an anomaly day |
| `horizon` (UInt32, default 7) | how many days `cost_forecast` continues the trend |
| `stale_hours` (UInt32, default 2) | after how many hours without a successful import `machine_freshness` flags a machine |
| `project` (String, default empty) | one project for `project_timeline`: the name `--query` shows on this machine, or its key |
| `model` (String, default empty) | one model for `admin_usage_hourly`; empty: all models added up |

Another client runs the same SQL by sending every parameter itself (the defaults live only in `queries.sql` and the
CLI), e.g. clickhouse-client's `--param_days=7`. The example command lines below set a few parameters to values other
than their defaults (`laptop` stands for one of your machine names).

## What the answers can be trusted for

- **Re-imports never change an answer.** The usage tables are ReplacingMergeTrees that can hold several versions of a
  row until a merge; every query reads them with `FINAL` or through the `ccusage_v_*` views (which use `FINAL`).
  A test checks the SQL for this, and the end-to-end test runs every query on a store that holds superseded and
  duplicated rows.
- **Machines and agents are never mixed by accident.** A machine's day has one row per coding agent that worked
  that day. A query either adds machines and agents up first (its description says "all machines and agents added
  up"), or keeps `machine_name` or `agent` and partitions its windows by it (`anomaly_days_by_machine`,
  `machine_top_models`, `machine_monthly_trend`, `agent_models`, `agent_monthly_trend`); the windows that compare
  machines or agents on purpose (share of a day, ranking) say so.
- **Sessions of other agents**: only Claude Code's sessions have a start (so a duration), and Gemini CLI's have no
  last activity either; queries over the sessions of the last `days` days go by the last activity and leave those
  out, all-time session counts include them.
- **One model, one name.** ccusage reports the same model under the names each agent gives it
  (`claude-sonnet-4-5-20250929` from Claude Code, `claude-sonnet-4.5` or `anthropic/claude-sonnet-4.5` from
  others). The queries that group by model group by its canonical name, `model` (lower case, without a provider
  prefix or a date suffix, a Claude model's version dot as a dash; `gpt-5.1-codex` and `gemini-2.5-pro` stay as they
  are), declared once in the view `ccusage_v_model_days`; `model_cost_all_time` lists the raw `names` of each. The
  tables keep every raw `model_name`, and so do the queries that read them directly (`models_in_blocks`,
  `project_model_mix`, `tokens_per_dollar`, the cache estimates).
- **Gaps are calendar gaps.** Day-over-day, week-over-week and month-over-month changes compare with the calendar
  day, week or month before, counting a period without usage as 0; the line-chart series fill idle days with 0.
- **Estimated cache savings** (`cache_efficiency`, `cache_efficiency_daily`): ccusage reports a cost per model but
  not its prices. Every Claude model's list prices keep the same ratios to its input price (output 5×, cache write
  1.25×, cache read 0.1×), so each model's input price is inferred from its own cost and tokens; the savings are what
  its cache reads would have cost as fresh input (0.9× input price) minus the cache-write surcharge (0.25×). It is an
  estimate: 1-hour cache writes (2×) and long-context prices are not distinguishable in ccusage's reports. Other
  vendors' models (GPT, Gemini, …) price their caches differently, so the savings cover Claude models only (a name
  containing `claude`, whichever agent used it) and are NULL for the others.
- **Freshness**: `machine_freshness` lists every machine that ever imported or has data, its last successful import
  (a run with status `ok`, `unchanged` or `partial`) and `is_stale = 1` when that is more than `stale_hours` hours
  ago or never happened.
- **Active block**: `active_block` shows each machine's running 5-hour block as of its last import, with ccusage's
  burn rate and projected block total and `data_age_minutes`, how old those numbers are.
- **Admin API queries** (names starting with `admin_`) read the tables `claude_admin_importer.py` fills; see
  [the Admin API importer](admin-api.md). They never add Claude Code's own estimated cost to billed cost.

## Adding a query

Give it three comment lines and one statement ending with `;` at the end of a line:

```sql
-- name: my_query
-- description: One line that says what it answers and whether it adds machines up
-- params: days:UInt32=30, machine:String=
SELECT date, sum(total_cost) AS cost_usd
FROM ccusage_usage_daily FINAL
WHERE dateDiff('day', date, today()) < {{days:UInt32}}
  AND ({{machine:String}} = '' OR machine_name = {{machine:String}})
GROUP BY date
ORDER BY date;
```

Parameter types may be String, Float32/Float64 and (U)Int8–64; defaults cannot contain commas; a query without
parameters says `-- params: none`. A group starts with a title between two `-- ====` lines, or with one
`-- == Title ==` line; the comment lines inside the frame, or right under that line, are the group's notes on this
page. `tests/test_queries.py` fails if a query lacks a name or description, if two share a name, if a
`{{param:Type}}` in the SQL is not declared (or declared but unused, or declared with another type), if a usage table
is read without `FINAL`, if the file has fewer than 40 queries, or if this page does not list every query with its
description; `tests/test_docs.py` fails until this page is regenerated with `{command}`.
"""


def render_reference(queries: Sequence[NamedQuery], sql_text: str) -> str:
    """The whole of docs/queries.md for these queries and this queries.sql text."""
    groups = query_groups(sql_text)
    by_name = {query.name: query for query in queries}
    grouped = [name for group in groups for name in group.query_names]
    if sorted(grouped) != sorted(by_name):
        missing = sorted(set(by_name) ^ set(grouped))
        raise ValueError(f"queries.sql sections and load_queries() disagree about: {', '.join(missing)}")
    out = [f"<!-- Generated from queries.sql by docs/make_query_reference.py: run `{REGENERATE_COMMAND}`. -->", ""]
    out += HEADER.format(count=len(queries), groups=len(groups), command=REGENERATE_COMMAND).splitlines()
    out += ["", "## Every named query", ""]
    for group in groups:
        names = ", ".join(f"[`{name}`](#{github_anchor(name)})" for name in group.query_names)
        out.append(f"- [{group.title}](#{github_anchor(group.title)}): {names}")
    out.append("")
    out += GUIDE.format(command=REGENERATE_COMMAND).splitlines()
    out.append("")
    for group in groups:
        out += [f"## {group.title}", ""]
        if group.notes:
            out += [" ".join(group.notes), ""]
        for name in group.query_names:
            out += render_query(by_name[name])
    return "\n".join(out).rstrip("\n") + "\n"


def current_reference() -> str:
    """docs/queries.md as it should be for the queries.sql in this checkout."""
    return render_reference(load_queries(), QUERIES_SQL.read_text(encoding="utf-8"))


def main() -> None:
    REFERENCE_PAGE.write_text(current_reference(), encoding="utf-8")
    print(f"wrote {REFERENCE_PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
