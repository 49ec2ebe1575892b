-- Question: Which tasks took longest lately?
-- Grain: one row per task that finished (it has a duration) and started in the look-back;
--   the slowest first, at most `limit` rows.
-- Parameter days = 30: the look-back in days (of started_at).
-- Parameter limit = 50: how many tasks.
-- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
-- vpg_names lists the VPGs the task names, by name (the identifier when the name is not
-- known), comma-separated (sorted, except on SQLite). type_median_seconds is the median of
-- the same type's finished tasks in the look-back, for comparison: computed over the
-- durations alone, apart from the slowest tasks' other columns, so the sort stays narrow.
WITH durations AS (
    SELECT
        t.type,
        t.duration_seconds,
        ROW_NUMBER() OVER (PARTITION BY t.type ORDER BY t.duration_seconds) AS row_in_type,
        COUNT(*) OVER (PARTITION BY t.type) AS tasks_in_type
    FROM tasks AS t
    WHERE t.duration_seconds IS NOT NULL
        AND t.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR t.zvm = :zvm)
),
medians AS (
    SELECT
        type,
        ${percentile("0.5", "duration_seconds", "row_in_type", "tasks_in_type")}
            AS median_seconds
    FROM durations
    GROUP BY type
),
slowest AS (
    SELECT
        t.task_identifier,
        t.zvm,
        t.type,
        t.state,
        t.started_at,
        t.completed_at,
        t.duration_seconds,
        t.initiated_by
    FROM tasks AS t
    WHERE t.duration_seconds IS NOT NULL
        AND t.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR t.zvm = :zvm)
    ORDER BY t.duration_seconds DESC, t.task_identifier
    LIMIT :limit
)
SELECT
    f.task_identifier,
    f.zvm,
    f.type,
    s.name AS state_name,
    f.started_at,
    f.completed_at,
    f.duration_seconds,
    m.median_seconds AS type_median_seconds,
    f.initiated_by,
    (
        SELECT ${string_agg("COALESCE(v.name, v.vpg_identifier)")}
        FROM task_vpgs AS tv
        JOIN vpgs AS v ON v.vpg_identifier = tv.vpg_identifier
        WHERE tv.task_identifier = f.task_identifier
    ) AS vpg_names
FROM slowest AS f
JOIN task_states AS s ON s.state = f.state
JOIN medians AS m ON m.type = f.type
ORDER BY f.duration_seconds DESC, f.task_identifier;
