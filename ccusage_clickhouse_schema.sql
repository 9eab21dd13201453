-- ccusage-import schema, version 1.
--
-- Applied by ccusage_importer.py at every start: every statement is idempotent and names no database, so it
-- lands in the configured one (CH_DATABASE, default `default`). Later changes go into migrations/NNN_name.sql
-- and are applied once, in order, above the version recorded in ccusage_schema_migrations.
--
-- History-safe writes: every usage table is a ReplacingMergeTree whose version column is the row's total token
-- count. ccusage only sees the last ~30 days of transcripts, so a re-computed old period can come back with
-- fewer tokens; the importer never writes such a row, and even if one were written the engine would keep the
-- larger one. Equal versions keep the last written row (an unchanged period re-priced, a block that ended).
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
ORDER BY (machine_name, date);

-- Derived exactly from ccusage_usage_daily (the same time zone buckets both), so it keeps whole months even
-- after the oldest days' transcripts are gone.
CREATE TABLE IF NOT EXISTS ccusage_usage_monthly
(
    machine_name          LowCardinality(String),
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
ORDER BY (machine_name, month);

-- session_key / project_key: keyed hashes, the stable identity (same whether names are hashed or not).
-- session_id / project_name: what is displayed: the hash, or the real name with --no-hash-projects.
CREATE TABLE IF NOT EXISTS ccusage_usage_sessions
(
    machine_name          LowCardinality(String),
    project_key           String,
    session_key           String,
    project_name          String,
    session_id            String,
    first_activity        Nullable(DateTime64(3, 'UTC')),
    last_activity         DateTime64(3, 'UTC'),
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
ORDER BY (machine_name, project_key, session_key);

-- 5-hour billing blocks (gap blocks are not stored). is_active, burn rate and projection describe the block as
-- of its last import; ccusage_v_active_blocks also checks end_time against the clock.
CREATE TABLE IF NOT EXISTS ccusage_usage_blocks
(
    machine_name                LowCardinality(String),
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
ORDER BY (machine_name, start_time);

CREATE TABLE IF NOT EXISTS ccusage_usage_projects_daily
(
    machine_name          LowCardinality(String),
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
ORDER BY (machine_name, date, project_key);

-- Per-model rows of a daily, monthly, session or project-day row. parent_version is the parent's total_tokens:
-- when a parent is rewritten, a model that left it gets a zero row with the new version.
CREATE TABLE IF NOT EXISTS ccusage_model_breakdowns
(
    machine_name          LowCardinality(String),
    record_type           Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5),
    record_key            String,
    model_name            LowCardinality(String),
    input_tokens          UInt64,
    output_tokens         UInt64,
    cache_creation_tokens UInt64,
    cache_read_tokens     UInt64,
    total_tokens          UInt64,
    cost                  Float64,
    parent_version        UInt64,
    imported_at           DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(parent_version)
ORDER BY (machine_name, record_type, record_key, model_name);

-- Which models a row used (blocks only have this, not per-model tokens). is_used = 0 marks a model that left.
CREATE TABLE IF NOT EXISTS ccusage_models_used
(
    machine_name   LowCardinality(String),
    record_type    Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5),
    record_key     String,
    model_name     LowCardinality(String),
    is_used        UInt8,
    parent_version UInt64,
    imported_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(parent_version)
ORDER BY (machine_name, record_type, record_key, model_name);

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

CREATE OR REPLACE VIEW ccusage_v_daily_summary AS
SELECT
    machine_name,
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
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share
FROM ccusage_usage_sessions FINAL;

CREATE OR REPLACE VIEW ccusage_v_model_performance AS
SELECT
    machine_name,
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
GROUP BY machine_name, model_name;

CREATE OR REPLACE VIEW ccusage_v_monthly_trends AS
SELECT
    machine_name,
    month,
    total_tokens,
    total_cost,
    models_count,
    lagInFrame(total_cost, 1, 0) OVER w AS previous_month_cost,
    round((total_cost - previous_month_cost) / nullIf(previous_month_cost, 0) * 100, 2) AS cost_change_pct,
    round(total_cost / nullIf(total_tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(cache_read_tokens / nullIf(input_tokens + cache_creation_tokens + cache_read_tokens, 0), 4) AS cache_hit_share
FROM ccusage_usage_monthly FINAL
WINDOW w AS (PARTITION BY machine_name ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE OR REPLACE VIEW ccusage_v_active_blocks AS
SELECT
    machine_name,
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
