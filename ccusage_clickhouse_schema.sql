-- ccusage-import schema: the current version of every table and view.
--
-- Applied by ccusage_importer.py at every start: every statement is idempotent and names no database, so it
-- lands in the configured one (CH_DATABASE, default `default`). A new database gets this file and is recorded
-- at the newest migration. A database written by an older release first gets the numbered migrations above its
-- recorded version (migrations/NNN_name.sql, in order, once each), then this file (which replaces the views).
-- A migration line `-- rebuild: TABLE` rebuilds TABLE to its definition here, copying every stored row (columns
-- it did not have take their DEFAULT): the way to change a sorting key without losing a row.
--
-- Every usage row names its coding agent (`agent`: ccusage's name for it, `claude`, `codex`, `gemini`,
-- `opencode`, ...), part of every key. Rows from before agents were imported are Claude Code's.
--
-- History-safe writes: the usage tables of periods (days, months, project-days, blocks, hours) are ReplacingMergeTrees
-- whose version column is the row's total token count. ccusage only sees the last ~30 days of transcripts, so a
-- re-computed old period can come back with fewer tokens; the importer never writes such a row, and even if one
-- were written the engine would keep the larger one. Equal versions keep the last written row (an unchanged
-- period re-priced, a block that ended). Sessions and per-model rows are versioned by import time (see there).
-- Read with FINAL, or through the ccusage_v_* views.

CREATE TABLE IF NOT EXISTS ccusage_schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY version;

-- Settings shared by every machine that writes to this database (the project-name hash key).
CREATE TABLE IF NOT EXISTS ccusage_settings
(
    name       String,
    value      String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (name, created_at);

CREATE TABLE IF NOT EXISTS ccusage_usage_daily
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    date                  Date,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    total_cost            Float64,
    models_count          UInt16,
    models_used           Array(String),
    ccusage_version       LowCardinality(String),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(total_tokens)
ORDER BY (machine_name, agent, date);

-- Derived exactly from ccusage_usage_daily (the same time zone buckets both), so it keeps whole months even
-- after the oldest days' transcripts are gone.
CREATE TABLE IF NOT EXISTS ccusage_usage_monthly
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    month                 Date,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    total_cost            Float64,
    models_count          UInt16,
    models_used           Array(String),
    ccusage_version       LowCardinality(String),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(total_tokens)
ORDER BY (machine_name, agent, month);

-- session_key / project_key: keyed hashes, the stable identity (same whether names are hashed or not).
-- session_id / project_name: what is displayed: the hash, or the real name with --no-hash-projects.
-- Sessions are the one table where ccusage can legitimately report less: a resumed session's file replays earlier
-- lines, and ccusage credits them to whichever file sorts first by path, so a resume can move history from one
-- session to another (or empty one) without any file being deleted. So the version is the import time, and the
-- importer decides (see plan_table): less tokens are written only when none of the session's transcript files
-- (transcript_files) has gone; a session that ccusage stops reporting while its files are all there gets a zero row.
CREATE TABLE IF NOT EXISTS ccusage_usage_sessions
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    project_key           String,
    session_key           String,
    project_name          String,
    session_id            String,
    first_activity        Nullable(DateTime64(3, 'UTC')),
    last_activity         Nullable(DateTime64(3, 'UTC')),
    transcript_files      UInt32,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    total_cost            Float64,
    models_count          UInt16,
    models_used           Array(String),
    reasoning_tokens      Nullable(UInt64),
    ccusage_version       LowCardinality(String),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (machine_name, agent, project_key, session_key);

-- 5-hour billing blocks (gap blocks are not stored). is_active, burn rate and projection describe the block as
-- of its last import; ccusage_v_active_blocks also checks end_time against the clock.
CREATE TABLE IF NOT EXISTS ccusage_usage_blocks
(
    machine_name                LowCardinality(String),
    agent                       LowCardinality(String) DEFAULT 'claude',
    block_id                    String,
    start_time                  DateTime64(3, 'UTC'),
    end_time                    DateTime64(3, 'UTC'),
    actual_end_time             Nullable(DateTime64(3, 'UTC')),
    is_active                   UInt8,
    entries                     UInt32,
    input_tokens                UInt64,
    output_tokens               UInt64,
    cache_creation_tokens       UInt64,
    cache_read_tokens           UInt64,
    total_tokens                UInt64,
    cost_usd                    Float64,
    models_used                 Array(String),
    burn_rate_tokens_per_minute Nullable(Float64),
    burn_rate_cost_per_hour     Nullable(Float64),
    projected_total_tokens      Nullable(UInt64),
    projected_total_cost        Nullable(Float64),
    projected_remaining_minutes Nullable(Int32),
    usage_limit_reset_time      Nullable(DateTime64(3, 'UTC')),
    ccusage_version             LowCardinality(String),
    imported_at                 DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(total_tokens)
ORDER BY (machine_name, agent, start_time);

-- Clock hours of Claude Code (`ccusage claude blocks --session-length 1`: every non-gap one-hour block starts on
-- the hour and ends one hour later; gap blocks are not stored). Counted as ccusage's blocks count, sub-agent
-- replays included, so an hour can hold a little more than `claude daily` gives its day (docs/design.md). A line
-- written exactly on the hour (to the millisecond) counts to the hour before when that hour has lines, as
-- ccusage's blocks count it. Which models an hour used: models_used here and in ccusage_models_used.
CREATE TABLE IF NOT EXISTS ccusage_usage_hourly
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    hour                  DateTime('UTC'),
    entries               UInt32,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    total_cost            Float64,
    models_count          UInt16,
    models_used           Array(String),
    ccusage_version       LowCardinality(String),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(total_tokens)
ORDER BY (machine_name, agent, hour);

CREATE TABLE IF NOT EXISTS ccusage_usage_projects_daily
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    date                  Date,
    project_key           String,
    project_name          String,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    total_cost            Float64,
    models_count          UInt16,
    models_used           Array(String),
    ccusage_version       LowCardinality(String),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(total_tokens)
ORDER BY (machine_name, agent, date, project_key);

-- Per-model rows of a daily, monthly, session or project-day row, written together with their parent (so the
-- latest write is right: ReplacingMergeTree(imported_at)). When a parent is rewritten, a model that left it gets a
-- zero row.
CREATE TABLE IF NOT EXISTS ccusage_model_breakdowns
(
    machine_name          LowCardinality(String),
    agent                 LowCardinality(String) DEFAULT 'claude',
    record_type           Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5, 'hour' = 6),
    record_key            String,
    model_name            LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    cost                  Float64,
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (machine_name, agent, record_type, record_key, model_name);

-- Which models a row used (blocks only have this, not per-model tokens). is_used = 0 marks a model that left.
CREATE TABLE IF NOT EXISTS ccusage_models_used
(
    machine_name   LowCardinality(String),
    agent          LowCardinality(String) DEFAULT 'claude',
    record_type    Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5, 'hour' = 6),
    record_key     String,
    model_name     LowCardinality(String),
    is_used        UInt8,
    imported_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (machine_name, agent, record_type, record_key, model_name);

-- One row per run: what was fetched, what was written, and how it ended. No configuration values are stored.
CREATE TABLE IF NOT EXISTS ccusage_import_runs
(
    run_id            UUID,
    machine_name      LowCardinality(String),
    started_at        DateTime64(3, 'UTC'),
    finished_at       DateTime64(3, 'UTC'),
    status            LowCardinality(String),
    report_rows       Map(String, UInt32),
    rows_written      Map(String, UInt32),
    ccusage_version   LowCardinality(String),
    runner            LowCardinality(String),
    transcript_files  UInt32,
    files_fingerprint String,
    fetch_seconds     Float64,
    write_seconds     Float64,
    error_text        String
)
ENGINE = MergeTree
ORDER BY (machine_name, started_at);

-- One claim per budget breach notified (ccusage_importer.py's budgets: CCUSAGE_BUDGET_*, CCUSAGE_BLOCK_TOKEN_LIMIT).
-- A breach is (kind, period, scope): kind daily_cost, monthly_cost, block_tokens or block_projection; period the
-- day (2026-11-21), month (2026-11) or 5-hour block (its start, 2026-11-21 15:00 UTC); scope 'all' or
-- 'machine:NAME'. A run notifies a breach only if no claim of it is recorded: it inserts its claim (created_at is
-- the server's clock), waits a moment (1 s on a server) and reads back; the first claim by (created_at, claim_id)
-- wins, and only its run sends the webhook and desktop notification. So a second run or a second machine never
-- notifies again, and two machines racing agree on one winner as long as each insert lands within that moment.
-- A plain MergeTree, not a ReplacingMergeTree: a merge must never drop the first claim, or the winner could
-- change. Losing claims stay as rows (rare: only a race makes one). No URL or secret is stored here.
CREATE TABLE IF NOT EXISTS ccusage_alerts
(
    kind         LowCardinality(String),
    period       String,
    scope        String,
    claim_id     UUID,
    machine_name LowCardinality(String),
    threshold    Float64,
    value        Float64,
    machines     Array(String),
    message      String,
    created_at   DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (kind, period, scope, created_at, claim_id);

CREATE OR REPLACE VIEW ccusage_v_daily_summary AS
SELECT
    machine_name,
    agent,
    date,
    input_tokens,
    output_tokens,
    cache_creation_tokens,
    cache_read_tokens,
    total_tokens,
    total_cost,
    models_count,
    models_used,
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share,
    round(output_tokens / nullIf(total_tokens, 0), 6) AS output_share
FROM ccusage_usage_daily FINAL;

CREATE OR REPLACE VIEW ccusage_v_session_summary AS
SELECT
    machine_name,
    agent,
    project_key,
    session_key,
    project_name,
    session_id,
    first_activity,
    last_activity,
    dateDiff('minute', first_activity, last_activity) AS duration_minutes,
    input_tokens,
    output_tokens,
    cache_creation_tokens,
    cache_read_tokens,
    total_tokens,
    total_cost,
    models_count,
    models_used,
    reasoning_tokens,
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share
FROM ccusage_usage_sessions FINAL
WHERE total_tokens > 0;

CREATE OR REPLACE VIEW ccusage_v_model_performance AS
SELECT
    machine_name,
    agent,
    model_name,
    count() AS days_used,
    min(toDate(record_key)) AS first_day,
    max(toDate(record_key)) AS last_day,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_creation_tokens) AS cache_creation_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(total_tokens) AS total_tokens,
    sum(cost) AS total_cost,
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share
FROM
(
    SELECT * FROM ccusage_model_breakdowns FINAL
    WHERE record_type = 'daily' AND total_tokens > 0
)
GROUP BY machine_name, agent, model_name;

-- Each model's usage per day under its canonical name, `model`: the same model reaches ccusage under several names
-- (claude-sonnet-4-5-20250929 from Claude Code, claude-sonnet-4.5 or anthropic/claude-sonnet-4.5 from other agents),
-- and the named queries group by `model` so that it reads as one model; the tables keep every raw `model_name`.
-- Lower case, without a provider prefix (`…/`) or a date suffix (-20250929), and a Claude model's version dot as a
-- dash (Anthropic's ids use dashes; other vendors' dots stay: gpt-5.1-codex, gemini-2.5-pro).
CREATE OR REPLACE VIEW ccusage_v_model_days AS
SELECT
    machine_name,
    agent,
    toDate(record_key) AS date,
    model_name,
    replaceRegexpOne(replaceRegexpOne(lower(model_name), '^(?:.*/)?(.+?)(?:-20[0-9]{6})?$', '\\1'),
                     '^(claude[^.]*[0-9])\\.([0-9])', '\\1-\\2') AS model,
    input_tokens,
    output_tokens,
    cache_creation_tokens,
    cache_read_tokens,
    total_tokens,
    cost
FROM ccusage_model_breakdowns FINAL
WHERE record_type = 'daily' AND total_tokens > 0;

CREATE OR REPLACE VIEW ccusage_v_monthly_trends AS
SELECT
    machine_name,
    agent,
    month,
    total_tokens,
    total_cost,
    models_count,
    -- the calendar month before, not the last month with usage: a month without usage in between means 0
    if(lagInFrame(month, 1) OVER w = addMonths(month, -1), lagInFrame(total_cost, 1, 0) OVER w, 0)
        AS previous_month_cost,
    round((total_cost - previous_month_cost) / nullIf(previous_month_cost, 0) * 100, 2) AS cost_change_pct,
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share
FROM ccusage_usage_monthly FINAL
WINDOW w AS (PARTITION BY machine_name, agent ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE OR REPLACE VIEW ccusage_v_active_blocks AS
SELECT
    machine_name,
    agent,
    block_id,
    start_time,
    end_time,
    actual_end_time,
    entries,
    total_tokens,
    cost_usd,
    models_used,
    burn_rate_tokens_per_minute,
    burn_rate_cost_per_hour,
    projected_total_tokens,
    projected_total_cost,
    greatest(dateDiff('minute', now64(3), end_time), 0) AS minutes_left,
    round(100 * (dateDiff('second', start_time, least(now64(3), end_time)) / 18000), 1) AS elapsed_pct,
    imported_at
FROM ccusage_usage_blocks FINAL
WHERE is_active = 1 AND end_time > now64(3);

-- == Anthropic Admin API ==
-- Loaded by claude_admin_importer.py: what the organisation was billed (cost_report), its tokens (usage_report/
-- messages) and Claude Code's activity per user (usage_report/claude_code), one row per UTC day and natural key.
-- Every table is a ReplacingMergeTree(imported_at) ordered by the natural key: re-importing a day replaces its rows
-- (keys that vanished get a zero row), it never adds a second copy. A dimension the API reports as null is stored
-- as '' (workspace_id '' = the default workspace, api_key_id '' = Console/Workbench usage). Read with FINAL.
-- Billed cost is claude_api_costs.amount_usd only. Claude Code's own estimate of its cost is kept apart, in
-- claude_code_model_usage.estimated_cost_usd: it is part of the billed cost already, never add the two.

-- cost_report grouped by workspace_id and description (one fixed grouping: rows of other groupings never mix in).
-- amount_cents is the API's `amount` (a decimal string in cents) exactly; amount_usd = amount_cents / 100.
CREATE TABLE IF NOT EXISTS claude_api_costs
(
    date           Date,
    workspace_id   String,
    description    String,
    cost_type      LowCardinality(String),
    model          LowCardinality(String),
    token_type     LowCardinality(String),
    service_tier   LowCardinality(String),
    context_window LowCardinality(String),
    inference_geo  LowCardinality(String),
    amount_cents   Decimal(38, 10),
    amount_usd     Decimal(38, 12),
    imported_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (date, workspace_id, description, cost_type, model, token_type, service_tier, context_window,
          inference_geo);

-- usage_report/messages grouped by model, api_key_id, workspace_id, service_tier and context_window.
CREATE TABLE IF NOT EXISTS claude_api_usage
(
    date                           Date,
    model                          LowCardinality(String),
    api_key_id                     String,
    workspace_id                   String,
    service_tier                   LowCardinality(String),
    context_window                 LowCardinality(String),
    uncached_input_tokens          UInt64,
    cache_creation_1h_input_tokens UInt64,
    cache_creation_5m_input_tokens UInt64,
    cache_read_input_tokens        UInt64,
    output_tokens                  UInt64,
    web_search_requests            UInt64,
    imported_at                    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (date, model, api_key_id, workspace_id, service_tier, context_window);

-- usage_report/claude_code: one row per actor, terminal and local/remote split per day. No cost column here
-- (claude_admin_importer.py --validate checks that). is_remote: 'true', 'false', or '' when the API omits it.
CREATE TABLE IF NOT EXISTS claude_code_productivity
(
    date              Date,
    actor_type        LowCardinality(String),
    actor_id          String,
    terminal_type     LowCardinality(String),
    is_remote         LowCardinality(String),
    organization_id   String,
    customer_type     LowCardinality(String),
    subscription_type LowCardinality(String),
    num_sessions      UInt64,
    lines_added       UInt64,
    lines_removed     UInt64,
    commits           UInt64,
    pull_requests     UInt64,
    tool_accepted     Map(String, UInt64),
    tool_rejected     Map(String, UInt64),
    imported_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (date, actor_type, actor_id, terminal_type, is_remote);

-- usage_report/claude_code model_breakdown: tokens per model, and Claude Code's ESTIMATED cost (the API's cents
-- / 100). An estimate of spend that claude_api_costs already bills: show it beside billed cost, never add it.
CREATE TABLE IF NOT EXISTS claude_code_model_usage
(
    date                  Date,
    actor_type            LowCardinality(String),
    actor_id              String,
    terminal_type         LowCardinality(String),
    is_remote             LowCardinality(String),
    model                 LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_read_tokens     UInt64,
    cache_creation_tokens UInt64,
    estimated_cost_usd    Decimal(38, 12),
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (date, actor_type, actor_id, terminal_type, is_remote, model);

-- Per report ('cost_report', 'usage_messages', 'usage_messages_hourly', 'claude_code') and UTC day, the latest
-- import: 'ok' (the day was over), 'partial' (imported while the day ran) or 'failed' (error_text says why).
-- Backfills resume from it. 'usage_messages_hourly' rows exist only for the days a run asked hourly usage for.
CREATE TABLE IF NOT EXISTS claude_api_import_days
(
    report      LowCardinality(String),
    date        Date,
    status      LowCardinality(String),
    row_count   UInt32,
    pages       UInt32,
    error_text  String,
    imported_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (report, date);

-- usage_report/messages in hourly buckets (bucket_width=1h), for recent days only (claude_admin_importer.py
-- --hourly-days): the dimensions and token columns of claude_api_usage, keyed by the UTC hour the bucket starts.
-- Imported from the same data, a day's hourly rows add up to its daily rows key by key (--validate checks it).
-- A re-imported day is replaced like the daily table's: keys that vanished from one of its hours get a zero row.
CREATE TABLE IF NOT EXISTS claude_api_usage_hourly
(
    hour                           DateTime('UTC'),
    model                          LowCardinality(String),
    api_key_id                     String,
    workspace_id                   String,
    service_tier                   LowCardinality(String),
    context_window                 LowCardinality(String),
    uncached_input_tokens          UInt64,
    cache_creation_1h_input_tokens UInt64,
    cache_creation_5m_input_tokens UInt64,
    cache_read_input_tokens        UInt64,
    output_tokens                  UInt64,
    web_search_requests            UInt64,
    imported_at                    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(imported_at)
ORDER BY (hour, model, api_key_id, workspace_id, service_tier, context_window);
