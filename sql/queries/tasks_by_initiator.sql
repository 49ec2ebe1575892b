-- Question: Who does what: which users (or services) start which kinds of task, how often,
--   and how often do they fail?
-- Grain: one row per initiator (initiated_by, as the ZVM gives it) and task type, over the
--   tasks started in the look-back.
-- Parameter days = 90: the look-back in days (of started_at).
-- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
-- initiator_tasks is the initiator's total over every type: the busiest initiators come
-- first, then each one's types by count. A null initiated_by is one group of its own.
-- The whole days of the look-back are read from task_daily_totals (kept equal to tasks by
-- every pass), only the part of its first day from tasks: the cost follows the days, not
-- the tasks.
WITH parts AS (
    -- The whole UTC days after the one the look-back starts in, from task_daily_totals...
    SELECT
        d.initiated_by,
        d.type,
        d.zvm,
        d.tasks,
        CASE WHEN d.state = 4 THEN d.tasks ELSE 0 END AS failed_tasks,
        d.first_started_at,
        d.last_started_at
    FROM task_daily_totals AS d
    WHERE d.day > ${utc_day(days_ago(":days"))}
        AND (:zvm = '' OR d.zvm = :zvm)
    UNION ALL
    -- ...and the rest of the day it starts in, from tasks.
    SELECT
        t.initiated_by,
        t.type,
        t.zvm,
        1,
        CASE WHEN t.state = 4 THEN 1 ELSE 0 END,
        t.started_at,
        t.started_at
    FROM tasks AS t
    WHERE t.started_at >= ${days_ago(":days")}
        AND t.started_at < ${next_utc_midnight(days_ago(":days"))}
        AND (:zvm = '' OR t.zvm = :zvm)
),
counts AS (
    SELECT
        initiated_by,
        type,
        SUM(tasks) AS tasks,
        SUM(failed_tasks) AS failed_tasks,
        COUNT(DISTINCT zvm) AS zvms,
        MIN(first_started_at) AS first_started_at,
        MAX(last_started_at) AS last_started_at
    FROM parts
    GROUP BY initiated_by, type
),
totals AS (
    SELECT
        initiated_by,
        type,
        tasks,
        failed_tasks,
        zvms,
        first_started_at,
        last_started_at,
        SUM(tasks) OVER (PARTITION BY initiated_by) AS initiator_tasks
    FROM counts
)
SELECT
    initiated_by,
    initiator_tasks,
    type,
    tasks,
    failed_tasks,
    zvms,
    first_started_at,
    last_started_at
FROM totals
ORDER BY
    initiator_tasks DESC,
    CASE WHEN initiated_by IS NULL THEN 1 ELSE 0 END,
    initiated_by,
    tasks DESC,
    type;
