-- Question: Which task types fail, on which ZVM, week by week, and why?
-- Grain: one row per ISO week (Monday to Sunday, UTC, of started_at), ZVM and task type,
--   over the tasks that finished (Failed, Stopped or Completed).
-- Parameter days = 182: whole ISO weeks back to the one that holds the day this many days
--   ago.
-- Parameter zvm = '': only this ZVM (empty: every ZVM).
-- failure_rate is failed / finished (4 decimals; Stopped counts as not failed). The three
-- most common complete_reason texts of the week's failures come with their counts ("(no
-- reason given)" for an empty one; ties broken alphabetically). Newest week first, then
-- the highest rate. The counts come from task_daily_totals (kept equal to tasks by every
-- pass); only the failures are read from tasks, for their reasons.
WITH weekly AS (
    -- A week is whole UTC days, so its days' totals add up to it exactly.
    SELECT
        ${day_week_start("d.day")} AS week_start,
        ${day_iso_week("d.day")} AS iso_week,
        d.zvm,
        d.type,
        SUM(d.tasks) AS finished_tasks,
        SUM(CASE WHEN d.state = 4 THEN d.tasks ELSE 0 END) AS failed_tasks
    FROM task_daily_totals AS d
    WHERE d.state IN (4, 5, 6)
        AND d.day >= ${week_start(days_ago(":days"))}
        AND (:zvm = '' OR d.zvm = :zvm)
    GROUP BY ${day_week_start("d.day")}, ${day_iso_week("d.day")}, d.zvm, d.type
),
reason_counts AS (
    -- Only the failures are read for their reasons (through the index on state).
    SELECT
        ${week_start("t.started_at")} AS week_start,
        t.zvm,
        t.type,
        COALESCE(NULLIF(t.complete_reason, ''), '(no reason given)') AS reason,
        COUNT(*) AS failures
    FROM tasks AS t
    WHERE t.state = 4
        AND ${week_start("t.started_at")} >= ${week_start(days_ago(":days"))}
        AND (:zvm = '' OR t.zvm = :zvm)
    GROUP BY ${week_start("t.started_at")}, t.zvm, t.type,
        COALESCE(NULLIF(t.complete_reason, ''), '(no reason given)')
),
ranked AS (
    SELECT
        week_start,
        zvm,
        type,
        reason,
        failures,
        ROW_NUMBER() OVER (
            PARTITION BY week_start, zvm, type ORDER BY failures DESC, reason
        ) AS reason_rank
    FROM reason_counts
),
top_reasons AS (
    SELECT
        week_start,
        zvm,
        type,
        MAX(CASE WHEN reason_rank = 1 THEN reason END) AS reason_1,
        MAX(CASE WHEN reason_rank = 1 THEN failures END) AS reason_1_failures,
        MAX(CASE WHEN reason_rank = 2 THEN reason END) AS reason_2,
        MAX(CASE WHEN reason_rank = 2 THEN failures END) AS reason_2_failures,
        MAX(CASE WHEN reason_rank = 3 THEN reason END) AS reason_3,
        MAX(CASE WHEN reason_rank = 3 THEN failures END) AS reason_3_failures
    FROM ranked
    WHERE reason_rank <= 3
    GROUP BY week_start, zvm, type
)
SELECT
    w.week_start,
    w.iso_week,
    w.zvm,
    w.type,
    w.finished_tasks,
    w.failed_tasks,
    ROUND(1.0 * w.failed_tasks / w.finished_tasks, 4) AS failure_rate,
    r.reason_1,
    r.reason_1_failures,
    r.reason_2,
    r.reason_2_failures,
    r.reason_3,
    r.reason_3_failures
FROM weekly AS w
LEFT JOIN top_reasons AS r
    ON r.week_start = w.week_start AND r.zvm = w.zvm AND r.type = w.type
ORDER BY w.week_start DESC, failure_rate DESC, w.failed_tasks DESC, w.zvm, w.type;
