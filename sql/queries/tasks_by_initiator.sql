-- Question: Who does what: which users (or services) start which kinds of task, how often,
--   and how often do they fail?
-- Grain: one row per initiator (initiated_by, as the ZVM gives it) and task type, over the
--   tasks started in the look-back.
-- Parameter days = 90: the look-back in days (of started_at).
-- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
-- initiator_tasks is the initiator's total over every type: the busiest initiators come
-- first, then each one's types by count. A null initiated_by is one group of its own.
WITH counts AS (
    SELECT
        t.initiated_by,
        t.type,
        COUNT(*) AS tasks,
        SUM(CASE WHEN t.state = 4 THEN 1 ELSE 0 END) AS failed_tasks,
        COUNT(DISTINCT t.zvm) AS zvms,
        MIN(t.started_at) AS first_started_at,
        MAX(t.started_at) AS last_started_at
    FROM tasks AS t
    WHERE t.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR t.zvm = :zvm)
    GROUP BY t.initiated_by, t.type
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
