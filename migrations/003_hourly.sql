-- Clock hours (ccusage_usage_hourly, created by the schema file) list their models in the per-model tables under a
-- new record type, `hour`. Adding a value to an Enum changes no stored row (a metadata change, also for a column
-- of the sorting key). The hours of the history before this release are filled by the first import that finds
-- a new transcript line: it reads every transcript once (see docs/design.md).
ALTER TABLE ccusage_model_breakdowns MODIFY COLUMN record_type
    Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5, 'hour' = 6);
ALTER TABLE ccusage_models_used MODIFY COLUMN record_type
    Enum8('daily' = 1, 'monthly' = 2, 'session' = 3, 'block' = 4, 'project_daily' = 5, 'hour' = 6);
