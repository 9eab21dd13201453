-- ccusage-import: the answer book. Named analytics queries over the ccusage_* tables and views.
--
-- Format (parsed by ccusage_importer.py, so keep it exact): every query starts with three comment lines
--     -- name: <unique name, letters, digits and _>
--     -- description: <one line>
--     -- params: <name:Type=default, ...> or none
-- followed by one SQL statement that ends with `;` at the end of a line. Other comment lines between queries
-- (like this header and the section titles) are ignored.
--
-- Run one:  uv run ccusage_importer.py --query daily_cost_30d --param days=7 [--format table|csv|json]
-- Parameters are ClickHouse query parameters ({days:UInt32}); the CLI fills in the defaults given on the
-- `-- params:` line. Other clients must pass every parameter themselves (clickhouse-client: --param_days=7).
-- Conventions:
--   machine  empty (the default) = all machines, otherwise only that machine's rows.
--   agent    empty (the default) = all coding agents, otherwise only that agent's rows (ccusage's name for it:
--            claude, codex, gemini, opencode, ...). Only Claude Code (claude) has projects, 5-hour blocks and
--            clock hours, so a query over those returns nothing for another agent.
--   days     the last N calendar days up to and including today, where today is ClickHouse's today() (the
--            server's time zone; for the embedded store, the importer's). Stored dates are CCUSAGE_TIMEZONE days.
--   limit    at most N rows (per machine where the description says so).
--
-- Correct under the storage design: usage tables are ReplacingMergeTrees that may hold several versions of a
-- row until a merge, so every query reads them with FINAL or through the ccusage_v_* views (which use FINAL):
-- importing the same data again never changes an answer. Rows are per machine and agent (a machine's day has one
-- row per agent that worked that day); a query either adds machines and agents up first (its description says
-- "all machines and agents") or keeps machine_name or agent and partitions its windows by it; the few windows that
-- compare machines or agents with each other (shares of a day, ranking) say so.
-- ccusage_import_runs is a log (one row per run, per machine, for every agent at once), not deduplicated data.
--
-- Sessions: only Claude Code's sessions have a first activity (so a duration); Gemini CLI's have no last activity
-- either. Queries over the sessions of the last `days` days go by the last activity, so they leave out sessions
-- without one; all-time session counts include them.
--
-- Per-model rows: ccusage_model_breakdowns with record_type 'daily' (record_key = the date, one set of rows per
-- machine and agent). A row with zero tokens marks a model that left its parent row; `total_tokens > 0` skips those.

-- =============================================================================================================
-- Daily cost and tokens
-- =============================================================================================================

-- name: daily_cost_30d
-- description: Cost and tokens per day over the last `days` days, all machines and agents added up (or one machine, one agent); days without usage are left out
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    date,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    round(cost_usd / nullIf(tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    uniqExact(machine_name) AS machines
FROM ccusage_v_daily_summary
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date
ORDER BY date;

-- name: daily_tokens_90d
-- description: Tokens per day by type (input, output, cache write, cache read) over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=90, machine:String=, agent:String=
SELECT
    date,
    sum(input_tokens) AS input,
    sum(output_tokens) AS output,
    sum(cache_creation_tokens) AS cache_creation,
    sum(cache_read_tokens) AS cache_read,
    sum(total_tokens) AS tokens,
    sum(total_cost) AS cost_usd
FROM ccusage_v_daily_summary
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date
ORDER BY date;

-- name: daily_cost_change
-- description: Day-over-day cost change over the last `days` days (every calendar day, idle days as 0), all machines and agents added up first (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
WITH
    calendar AS (
        SELECT today() - number AS date
        FROM numbers(least({days:UInt32} + 1, toUInt32(today()) + 1))
    ),
    per_day AS (
        SELECT date, sum(total_cost) AS day_cost
        FROM ccusage_usage_daily FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY date
    )
SELECT
    date,
    cost_usd,
    previous_day_cost_usd,
    cost_usd - previous_day_cost_usd AS change_usd,
    round(100 * change_usd / nullIf(previous_day_cost_usd, 0), 2) AS change_pct
FROM
(
    SELECT
        calendar.date AS date,
        per_day.day_cost AS cost_usd,
        lagInFrame(per_day.day_cost, 1, 0.) OVER (ORDER BY calendar.date ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
            AS previous_day_cost_usd
    FROM calendar
    LEFT JOIN per_day ON per_day.date = calendar.date
)
WHERE dateDiff('day', date, today()) < {days:UInt32}
ORDER BY date;

-- name: top_days
-- description: The `limit` most expensive days of all time, all machines and agents added up (or one machine, one agent), with the models used
-- params: limit:UInt32=10, machine:String=, agent:String=
SELECT
    date,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    uniqExact(machine_name) AS machines,
    arraySort(groupUniqArrayArray(models_used)) AS models
FROM ccusage_usage_daily FINAL
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date
ORDER BY cost_usd DESC, date DESC
LIMIT {limit:UInt32};

-- name: period_comparison
-- description: The last `days` days against the `days` days before them: cost, tokens and active days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=7, machine:String=, agent:String=
SELECT
    sumIf(total_cost, age < {days:UInt32}) AS current_cost_usd,
    sumIf(total_cost, age >= {days:UInt32}) AS previous_cost_usd,
    round(100 * (current_cost_usd - previous_cost_usd) / nullIf(previous_cost_usd, 0), 2) AS cost_change_pct,
    sumIf(total_tokens, age < {days:UInt32}) AS current_tokens,
    sumIf(total_tokens, age >= {days:UInt32}) AS previous_tokens,
    round(100 * (current_tokens - previous_tokens) / nullIf(previous_tokens, 0), 2) AS token_change_pct,
    uniqExactIf(date, age < {days:UInt32}) AS current_active_days,
    uniqExactIf(date, age >= {days:UInt32}) AS previous_active_days
FROM
(
    SELECT date, total_cost, total_tokens, dateDiff('day', date, today()) AS age
    FROM ccusage_usage_daily FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
)
WHERE age < 2 * {days:UInt32};

-- =============================================================================================================
-- Models
-- =============================================================================================================

-- name: model_cost_all_time
-- description: Cost and tokens per model of all time, all machines and agents added up (or one machine, one agent), with each model's share of the cost and the names it was reported under
-- params: machine:String=, agent:String=
SELECT
    model,
    arraySort(groupUniqArray(model_name)) AS names,
    sum(cost) AS cost_usd,
    round(100 * cost_usd / sum(cost_usd) OVER (), 2) AS cost_share_pct,
    sum(input_tokens) AS input,
    sum(output_tokens) AS output,
    sum(cache_creation_tokens) AS cache_creation,
    sum(cache_read_tokens) AS cache_read,
    sum(total_tokens) AS tokens,
    min(date) AS first_used,
    max(date) AS last_used
FROM ccusage_v_model_days
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY model
ORDER BY cost_usd DESC, model;

-- name: model_cost_daily
-- description: Cost and tokens per model and day over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    date,
    model,
    sum(cost) AS cost_usd,
    sum(total_tokens) AS tokens
FROM ccusage_v_model_days
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date, model
ORDER BY date, cost_usd DESC, model;

-- name: model_cost_monthly
-- description: Cost and tokens per model and month over the last `months` months, all machines and agents added up (or one machine, one agent)
-- params: months:UInt32=12, machine:String=, agent:String=
SELECT
    toStartOfMonth(date) AS month,
    model,
    sum(cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    uniqExact(date) AS active_days
FROM ccusage_v_model_days
WHERE dateDiff('month', date, today()) < {months:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY month, model
ORDER BY month, cost_usd DESC, model;

-- name: model_comparison
-- description: Models side by side over the last `days` days, all machines and agents added up (or one machine, one agent): cost per million tokens, cache-read share, output share, cost per active day
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    model,
    sum(cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    uniqExact(date) AS active_days,
    round(cost_usd / nullIf(tokens, 0) * 1000000, 4) AS cost_per_million_tokens,
    round(sum(cache_read_tokens) / nullIf(sum(input_tokens + cache_creation_tokens + cache_read_tokens), 0), 4)
        AS cache_read_share,
    round(sum(output_tokens) / nullIf(tokens, 0), 6) AS output_share,
    round(sum(output_tokens) / nullIf(sum(input_tokens), 0), 2) AS output_per_input_token,
    round(cost_usd / nullIf(active_days, 0), 4) AS cost_per_active_day_usd
FROM ccusage_v_model_days
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY model
ORDER BY cost_usd DESC, model;

-- name: models_in_blocks
-- description: How many 5-hour blocks (only Claude Code has them) used each model over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    model_name,
    count() AS blocks,
    uniqExact(machine_name) AS machines,
    max(parseDateTime64BestEffort(record_key, 3, 'UTC')) AS last_block_start
FROM ccusage_models_used FINAL
WHERE record_type = 'block' AND is_used = 1
  AND dateDiff('day', parseDateTime64BestEffort(record_key, 3, 'UTC'), now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY model_name
ORDER BY blocks DESC, model_name;

-- =============================================================================================================
-- Projects (hashed keys or real names, whichever was imported; only Claude Code has projects)
-- =============================================================================================================

-- name: project_cost
-- description: Cost per project over the last `days` days (default ten years: everything), all machines and agents added up (or one machine, one agent), with share of the cost, active days and machines
-- params: days:UInt32=3650, limit:UInt32=20, machine:String=, agent:String=
SELECT
    project_key,
    argMax(project_name, date) AS project,
    sum(total_cost) AS cost_usd,
    round(100 * cost_usd / sum(cost_usd) OVER (), 2) AS cost_share_pct,
    sum(total_tokens) AS tokens,
    uniqExact(date) AS active_days,
    min(date) AS first_day,
    max(date) AS last_day,
    uniqExact(machine_name) AS machines
FROM ccusage_usage_projects_daily FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY project_key
ORDER BY cost_usd DESC, project_key
LIMIT {limit:UInt32};

-- name: project_timeline
-- description: Cost per day of the `limit` most expensive projects of the last `days` days (or of one project, by name or key), all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, limit:UInt32=5, project:String=, machine:String=, agent:String=
WITH
    in_window AS (
        SELECT *
        FROM ccusage_usage_projects_daily FINAL
        WHERE dateDiff('day', date, today()) < {days:UInt32}
          AND ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
          AND ({project:String} = '' OR project_name = {project:String} OR project_key = {project:String})
    ),
    top_projects AS (
        SELECT project_key
        FROM in_window
        GROUP BY project_key
        ORDER BY sum(total_cost) DESC, project_key
        LIMIT {limit:UInt32}
    )
SELECT
    date,
    project_key,
    argMax(project_name, imported_at) AS project,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens
FROM in_window
WHERE project_key IN (SELECT project_key FROM top_projects)
GROUP BY date, project_key
ORDER BY date, cost_usd DESC, project_key;

-- name: most_active_projects
-- description: Projects ranked by active days over the last `days` days, with sessions, cost and last activity, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, limit:UInt32=10, machine:String=, agent:String=
SELECT
    days_table.project_key AS project_key,
    days_table.project AS project,
    days_table.active_days AS active_days,
    sessions_table.sessions AS sessions,
    days_table.cost_usd AS cost_usd,
    days_table.tokens AS tokens,
    days_table.last_day AS last_day
FROM
(
    SELECT
        project_key,
        argMax(project_name, date) AS project,
        uniqExact(date) AS active_days,
        sum(total_cost) AS cost_usd,
        sum(total_tokens) AS tokens,
        max(date) AS last_day
    FROM ccusage_usage_projects_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY project_key
) AS days_table
LEFT JOIN
(
    SELECT project_key, count() AS sessions
    FROM ccusage_usage_sessions FINAL
    WHERE total_tokens > 0 AND dateDiff('day', last_activity, now()) < {days:UInt32}
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY project_key
) AS sessions_table ON sessions_table.project_key = days_table.project_key
ORDER BY active_days DESC, cost_usd DESC, project_key
LIMIT {limit:UInt32};

-- name: project_model_mix
-- description: Cost per project and model over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    projects.project_key AS project_key,
    argMax(projects.project_name, projects.date) AS project,
    breakdowns.model_name AS model_name,
    sum(breakdowns.cost) AS cost_usd,
    sum(breakdowns.total_tokens) AS tokens
FROM ccusage_model_breakdowns AS breakdowns FINAL
INNER JOIN
(
    SELECT machine_name, agent, date, project_key, project_name
    FROM ccusage_usage_projects_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
) AS projects
    ON projects.machine_name = breakdowns.machine_name
   AND projects.agent = breakdowns.agent
   AND concat(toString(projects.date), '/', projects.project_key) = breakdowns.record_key
WHERE breakdowns.record_type = 'project_daily' AND breakdowns.total_tokens > 0
  AND ({machine:String} = '' OR breakdowns.machine_name = {machine:String})
  AND ({agent:String} = '' OR breakdowns.agent = {agent:String})
GROUP BY project_key, model_name
ORDER BY project_key, cost_usd DESC, model_name;

-- =============================================================================================================
-- Sessions
-- =============================================================================================================

-- name: top_sessions
-- description: The `limit` most expensive sessions active in the last `days` days (by last activity: Gemini CLI's sessions have none and are left out), one row per machine's and agent's session; agent '' = all agents
-- params: days:UInt32=30, limit:UInt32=10, machine:String=, agent:String=
SELECT
    machine_name,
    agent,
    project_name AS project,
    session_id,
    first_activity,
    last_activity,
    duration_minutes,
    total_cost AS cost_usd,
    total_tokens AS tokens,
    models_used,
    cache_hit_share
FROM ccusage_v_session_summary
WHERE dateDiff('day', last_activity, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
ORDER BY cost_usd DESC, machine_name, agent, session_key
LIMIT {limit:UInt32};

-- name: session_stats_daily
-- description: Sessions per day of their last activity over the last `days` days, all machines and agents added up (or one machine, one agent): count, average and longest duration (of the sessions with a known start: Claude Code's), average cost
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    toDate(last_activity) AS date,
    count() AS sessions,
    round(avg(duration_minutes), 1) AS avg_duration_minutes,
    max(duration_minutes) AS longest_minutes,
    round(avg(total_cost), 4) AS avg_cost_usd,
    sum(total_cost) AS cost_usd
FROM ccusage_v_session_summary
WHERE dateDiff('day', last_activity, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date
ORDER BY date;

-- name: session_length_distribution
-- description: Sessions of the last `days` days bucketed by duration, all machines and agents added up (or one machine, one agent); sessions without a known start (every agent's but Claude Code's) are '6: unknown'
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    multiIf(duration_minutes IS NULL, '6: unknown', duration_minutes < 5, '1: < 5 min',
            duration_minutes < 30, '2: 5-30 min', duration_minutes < 120, '3: 30 min-2 h',
            duration_minutes < 480, '4: 2-8 h', '5: >= 8 h') AS duration,
    count() AS sessions,
    sum(total_cost) AS cost_usd,
    round(avg(total_cost), 4) AS avg_cost_usd
FROM ccusage_v_session_summary
WHERE dateDiff('day', last_activity, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY duration
ORDER BY duration;

-- =============================================================================================================
-- Time patterns
-- =============================================================================================================

-- name: hourly_pattern
-- description: Usage by the hour (in time zone `tz`) a 5-hour block started (only Claude Code has blocks), last `days` days, all machines and agents added up (or one machine, one agent); every hour 0-23 listed
-- params: days:UInt32=30, tz:String=UTC, machine:String=, agent:String=
SELECT
    toHour(start_time, {tz:String}) AS hour,
    count() AS blocks,
    sum(cost_usd) AS cost_usd,
    sum(total_tokens) AS tokens,
    sum(entries) AS entries,
    round(cost_usd / nullIf(blocks, 0), 4) AS avg_block_cost_usd
FROM ccusage_usage_blocks FINAL
WHERE dateDiff('day', start_time, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY hour
ORDER BY hour WITH FILL FROM 0 TO 24;

-- name: weekly_trend
-- description: Cost per week (Monday first) over the last `weeks` weeks with the change from the week before, all machines and agents added up first (or one machine, one agent)
-- params: weeks:UInt32=12, machine:String=, agent:String=
SELECT
    week,
    cost_usd,
    tokens,
    active_days,
    previous_week_cost_usd,
    round(100 * (cost_usd - previous_week_cost_usd) / nullIf(previous_week_cost_usd, 0), 2) AS change_pct
FROM
(
    SELECT
        week,
        cost_usd,
        tokens,
        active_days,
        lagInFrame(cost_usd, 1, 0.) OVER (ORDER BY week ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
            AS previous_week_cost_usd
    FROM
    (
        SELECT
            toMonday(date) AS week,
            sum(total_cost) AS cost_usd,
            sum(total_tokens) AS tokens,
            uniqExact(date) AS active_days
        FROM ccusage_usage_daily FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY week
        ORDER BY week WITH FILL TO toMonday(today()) + 7 STEP toIntervalWeek(1)
    )
)
WHERE dateDiff('week', week, toMonday(today())) < {weeks:UInt32}
ORDER BY week;

-- name: monthly_trend
-- description: Cost per month over the last `months` months with the change from the month before, all machines and agents added up first (or one machine, one agent)
-- params: months:UInt32=12, machine:String=, agent:String=
SELECT
    month,
    cost_usd,
    tokens,
    previous_month_cost_usd,
    round(100 * (cost_usd - previous_month_cost_usd) / nullIf(previous_month_cost_usd, 0), 2) AS change_pct,
    round(cost_usd / nullIf(tokens, 0) * 1000000, 4) AS cost_per_million_tokens
FROM
(
    SELECT
        month,
        cost_usd,
        tokens,
        lagInFrame(cost_usd, 1, 0.) OVER (ORDER BY month ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
            AS previous_month_cost_usd
    FROM
    (
        SELECT month, sum(total_cost) AS cost_usd, sum(total_tokens) AS tokens
        FROM ccusage_usage_monthly FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY month
        ORDER BY month WITH FILL TO toStartOfMonth(today()) + toIntervalMonth(1) STEP toIntervalMonth(1)
    )
)
WHERE dateDiff('month', month, today()) < {months:UInt32}
ORDER BY month;

-- name: day_of_week_pattern
-- description: Cost by weekday over the last `days` days (1 = Monday), all machines and agents added up per day first (or one machine, one agent): total and average per active day
-- params: days:UInt32=90, machine:String=, agent:String=
SELECT
    toDayOfWeek(date) AS weekday,
    dateName('weekday', date) AS day_name,
    count() AS active_days,
    sum(cost_usd) AS total_cost_usd,
    round(avg(cost_usd), 4) AS avg_cost_per_active_day_usd,
    round(avg(tokens)) AS avg_tokens_per_active_day
FROM
(
    SELECT date, sum(total_cost) AS cost_usd, sum(total_tokens) AS tokens
    FROM ccusage_usage_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY date
)
GROUP BY weekday, day_name
ORDER BY weekday;

-- =============================================================================================================
-- Hour by hour
-- Clock hours of Claude Code (ccusage_usage_hourly: `ccusage claude blocks --session-length 1`; other agents have
-- none, so another `agent` gives no rows), counted as ccusage's blocks count them (sub-agent replays included: a
-- day's hours can add up to a little more than its row in ccusage_usage_daily). Hours are shown in time zone `tz`;
-- in a zone whose offset is not whole hours, a clock hour is shown at the local hour it starts in.
-- =============================================================================================================

-- name: hour_weekday_cost
-- description: Cost by weekday (1 = Monday) and hour of the day (in time zone `tz`) over the last `days` days, all machines added up (or one machine, one agent): cost, tokens, the clock hours with usage and their average cost; the cells of an hour-by-weekday heat map
-- params: days:UInt32=90, tz:String=UTC, machine:String=, agent:String=
SELECT
    toDayOfWeek(toDate(hour, {tz:String})) AS weekday,
    toHour(hour, {tz:String}) AS hour_of_day,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    uniqExact(hour) AS active_hours,
    round(cost_usd / nullIf(active_hours, 0), 4) AS avg_cost_per_active_hour_usd
FROM ccusage_usage_hourly FINAL
WHERE dateDiff('day', toDate(hour, {tz:String}), today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY weekday, hour_of_day
ORDER BY weekday, hour_of_day;

-- name: busiest_hours
-- description: The `limit` clock hours that cost the most over the last `days` days (start in time zone `tz`), all machines added up per hour (or one machine, one agent): cost, tokens, entries (the lines ccusage counted), models and machines
-- params: days:UInt32=30, limit:UInt32=10, tz:String=UTC, machine:String=, agent:String=
SELECT
    formatDateTime(hour, '%Y-%m-%d %H:%i', {tz:String}) AS hour_start,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    sum(entries) AS entries,
    arraySort(groupUniqArrayArray(models_used)) AS models,
    uniqExact(machine_name) AS machines
FROM ccusage_usage_hourly FINAL
WHERE toDate(hour, {tz:String}) > today() - {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY hour
ORDER BY cost_usd DESC, tokens DESC, hour
LIMIT {limit:UInt32};

-- name: day_by_hour
-- description: Cost per hour of one day (`date` as YYYY-MM-DD, a day in time zone `tz`), all machines added up (or one machine, one agent), with the running total: every hour 0-23 listed; `date` empty (the default): today so far, from midnight to the current hour, as fresh as the last import
-- params: date:String=, tz:String=UTC, machine:String=, agent:String=
SELECT
    hour_of_day,
    cost_usd,
    tokens,
    entries,
    sum(cost_usd) OVER (ORDER BY hour_of_day) AS running_cost_usd
FROM
(
    SELECT
        toHour(hour, {tz:String}) AS hour_of_day,
        sum(total_cost) AS cost_usd,
        sum(total_tokens) AS tokens,
        sum(entries) AS entries
    FROM ccusage_usage_hourly FINAL
    WHERE toDate(hour, {tz:String}) = if({date:String} = '', toDate(now(), {tz:String}), toDate({date:String}))
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY hour_of_day
    ORDER BY hour_of_day WITH FILL FROM 0 TO if({date:String} = '', toHour(now(), {tz:String}) + 1, 24)
)
ORDER BY hour_of_day;

-- =============================================================================================================
-- Cache efficiency and value for money
-- Estimated savings: every Claude model's list prices keep the same ratios to its input price (output 5x, cache
-- write 1.25x, cache read 0.1x), so a model's input price is inferred from its own cost and tokens, and the
-- savings are what its cache reads would have cost as fresh input (0.9x) minus the cache-write surcharge (0.25x).
-- An estimate: 1-hour cache writes (2x) and long-context prices are not told apart in ccusage's reports.
-- Other vendors' models (GPT, Gemini, ...) price their caches differently, so savings are estimated for Claude
-- models only (a name containing "claude", whichever agent used it) and are NULL for the others.
-- =============================================================================================================

-- name: cache_efficiency
-- description: Cache use per model over the last `days` days plus a total row (model = 'all'), all machines and agents added up (or one machine, one agent): cache-read share and estimated savings (Claude models only; NULL for others, and the total row's savings are its Claude models')
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    if(grouping(model_name) = 1, 'all', model_name) AS model,
    sum(input_tokens) AS input,
    sum(cache_creation_tokens) AS cache_creation,
    sum(cache_read_tokens) AS cache_read,
    round(cache_read / nullIf(input + cache_creation + cache_read, 0), 4) AS cache_read_share,
    sum(cost) AS cost_usd,
    sum(read_savings) AS cache_read_savings_usd,
    sum(write_surcharge) AS cache_write_surcharge_usd,
    cache_read_savings_usd - cache_write_surcharge_usd AS net_savings_usd,
    cost_usd + net_savings_usd AS cost_without_cache_usd
FROM
(
    SELECT
        model_name,
        input_tokens,
        cache_creation_tokens,
        cache_read_tokens,
        cost,
        cost / nullIf(input_tokens + 5 * output_tokens + 1.25 * cache_creation_tokens + 0.1 * cache_read_tokens, 0)
            AS input_price,
        positionCaseInsensitive(model_name, 'claude') > 0 AS claude_model,
        if(claude_model, ifNull(0.9 * cache_read_tokens * input_price, 0), NULL) AS read_savings,
        if(claude_model, ifNull(0.25 * cache_creation_tokens * input_price, 0), NULL) AS write_surcharge
    FROM ccusage_model_breakdowns FINAL
    WHERE record_type = 'daily' AND total_tokens > 0
      AND dateDiff('day', toDate(record_key), today()) < {days:UInt32}
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
)
GROUP BY model_name WITH ROLLUP
ORDER BY grouping(model_name), cost_usd DESC, model_name;

-- name: cache_efficiency_daily
-- description: Cache-read share and estimated net cache savings per day over the last `days` days, all machines and agents added up (or one machine, one agent); savings of Claude models only (NULL on a day without one)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    toDate(record_key) AS date,
    round(sum(cache_read_tokens) / nullIf(sum(input_tokens + cache_creation_tokens + cache_read_tokens), 0), 4)
        AS cache_read_share,
    sum(cost) AS cost_usd,
    sum(if(positionCaseInsensitive(model_name, 'claude') > 0,
        ifNull((0.9 * cache_read_tokens - 0.25 * cache_creation_tokens) * cost
            / nullIf(input_tokens + 5 * output_tokens + 1.25 * cache_creation_tokens + 0.1 * cache_read_tokens, 0), 0),
        NULL)) AS net_savings_usd
FROM ccusage_model_breakdowns FINAL
WHERE record_type = 'daily' AND total_tokens > 0
  AND dateDiff('day', toDate(record_key), today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date
ORDER BY date;

-- name: tokens_per_dollar
-- description: Tokens per dollar per model over the last `days` days plus a total row (model = 'all'), all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    if(grouping(model_name) = 1, 'all', model_name) AS model,
    sum(cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    round(tokens / nullIf(cost_usd, 0)) AS tokens_per_usd,
    round(sum(input_tokens + output_tokens) / nullIf(cost_usd, 0)) AS uncached_tokens_per_usd,
    round(sum(output_tokens) / nullIf(cost_usd, 0)) AS output_tokens_per_usd
FROM ccusage_model_breakdowns FINAL
WHERE record_type = 'daily' AND total_tokens > 0
  AND dateDiff('day', toDate(record_key), today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY model_name WITH ROLLUP
ORDER BY grouping(model_name), tokens_per_usd DESC, model_name;

-- =============================================================================================================
-- 5-hour blocks (Claude Code's billing windows: only Claude Code has them, so another agent gets no rows)
-- =============================================================================================================

-- name: active_block
-- description: The running 5-hour block of each machine as of its last import: cost so far, burn rate, ccusage's projected block total, time left, age of the numbers; all machines and agents (or one machine, one agent)
-- params: machine:String=, agent:String=
SELECT
    machine_name,
    agent,
    start_time,
    end_time,
    minutes_left,
    elapsed_pct,
    cost_usd,
    total_tokens AS tokens,
    entries,
    burn_rate_cost_per_hour,
    burn_rate_tokens_per_minute,
    projected_total_cost,
    projected_total_tokens,
    models_used,
    imported_at,
    dateDiff('minute', imported_at, now64(3)) AS data_age_minutes
FROM ccusage_v_active_blocks
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
ORDER BY machine_name, agent, start_time;

-- name: block_history
-- description: The `limit` latest 5-hour blocks of the last `days` days, one row per machine's block, with their actual cost per hour and usage-limit hits; all machines and agents (or one machine, one agent)
-- params: days:UInt32=7, limit:UInt32=50, machine:String=, agent:String=
SELECT
    machine_name,
    start_time,
    ifNull(actual_end_time, end_time) AS last_activity,
    is_active,
    entries,
    total_tokens AS tokens,
    cost_usd,
    round(cost_usd / nullIf(dateDiff('second', start_time, ifNull(actual_end_time, end_time)), 0) * 3600, 4)
        AS cost_per_active_hour_usd,
    models_used,
    usage_limit_reset_time IS NOT NULL AS hit_usage_limit
FROM ccusage_usage_blocks FINAL
WHERE dateDiff('day', start_time, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
ORDER BY start_time DESC, machine_name
LIMIT {limit:UInt32};

-- name: block_stats
-- description: 5-hour blocks per machine over the last `days` days: count, average, median, 90th percentile and largest cost, usage-limit hits; all agents (or one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    machine_name,
    count() AS blocks,
    sum(cost_usd) AS total_cost_usd,
    round(avg(cost_usd), 4) AS avg_block_cost_usd,
    round(quantileExact(0.5)(cost_usd), 4) AS median_block_cost_usd,
    round(quantileExact(0.9)(cost_usd), 4) AS p90_block_cost_usd,
    max(cost_usd) AS max_block_cost_usd,
    round(avg(total_tokens)) AS avg_block_tokens,
    countIf(usage_limit_reset_time IS NOT NULL) AS usage_limit_hits
FROM ccusage_usage_blocks FINAL
WHERE dateDiff('day', start_time, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY machine_name
ORDER BY machine_name;

-- name: usage_limit_hits
-- description: Blocks in which Claude Code reported "usage limit reached" over the last `days` days, one row per machine's block, with the reset time; all machines and agents (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    machine_name,
    start_time,
    usage_limit_reset_time,
    cost_usd,
    total_tokens AS tokens,
    models_used
FROM ccusage_usage_blocks FINAL
WHERE usage_limit_reset_time IS NOT NULL
  AND dateDiff('day', start_time, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
ORDER BY start_time DESC, machine_name;

-- =============================================================================================================
-- Dashboard
-- =============================================================================================================

-- name: dashboard_summary
-- description: One row of headline numbers for a dashboard, all machines and agents added up (or one machine, one agent): today, yesterday, 7 and 30 days, this month, all time, counts of machines, agents, projects, sessions and active blocks, last import (of the machine: imports are not per agent)
-- params: machine:String=, agent:String=
SELECT
    sumIf(total_cost, date = today()) AS today_cost_usd,
    sumIf(total_cost, date = yesterday()) AS yesterday_cost_usd,
    sumIf(total_cost, dateDiff('day', date, today()) < 7) AS last_7_days_cost_usd,
    sumIf(total_cost, dateDiff('day', date, today()) < 30) AS last_30_days_cost_usd,
    sumIf(total_cost, toStartOfMonth(date) = toStartOfMonth(today())) AS month_to_date_cost_usd,
    sum(total_cost) AS all_time_cost_usd,
    sum(total_tokens) AS all_time_tokens,
    uniqExact(date) AS active_days,
    min(date) AS first_day,
    max(date) AS last_day,
    uniqExact(machine_name) AS machines,
    uniqExact(agent) AS agents,
    (
        SELECT uniqExact(project_key) FROM ccusage_usage_projects_daily FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
    ) AS projects,
    (
        SELECT count() FROM ccusage_usage_sessions FINAL
        WHERE total_tokens > 0 AND ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
    ) AS sessions,
    (
        SELECT count() FROM ccusage_v_active_blocks
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
    ) AS active_blocks,
    (
        SELECT max(finished_at) FROM ccusage_import_runs
        WHERE status IN ('ok', 'unchanged', 'partial')
          AND ({machine:String} = '' OR machine_name = {machine:String})
    ) AS last_import
FROM ccusage_usage_daily FINAL
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String});

-- name: month_to_date
-- description: This month so far against the same days of last month, all machines and agents added up (or one machine, one agent)
-- params: machine:String=, agent:String=
SELECT
    toStartOfMonth(today()) AS month,
    sumIf(total_cost, date >= toStartOfMonth(today())) AS month_to_date_cost_usd,
    sumIf(total_cost, date < toStartOfMonth(today())
        AND toDayOfMonth(date) <= toDayOfMonth(today())) AS same_days_last_month_cost_usd,
    round(100 * (month_to_date_cost_usd - same_days_last_month_cost_usd) / nullIf(same_days_last_month_cost_usd, 0), 2)
        AS change_pct,
    sumIf(total_cost, date < toStartOfMonth(today())) AS last_month_total_cost_usd
FROM ccusage_usage_daily FINAL
WHERE date >= toStartOfMonth(toStartOfMonth(today()) - 1)
  AND date <= today()
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String});

-- =============================================================================================================
-- Chart series (column names fit Grafana and most chart tools: a time or label column, then values)
-- =============================================================================================================

-- name: chart_line_daily_cost
-- description: Line chart: cost per calendar day (0 on idle days) from the first day with data within the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
WITH
    calendar AS (
        SELECT today() - number AS date
        FROM numbers(least({days:UInt32}, toUInt32(today()) + 1))
        WHERE date >= (
            SELECT min(date) FROM ccusage_usage_daily FINAL
            WHERE ({machine:String} = '' OR machine_name = {machine:String})
              AND ({agent:String} = '' OR agent = {agent:String})
        )
    ),
    per_day AS (
        SELECT date, sum(total_cost) AS day_cost, sum(total_tokens) AS day_tokens
        FROM ccusage_usage_daily FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY date
    )
SELECT
    calendar.date AS time,
    per_day.day_cost AS cost_usd,
    per_day.day_tokens AS tokens
FROM calendar
LEFT JOIN per_day ON per_day.date = calendar.date
ORDER BY time;

-- name: chart_line_cost_by_machine
-- description: Line chart, one series per machine: cost per calendar day and machine (0 on idle days) over the last `days` days, all agents added up (or one agent: then only the machines that have its usage)
-- params: days:UInt32=30, agent:String=
WITH
    calendar AS (
        SELECT today() - number AS date
        FROM numbers(least({days:UInt32}, toUInt32(today()) + 1))
    ),
    machines AS (
        SELECT DISTINCT machine_name FROM ccusage_usage_daily FINAL
        WHERE ({agent:String} = '' OR agent = {agent:String})
    ),
    per_day AS (
        SELECT machine_name, date, sum(total_cost) AS day_cost
        FROM ccusage_usage_daily FINAL
        WHERE dateDiff('day', date, today()) < {days:UInt32}
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY machine_name, date
    )
SELECT
    calendar.date AS time,
    machines.machine_name AS machine_name,
    per_day.day_cost AS cost_usd
FROM calendar
CROSS JOIN machines
LEFT JOIN per_day ON per_day.date = calendar.date AND per_day.machine_name = machines.machine_name
ORDER BY time, machine_name;

-- name: chart_pie_model_cost
-- description: Pie chart: share of cost per model over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    model AS label,
    sum(cost) AS value,
    round(100 * value / sum(value) OVER (), 2) AS percent
FROM ccusage_v_model_days
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY label
ORDER BY value DESC, label;

-- name: chart_pie_project_cost
-- description: Pie chart: cost of the `limit` most expensive projects over the last `days` days and one 'other' slice, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, limit:UInt32=8, machine:String=, agent:String=
SELECT
    if(position <= {limit:UInt32}, project, 'other') AS label,
    sum(cost_usd) AS value,
    round(100 * value / sum(value) OVER (), 2) AS percent
FROM
(
    SELECT
        project,
        cost_usd,
        row_number() OVER (ORDER BY cost_usd DESC, project_key) AS position
    FROM
    (
        SELECT project_key, argMax(project_name, date) AS project, sum(total_cost) AS cost_usd
        FROM ccusage_usage_projects_daily FINAL
        WHERE dateDiff('day', date, today()) < {days:UInt32}
          AND ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY project_key
    )
)
GROUP BY label
ORDER BY label = 'other', value DESC, label;

-- name: chart_pie_token_types
-- description: Pie chart: tokens by type (input, output, cache write, cache read) over the last `days` days, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    kind.1 AS label,
    kind.2 AS value,
    round(100 * value / nullIf(total, 0), 2) AS percent
FROM
(
    SELECT
        sum(input_tokens) AS input,
        sum(output_tokens) AS output,
        sum(cache_creation_tokens) AS cache_creation,
        sum(cache_read_tokens) AS cache_read,
        input + output + cache_creation + cache_read AS total
    FROM ccusage_usage_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
)
ARRAY JOIN [('input', input), ('output', output), ('cache write', cache_creation), ('cache read', cache_read)] AS kind
ORDER BY value DESC, label;

-- name: chart_bar_monthly_cost_by_model
-- description: Stacked bar chart: cost per month (x) and model (stack) over the last `months` months, all machines and agents added up (or one machine, one agent)
-- params: months:UInt32=6, machine:String=, agent:String=
SELECT
    formatDateTime(toStartOfMonth(date), '%Y-%m') AS month,
    model AS series,
    sum(cost) AS value
FROM ccusage_v_model_days
WHERE dateDiff('month', date, today()) < {months:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY month, series
ORDER BY month, value DESC, series;

-- name: chart_bar_machine_cost
-- description: Bar chart: cost per machine over the last `days` days, all agents added up (or one agent)
-- params: days:UInt32=30, agent:String=
SELECT
    machine_name AS label,
    sum(total_cost) AS value
FROM ccusage_usage_daily FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY label
ORDER BY value DESC, label;

-- name: chart_pie_agent_cost
-- description: Pie chart: share of cost per coding agent over the last `days` days, all machines added up (or one machine)
-- params: days:UInt32=30, machine:String=
SELECT
    agent AS label,
    sum(total_cost) AS value,
    round(100 * value / nullIf(sum(value) OVER (), 0), 2) AS percent
FROM ccusage_usage_daily FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
GROUP BY label
ORDER BY value DESC, label;

-- =============================================================================================================
-- Forecast and anomalies
-- =============================================================================================================

-- name: cost_forecast
-- description: Linear trend of the daily cost over the last `days` days (idle days as 0, none before the first day with data), all machines and agents added up first (or one machine, one agent), continued `horizon` days ahead
-- params: days:UInt32=28, horizon:UInt32=7, machine:String=, agent:String=
WITH
    series AS (
        SELECT calendar.date AS date, per_day.day_cost AS cost
        FROM
        (
            SELECT today() - number AS date
            FROM numbers(least({days:UInt32}, toUInt32(today()) + 1))
            WHERE date >= (
                SELECT min(date) FROM ccusage_usage_daily FINAL
                WHERE ({machine:String} = '' OR machine_name = {machine:String})
                  AND ({agent:String} = '' OR agent = {agent:String})
            )
        ) AS calendar
        LEFT JOIN
        (
            SELECT date, sum(total_cost) AS day_cost
            FROM ccusage_usage_daily FINAL
            WHERE ({machine:String} = '' OR machine_name = {machine:String})
              AND ({agent:String} = '' OR agent = {agent:String})
            GROUP BY date
        ) AS per_day ON per_day.date = calendar.date
    ),
    fit AS (
        SELECT simpleLinearRegression(toFloat64(dateDiff('day', today(), date)), cost) AS line
        FROM series
    )
SELECT
    date,
    kind,
    actual_cost_usd,
    round(greatest(0, (SELECT tupleElement(line, 2) FROM fit)
        + (SELECT tupleElement(line, 1) FROM fit) * dateDiff('day', today(), date)), 4) AS trend_cost_usd
FROM
(
    SELECT date, 'actual' AS kind, toNullable(cost) AS actual_cost_usd FROM series
    UNION ALL
    SELECT today() + number + 1 AS date, 'forecast' AS kind, CAST(NULL, 'Nullable(Float64)') AS actual_cost_usd
    FROM numbers({horizon:UInt32})
)
ORDER BY date;

-- name: month_end_forecast
-- description: This month's cost so far plus the average daily cost of the last `days` days for each day left, all machines and agents added up (or one machine, one agent)
-- params: days:UInt32=14, machine:String=, agent:String=
SELECT
    toStartOfMonth(today()) AS month,
    sumIf(total_cost, date >= toStartOfMonth(today()) AND date <= today()) AS month_to_date_cost_usd,
    sumIf(total_cost, dateDiff('day', date, today()) BETWEEN 0 AND {days:UInt32} - 1) / nullIf({days:UInt32}, 0)
        AS avg_daily_cost_usd,
    toDayOfMonth(toLastDayOfMonth(today())) - toDayOfMonth(today()) AS days_left,
    round(month_to_date_cost_usd + avg_daily_cost_usd * days_left, 2) AS projected_month_cost_usd
FROM ccusage_usage_daily FINAL
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String});

-- name: anomaly_days
-- description: Days of the last `days` days whose cost is above mean + `sigma` standard deviations of the days with usage, all machines and agents added up per day first (or one machine, one agent)
-- params: days:UInt32=90, sigma:Float64=2, machine:String=, agent:String=
SELECT
    date,
    cost_usd,
    round(mean_usd, 4) AS mean_usd,
    round(stddev_usd, 4) AS stddev_usd,
    round(mean_usd + {sigma:Float64} * stddev_usd, 4) AS threshold_usd,
    round((cost_usd - mean_usd) / nullIf(stddev_usd, 0), 2) AS z_score
FROM
(
    SELECT
        date,
        cost_usd,
        avg(cost_usd) OVER () AS mean_usd,
        stddevPop(cost_usd) OVER () AS stddev_usd
    FROM
    (
        SELECT date, sum(total_cost) AS cost_usd
        FROM ccusage_usage_daily FINAL
        WHERE dateDiff('day', date, today()) < {days:UInt32}
          AND ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY date
    )
)
WHERE cost_usd > mean_usd + {sigma:Float64} * stddev_usd
ORDER BY date;

-- name: anomaly_days_by_machine
-- description: Per machine, days of the last `days` days whose cost (all agents added up per machine and day first, or one agent) is above that machine's own mean + `sigma` standard deviations (windows partitioned by machine)
-- params: days:UInt32=90, sigma:Float64=2, agent:String=
SELECT
    machine_name,
    date,
    cost_usd,
    round(mean_usd, 4) AS mean_usd,
    round(stddev_usd, 4) AS stddev_usd,
    round((cost_usd - mean_usd) / nullIf(stddev_usd, 0), 2) AS z_score
FROM
(
    SELECT
        machine_name,
        date,
        cost_usd,
        avg(cost_usd) OVER (PARTITION BY machine_name) AS mean_usd,
        stddevPop(cost_usd) OVER (PARTITION BY machine_name) AS stddev_usd
    FROM
    (
        SELECT machine_name, date, sum(total_cost) AS cost_usd
        FROM ccusage_usage_daily FINAL
        WHERE dateDiff('day', date, today()) < {days:UInt32}
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY machine_name, date
    )
)
WHERE cost_usd > mean_usd + {sigma:Float64} * stddev_usd
ORDER BY machine_name, date;

-- =============================================================================================================
-- Data health
-- =============================================================================================================

-- name: table_row_counts
-- description: Rows per table as queries see them (FINAL: one row per key) and the machines they belong to, all agents (or one agent); import runs and budget alerts are logs of every agent, counted as they are
-- params: machine:String=, agent:String=
SELECT table_name, rows, machines
FROM
(
    SELECT 'ccusage_usage_daily' AS table_name, count() AS rows, uniqExact(machine_name) AS machines
    FROM ccusage_usage_daily FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_usage_monthly', count(), uniqExact(machine_name)
    FROM ccusage_usage_monthly FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_usage_projects_daily', count(), uniqExact(machine_name)
    FROM ccusage_usage_projects_daily FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_usage_sessions', count(), uniqExact(machine_name)
    FROM ccusage_usage_sessions FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_usage_blocks', count(), uniqExact(machine_name)
    FROM ccusage_usage_blocks FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_usage_hourly', count(), uniqExact(machine_name)
    FROM ccusage_usage_hourly FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_model_breakdowns', count(), uniqExact(machine_name)
    FROM ccusage_model_breakdowns FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_models_used', count(), uniqExact(machine_name)
    FROM ccusage_models_used FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    UNION ALL
    SELECT 'ccusage_import_runs', count(), uniqExact(machine_name)
    FROM ccusage_import_runs WHERE ({machine:String} = '' OR machine_name = {machine:String})
    UNION ALL
    SELECT 'ccusage_alerts', count(), uniqExact(machine_name)
    FROM ccusage_alerts WHERE ({machine:String} = '' OR machine_name = {machine:String})
)
ORDER BY table_name;

-- name: data_freshness
-- description: Per usage table, machine and agent: the newest usage in it (NULL for sessions of an agent that reports no activity times) and when it was last written; all machines and agents (or one machine, one agent)
-- params: machine:String=, agent:String=
SELECT
    table_name,
    machine_name,
    agent,
    newest_usage,
    last_written,
    dateDiff('minute', last_written, now64(3)) AS minutes_since_write
FROM
(
    SELECT 'ccusage_usage_daily' AS table_name, machine_name, agent, toDateTime64(max(date), 3, 'UTC') AS newest_usage,
           max(imported_at) AS last_written
    FROM ccusage_usage_daily FINAL GROUP BY machine_name, agent
    UNION ALL
    SELECT 'ccusage_usage_monthly', machine_name, agent, toDateTime64(max(month), 3, 'UTC'), max(imported_at)
    FROM ccusage_usage_monthly FINAL GROUP BY machine_name, agent
    UNION ALL
    SELECT 'ccusage_usage_projects_daily', machine_name, agent, toDateTime64(max(date), 3, 'UTC'), max(imported_at)
    FROM ccusage_usage_projects_daily FINAL GROUP BY machine_name, agent
    UNION ALL
    SELECT 'ccusage_usage_sessions', machine_name, agent, max(last_activity), max(imported_at)
    FROM ccusage_usage_sessions FINAL GROUP BY machine_name, agent
    UNION ALL
    SELECT 'ccusage_usage_blocks', machine_name, agent, max(ifNull(actual_end_time, start_time)), max(imported_at)
    FROM ccusage_usage_blocks FINAL GROUP BY machine_name, agent
)
WHERE ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
ORDER BY table_name, machine_name, agent;

-- name: import_runs_recent
-- description: The `limit` latest import runs with status, duration, rows written and the first line of any error
-- params: limit:UInt32=20, machine:String=
SELECT
    machine_name,
    started_at,
    status,
    round(dateDiff('millisecond', started_at, finished_at) / 1000, 2) AS seconds,
    round(fetch_seconds, 2) AS fetch_seconds,
    round(write_seconds, 2) AS write_seconds,
    arraySum(mapValues(rows_written)) AS rows_written,
    transcript_files,
    ccusage_version,
    runner,
    splitByChar('\n', error_text)[1] AS error
FROM ccusage_import_runs
WHERE ({machine:String} = '' OR machine_name = {machine:String})
ORDER BY started_at DESC, machine_name
LIMIT {limit:UInt32};

-- name: import_failures
-- description: Failed or partial import runs of the last `days` days with their error text
-- params: days:UInt32=7, machine:String=
SELECT
    machine_name,
    started_at,
    status,
    ccusage_version,
    error_text
FROM ccusage_import_runs
WHERE status NOT IN ('ok', 'unchanged', 'empty')
  AND dateDiff('day', started_at, now()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
ORDER BY started_at DESC, machine_name;

-- =============================================================================================================
-- Several machines
-- =============================================================================================================

-- name: machine_overview
-- description: One row per machine: all-time cost and tokens, first and last day, active days, its agents, projects, sessions, last successful import; all agents added up (or one agent)
-- params: agent:String=
SELECT
    days_table.machine_name AS machine_name,
    days_table.agents AS agents,
    days_table.cost_usd AS cost_usd,
    days_table.tokens AS tokens,
    days_table.first_day AS first_day,
    days_table.last_day AS last_day,
    days_table.active_days AS active_days,
    projects_table.projects AS projects,
    sessions_table.sessions AS sessions,
    runs_table.last_import AS last_import
FROM
(
    SELECT machine_name, arraySort(groupUniqArray(agent)) AS agents, sum(total_cost) AS cost_usd,
           sum(total_tokens) AS tokens, min(date) AS first_day, max(date) AS last_day, uniqExact(date) AS active_days
    FROM ccusage_usage_daily FINAL
    WHERE ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name
) AS days_table
LEFT JOIN
(
    SELECT machine_name, uniqExact(project_key) AS projects
    FROM ccusage_usage_projects_daily FINAL
    WHERE ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name
) AS projects_table ON projects_table.machine_name = days_table.machine_name
LEFT JOIN
(
    SELECT machine_name, count() AS sessions
    FROM ccusage_usage_sessions FINAL
    WHERE total_tokens > 0 AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name
) AS sessions_table ON sessions_table.machine_name = days_table.machine_name
LEFT JOIN
(
    SELECT machine_name, max(finished_at) AS last_import
    FROM ccusage_import_runs
    WHERE status IN ('ok', 'unchanged', 'partial')
    GROUP BY machine_name
) AS runs_table ON runs_table.machine_name = days_table.machine_name
ORDER BY cost_usd DESC, machine_name;

-- name: machine_daily_comparison
-- description: Cost per day and machine over the last `days` days, all agents added up (or one agent), with each machine's share of that day (a window over the machines of one day, on purpose)
-- params: days:UInt32=14, agent:String=
SELECT
    date,
    machine_name,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (PARTITION BY date), 0), 2) AS share_of_day_pct
FROM ccusage_usage_daily FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date, machine_name
ORDER BY date, machine_name;

-- name: machine_ranking
-- description: Machines ranked by cost over the last `days` days, all agents added up (or one agent), with share of the total, active days and cost per active day
-- params: days:UInt32=30, agent:String=
SELECT
    rank() OVER (ORDER BY cost_usd DESC) AS rank,
    machine_name,
    cost_usd,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (), 0), 2) AS share_pct,
    tokens,
    active_days,
    round(cost_usd / active_days, 4) AS cost_per_active_day_usd
FROM
(
    SELECT machine_name, sum(total_cost) AS cost_usd, sum(total_tokens) AS tokens, uniqExact(date) AS active_days
    FROM ccusage_usage_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name
)
ORDER BY rank, machine_name;

-- name: machine_top_models
-- description: The `limit` most expensive models of each machine over the last `days` days, all agents (or one agent), with their share of that machine's cost (window partitioned by machine)
-- params: days:UInt32=30, limit:UInt32=3, agent:String=
SELECT
    machine_name,
    model,
    cost_usd,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (PARTITION BY machine_name), 0), 2) AS share_pct,
    tokens
FROM
(
    SELECT machine_name, model, sum(cost) AS cost_usd, sum(total_tokens) AS tokens
    FROM ccusage_v_model_days
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name, model
)
ORDER BY machine_name, cost_usd DESC, model
LIMIT {limit:UInt32} BY machine_name;

-- name: machine_freshness
-- description: Per machine: last successful import (status ok, unchanged or partial), hours since, and is_stale = 1 when that is more than `stale_hours` hours ago or never
-- params: stale_hours:UInt32=2
SELECT
    machines.machine_name AS machine_name,
    runs.successes > 0 ? runs.last_success : NULL AS last_successful_import,
    round(dateDiff('second', last_successful_import, now64(3)) / 3600, 2) AS hours_since,
    runs.last_status AS last_status,
    runs.last_run AS last_run,
    usage.last_day AS last_usage_day,
    last_successful_import IS NULL
        OR last_successful_import < now64(3) - toIntervalHour({stale_hours:UInt32}) AS is_stale
FROM
(
    SELECT machine_name FROM ccusage_import_runs
    UNION DISTINCT
    SELECT machine_name FROM ccusage_usage_daily FINAL
) AS machines
LEFT JOIN
(
    SELECT
        machine_name,
        countIf(status IN ('ok', 'unchanged', 'partial')) AS successes,
        maxIf(finished_at, status IN ('ok', 'unchanged', 'partial')) AS last_success,
        max(finished_at) AS last_run,
        argMax(status, finished_at) AS last_status
    FROM ccusage_import_runs
    GROUP BY machine_name
) AS runs ON runs.machine_name = machines.machine_name
LEFT JOIN
(
    SELECT machine_name, max(date) AS last_day FROM ccusage_usage_daily FINAL GROUP BY machine_name
) AS usage ON usage.machine_name = machines.machine_name
ORDER BY is_stale DESC, machine_name;

-- name: machine_monthly_trend
-- description: Cost per machine and month over the last `months` months, all agents added up first (or one agent), with the change from that machine's previous calendar month (window partitioned by machine; a month without usage counts as 0)
-- params: months:UInt32=12, agent:String=
SELECT
    machine_name,
    month,
    cost_usd,
    tokens,
    previous_month_cost,
    round((cost_usd - previous_month_cost) / nullIf(previous_month_cost, 0) * 100, 2) AS cost_change_pct,
    cache_hit_share
FROM
(
    SELECT
        machine_name,
        month,
        cost_usd,
        tokens,
        if(lagInFrame(month, 1) OVER w = addMonths(month, -1), lagInFrame(cost_usd, 1, 0.) OVER w, 0)
            AS previous_month_cost,
        cache_hit_share
    FROM
    (
        SELECT
            machine_name,
            month,
            sum(total_cost) AS cost_usd,
            sum(total_tokens) AS tokens,
            round(sum(cache_read_tokens) / nullIf(sum(input_tokens + cache_creation_tokens + cache_read_tokens), 0), 4)
                AS cache_hit_share
        FROM ccusage_usage_monthly FINAL
        WHERE ({agent:String} = '' OR agent = {agent:String})
        GROUP BY machine_name, month
    )
    WINDOW w AS (PARTITION BY machine_name ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
WHERE dateDiff('month', month, today()) < {months:UInt32}
ORDER BY machine_name, month;

-- name: machine_shared_projects
-- description: Projects used on more than one machine over the last `days` days, with the cost on each machine; all agents (or one agent; only Claude Code has projects)
-- params: days:UInt32=90, agent:String=
SELECT
    project_key,
    argMax(project, last_day) AS project,
    count() AS machines,
    sum(machine_cost_usd) AS cost_usd,
    arraySort(groupArray((machine_name, machine_cost_usd))) AS cost_per_machine
FROM
(
    SELECT
        project_key,
        machine_name,
        argMax(project_name, date) AS project,
        max(date) AS last_day,
        sum(total_cost) AS machine_cost_usd
    FROM ccusage_usage_projects_daily FINAL
    WHERE dateDiff('day', date, today()) < {days:UInt32}
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY project_key, machine_name
)
GROUP BY project_key
HAVING machines > 1
ORDER BY cost_usd DESC, project_key;

-- =============================================================================================================
-- Coding agents (Claude Code, Codex, Gemini CLI, OpenCode and every other agent ccusage reads, by ccusage's name)
-- Each agent's rows are its own: these queries split by agent where the others add agents up. Only Claude Code has
-- projects and 5-hour blocks; Codex reports reasoning tokens (included in its output tokens).
-- =============================================================================================================

-- name: agent_summary
-- description: One row per agent and machine, all time: cost and its share, tokens by type, active days, first and last day, sessions, reasoning tokens (NULL where the agent reports none); all machines and agents (or one machine, one agent)
-- params: machine:String=, agent:String=
SELECT
    days_table.agent AS agent,
    days_table.machine_name AS machine_name,
    days_table.cost_usd AS cost_usd,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (), 0), 2) AS cost_share_pct,
    days_table.tokens AS tokens,
    days_table.input AS input,
    days_table.output AS output,
    days_table.cache_creation AS cache_creation,
    days_table.cache_read AS cache_read,
    days_table.active_days AS active_days,
    days_table.first_day AS first_day,
    days_table.last_day AS last_day,
    sessions_table.sessions AS sessions,
    sessions_table.reasoning_tokens AS reasoning_tokens
FROM
(
    SELECT
        machine_name,
        agent,
        sum(total_cost) AS cost_usd,
        sum(total_tokens) AS tokens,
        sum(input_tokens) AS input,
        sum(output_tokens) AS output,
        sum(cache_creation_tokens) AS cache_creation,
        sum(cache_read_tokens) AS cache_read,
        uniqExact(date) AS active_days,
        min(date) AS first_day,
        max(date) AS last_day
    FROM ccusage_usage_daily FINAL
    WHERE ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name, agent
) AS days_table
LEFT JOIN
(
    SELECT machine_name, agent, count() AS sessions, sum(reasoning_tokens) AS reasoning_tokens
    FROM ccusage_usage_sessions FINAL
    WHERE total_tokens > 0
      AND ({machine:String} = '' OR machine_name = {machine:String})
      AND ({agent:String} = '' OR agent = {agent:String})
    GROUP BY machine_name, agent
) AS sessions_table
    ON sessions_table.machine_name = days_table.machine_name AND sessions_table.agent = days_table.agent
ORDER BY cost_usd DESC, agent, machine_name;

-- name: agent_cost_daily
-- description: Cost and tokens per day and agent over the last `days` days, all machines added up (or one machine), with each agent's share of that day (a window over the agents of one day, on purpose); agent '' = every agent, one row each
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    date,
    agent,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (PARTITION BY date), 0), 2) AS share_of_day_pct,
    uniqExact(machine_name) AS machines
FROM ccusage_usage_daily FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date, agent
ORDER BY date, cost_usd DESC, agent;

-- name: agent_models
-- description: Cost and tokens per agent and model over the last `days` days, all machines added up (or one machine), with the model's share of its agent's cost (window partitioned by agent); agent '' = every agent
-- params: days:UInt32=30, machine:String=, agent:String=
SELECT
    agent,
    model,
    sum(cost) AS cost_usd,
    round(100 * cost_usd / nullIf(sum(cost_usd) OVER (PARTITION BY agent), 0), 2) AS share_of_agent_pct,
    sum(input_tokens) AS input,
    sum(output_tokens) AS output,
    sum(cache_creation_tokens) AS cache_creation,
    sum(cache_read_tokens) AS cache_read,
    sum(total_tokens) AS tokens,
    uniqExact(date) AS active_days,
    min(date) AS first_day,
    max(date) AS last_day
FROM ccusage_v_model_days
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY agent, model
ORDER BY agent, cost_usd DESC, model;

-- name: agent_monthly_trend
-- description: Cost per agent and month over the last `months` months, all machines added up first (or one machine), with the change from that agent's previous calendar month (window partitioned by agent; a month without usage counts as 0); agent '' = every agent
-- params: months:UInt32=12, machine:String=, agent:String=
SELECT
    agent,
    month,
    cost_usd,
    tokens,
    previous_month_cost_usd,
    round(100 * (cost_usd - previous_month_cost_usd) / nullIf(previous_month_cost_usd, 0), 2) AS change_pct
FROM
(
    SELECT
        agent,
        month,
        cost_usd,
        tokens,
        if(lagInFrame(month, 1) OVER w = addMonths(month, -1), lagInFrame(cost_usd, 1, 0.) OVER w, 0)
            AS previous_month_cost_usd
    FROM
    (
        SELECT agent, month, sum(total_cost) AS cost_usd, sum(total_tokens) AS tokens
        FROM ccusage_usage_monthly FINAL
        WHERE ({machine:String} = '' OR machine_name = {machine:String})
          AND ({agent:String} = '' OR agent = {agent:String})
        GROUP BY agent, month
    )
    WINDOW w AS (PARTITION BY agent ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
WHERE dateDiff('month', month, today()) < {months:UInt32}
ORDER BY agent, month;

-- == Anthropic Admin API ==
-- Tables loaded by claude_admin_importer.py (see the `-- == Anthropic Admin API ==` section of the schema). Days are
-- UTC days. ReplacingMergeTrees, read with FINAL. Billed cost is claude_api_costs.amount_usd, exact dollars. Claude
-- Code's own estimated cost (claude_code_model_usage.estimated_cost_usd) estimates spend that is already billed:
-- it is shown beside other numbers, never added to billed cost. A null dimension is stored as ''.

-- name: admin_cost_per_day
-- description: What the organisation was billed per UTC day over the last `days` days (Admin API cost_report, exact dollars), split into token and other costs
-- params: days:UInt32=30
SELECT
    date,
    sum(amount_usd) AS billed_usd,
    sumIf(amount_usd, cost_type = 'tokens') AS tokens_usd,
    sumIf(amount_usd, cost_type != 'tokens') AS other_usd,
    uniqExactIf(workspace_id, amount_usd != 0) AS workspaces
FROM claude_api_costs FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
GROUP BY date
HAVING billed_usd != 0
ORDER BY date;

-- name: admin_cost_by_workspace
-- description: Billed cost per workspace over the last `days` days (Admin API cost_report), with its share and the days it was billed; '(default workspace)' is the organisation's default one
-- params: days:UInt32=30
SELECT
    if(workspace_id = '', '(default workspace)', workspace_id) AS workspace,
    sum(amount_usd) AS billed_usd,
    round(100 * toFloat64(billed_usd) / sum(toFloat64(billed_usd)) OVER (), 2) AS share_pct,
    uniqExactIf(date, amount_usd != 0) AS days_billed,
    minIf(date, amount_usd != 0) AS first_day,
    maxIf(date, amount_usd != 0) AS last_day
FROM claude_api_costs FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
GROUP BY workspace_id
HAVING billed_usd != 0
ORDER BY billed_usd DESC, workspace;

-- name: admin_cost_by_model
-- description: Billed cost per model and token type over the last `days` days (Admin API cost_report grouped by description); costs that are not tokens show their kind, e.g. (web_search)
-- params: days:UInt32=30
SELECT
    if(model != '', model, concat('(', if(cost_type = '', 'other', cost_type), ')')) AS model_or_kind,
    token_type,
    sum(amount_usd) AS billed_usd,
    round(100 * toFloat64(billed_usd) / sum(toFloat64(billed_usd)) OVER (), 2) AS share_pct
FROM claude_api_costs FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
GROUP BY model_or_kind, token_type
HAVING billed_usd != 0
ORDER BY billed_usd DESC, model_or_kind, token_type;

-- name: admin_usage_by_model_and_key
-- description: Tokens per model and API key over the last `days` days (Admin API messages usage), cache writes 5m and 1h apart; '(Console / Workbench)' is usage without an API key; at most `limit` rows
-- params: days:UInt32=30, limit:UInt32=50
SELECT
    model,
    if(api_key_id = '', '(Console / Workbench)', api_key_id) AS api_key,
    sum(uncached_input_tokens) AS uncached_input,
    sum(cache_creation_5m_input_tokens) AS cache_write_5m,
    sum(cache_creation_1h_input_tokens) AS cache_write_1h,
    sum(cache_read_input_tokens) AS cache_read,
    sum(output_tokens) AS output,
    uncached_input + cache_write_5m + cache_write_1h + cache_read + output AS tokens,
    sum(web_search_requests) AS web_searches
FROM claude_api_usage FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
GROUP BY model, api_key_id
HAVING tokens > 0 OR web_searches > 0
ORDER BY tokens DESC, model, api_key
LIMIT {limit:UInt32};

-- name: admin_claude_code_by_user
-- description: Claude Code activity per user (or API key) over the last `days` days from the Admin API: sessions, lines, commits, pull requests and tool actions accepted (no cost: see admin_claude_code_vs_local)
-- params: days:UInt32=30
SELECT
    actor_type,
    actor_id,
    sum(num_sessions) AS sessions,
    sum(lines_added) AS added_lines,
    sum(lines_removed) AS removed_lines,
    sum(commits) AS commits_made,
    sum(pull_requests) AS pull_requests_made,
    sum(arraySum(mapValues(tool_accepted))) AS tool_actions_accepted,
    sum(arraySum(mapValues(tool_rejected))) AS tool_actions_rejected,
    round(tool_actions_accepted / nullIf(tool_actions_accepted + tool_actions_rejected, 0), 4) AS acceptance_rate,
    uniqExactIf(date, num_sessions > 0) AS active_days
FROM claude_code_productivity FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
GROUP BY actor_type, actor_id
HAVING sessions > 0 OR added_lines > 0 OR removed_lines > 0 OR tool_actions_accepted + tool_actions_rejected > 0
ORDER BY sessions DESC, actor_type, actor_id;

-- name: admin_claude_code_vs_local
-- description: Claude Code per day over the last `days` days: the local ccusage estimate of Claude Code (agent claude, all machines; other agents are not Claude Code) beside the Admin API's Claude Code report (tokens and its own estimated cost); two estimates of the same use, never added to billed cost; dates match when CCUSAGE_TIMEZONE is UTC
-- params: days:UInt32=30
WITH
    calendar AS (
        SELECT today() - number AS date
        FROM numbers(least({days:UInt32}, toUInt32(today()) + 1))
    ),
    local AS (
        SELECT date, sum(total_tokens) AS tokens, sum(total_cost) AS cost_usd, uniqExact(machine_name) AS machines
        FROM ccusage_usage_daily FINAL
        WHERE agent = 'claude'
        GROUP BY date
    ),
    api AS (
        SELECT
            date,
            sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens) AS tokens,
            sum(estimated_cost_usd) AS estimated_cost_usd,
            uniqExactIf((actor_type, actor_id), input_tokens + output_tokens + cache_read_tokens
                + cache_creation_tokens > 0) AS actors
        FROM claude_code_model_usage FINAL
        GROUP BY date
    )
SELECT
    calendar.date AS date,
    local.tokens AS local_tokens,
    local.cost_usd AS local_estimate_usd,
    local.machines AS machines,
    api.tokens AS api_tokens,
    api.estimated_cost_usd AS api_estimate_usd,
    api.actors AS api_actors,
    toInt64(local_tokens) - toInt64(api_tokens) AS token_difference
FROM calendar
LEFT JOIN local ON local.date = calendar.date
LEFT JOIN api ON api.date = calendar.date
WHERE local_tokens > 0 OR api_tokens > 0
ORDER BY date;

-- name: admin_estimated_vs_billed
-- description: Estimated vs reported vs billed per UTC day over the last `days` days: the local ccusage estimate of Claude Code (agent claude, all machines or one `machine`: what the importing machines ran), the Admin API's Claude Code report (tokens and Claude Code's own estimate: every user of the organisation, on the Claude API only), and the billed token cost of Claude models (cost_report: every API use of the organisation, not only Claude Code; Claude Code on a subscription is not in it; web search and other costs left out); differences in % (local vs reported tokens and cost, each estimate vs billed) where both sides have a value; estimates are never added to the bill; local days are CCUSAGE_TIMEZONE days
-- params: days:UInt32=30, machine:String=
WITH
    calendar AS (
        SELECT today() - number AS date
        FROM numbers(least({days:UInt32}, toUInt32(today()) + 1))
    ),
    local AS (
        SELECT date, sum(total_tokens) AS tokens, sum(total_cost) AS cost_usd, uniqExact(machine_name) AS machines
        FROM ccusage_usage_daily FINAL
        WHERE agent = 'claude' AND ({machine:String} = '' OR machine_name = {machine:String})
        GROUP BY date
    ),
    reported AS (
        SELECT date, sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens) AS tokens,
               sum(estimated_cost_usd) AS estimate_usd
        FROM claude_code_model_usage FINAL
        GROUP BY date
    ),
    billed AS (
        SELECT date, sum(amount_usd) AS usd
        FROM claude_api_costs FINAL
        WHERE cost_type = 'tokens' AND model != ''
        GROUP BY date
    )
SELECT
    calendar.date AS date,
    local.machines AS machines,
    local.tokens AS local_tokens,
    reported.tokens AS reported_tokens,
    if(local_tokens > 0 AND reported_tokens > 0,
       round(100 * (toFloat64(local_tokens) - reported_tokens) / reported_tokens, 2), NULL) AS local_vs_reported_tokens_pct,
    local.cost_usd AS local_estimate_usd,
    reported.estimate_usd AS reported_estimate_usd,
    if(local_estimate_usd > 0 AND reported_estimate_usd > 0,
       round(100 * (local_estimate_usd - toFloat64(reported_estimate_usd)) / toFloat64(reported_estimate_usd), 2),
       NULL) AS local_vs_reported_usd_pct,
    billed.usd AS billed_usd,
    if(local_estimate_usd > 0 AND billed_usd > 0,
       round(100 * (local_estimate_usd - toFloat64(billed_usd)) / toFloat64(billed_usd), 2), NULL) AS local_vs_billed_pct,
    if(reported_estimate_usd > 0 AND billed_usd > 0,
       round(100 * (toFloat64(reported_estimate_usd) - toFloat64(billed_usd)) / toFloat64(billed_usd), 2),
       NULL) AS reported_vs_billed_pct
FROM calendar
LEFT JOIN local ON local.date = calendar.date
LEFT JOIN reported ON reported.date = calendar.date
LEFT JOIN billed ON billed.date = calendar.date
WHERE local_tokens > 0 OR reported_tokens > 0 OR billed_usd != 0
ORDER BY date;

-- name: admin_usage_hourly
-- description: Tokens per UTC hour over the last `hours` hours (Admin API messages usage in hourly buckets, imported for recent days only), all models added up or one `model`, cache writes 5m and 1h apart; hours without usage are left out
-- params: hours:UInt32=48, model:String=
SELECT
    hour,
    sum(uncached_input_tokens) AS uncached_input,
    sum(cache_creation_5m_input_tokens) AS cache_write_5m,
    sum(cache_creation_1h_input_tokens) AS cache_write_1h,
    sum(cache_read_input_tokens) AS cache_read,
    sum(output_tokens) AS output,
    uncached_input + cache_write_5m + cache_write_1h + cache_read + output AS tokens,
    sum(web_search_requests) AS web_searches
FROM claude_api_usage_hourly FINAL
WHERE dateDiff('hour', hour, now()) < {hours:UInt32}
  AND ({model:String} = '' OR model = {model:String})
GROUP BY hour
HAVING tokens > 0 OR web_searches > 0
ORDER BY hour;

-- == Dashboard ==
-- Queries the dashboards need beyond the ones above: `--dashboard` (the HTML file) runs them by name, like every
-- query it shows; grafana/ccusage-dashboard.json has its own SQL with the Grafana plugin's macros.

-- name: hour_cost_daily
-- description: Claude Code's cost per day and hour of the day (in time zone `tz`) over the last `days` days, with the weekday (1 = Monday), tokens and the clock hours with usage, all machines added up (or one machine, one agent): `hour_weekday_cost` per day, so a page can choose its days
-- params: days:UInt32=90, tz:String=UTC, machine:String=, agent:String=
SELECT
    toDate(hour, {tz:String}) AS date,
    toDayOfWeek(date) AS weekday,
    toHour(hour, {tz:String}) AS hour_of_day,
    sum(total_cost) AS cost_usd,
    sum(total_tokens) AS tokens,
    uniqExact(hour) AS active_hours
FROM ccusage_usage_hourly FINAL
WHERE dateDiff('day', date, today()) < {days:UInt32}
  AND ({machine:String} = '' OR machine_name = {machine:String})
  AND ({agent:String} = '' OR agent = {agent:String})
GROUP BY date, weekday, hour_of_day
ORDER BY date, hour_of_day;
