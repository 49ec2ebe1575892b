-- Question: What has happened to each VPG: which kinds of task, how many, and when was it
--   first and last active?
-- Grain: one row per VPG and task type over the whole history; a VPG that no task names
--   has one row with a null type and 0 tasks.
-- Parameter zvm = '': only the tasks of this ZVM, and the VPGs it lists or its tasks name
--   (empty: every ZVM).
-- vpg_tasks, vpg_first_activity_at and vpg_last_activity_at are the VPG's totals over
-- every type; vpg_unlisted_at is when its ZVM stopped listing it (deleted), null while it
-- is listed. The most recently active VPGs first.
WITH activity AS (
    SELECT
        tv.vpg_identifier,
        t.type,
        COUNT(*) AS tasks,
        SUM(CASE WHEN t.state = 4 THEN 1 ELSE 0 END) AS failed_tasks,
        MIN(t.started_at) AS first_started_at,
        MAX(t.started_at) AS last_started_at
    FROM task_vpgs AS tv
    JOIN tasks AS t ON t.task_identifier = tv.task_identifier
    WHERE (:zvm = '' OR t.zvm = :zvm)
    GROUP BY tv.vpg_identifier, t.type
),
per_vpg AS (
    SELECT
        v.vpg_identifier,
        v.name AS vpg_name,
        v.zvm AS vpg_zvm,
        v.unlisted_at AS vpg_unlisted_at,
        a.type,
        COALESCE(a.tasks, 0) AS tasks,
        COALESCE(a.failed_tasks, 0) AS failed_tasks,
        a.first_started_at,
        a.last_started_at,
        SUM(COALESCE(a.tasks, 0)) OVER (PARTITION BY v.vpg_identifier) AS vpg_tasks,
        MIN(a.first_started_at) OVER (PARTITION BY v.vpg_identifier) AS vpg_first_activity_at,
        MAX(a.last_started_at) OVER (PARTITION BY v.vpg_identifier) AS vpg_last_activity_at
    FROM vpgs AS v
    LEFT JOIN activity AS a ON a.vpg_identifier = v.vpg_identifier
    WHERE :zvm = '' OR v.zvm = :zvm OR a.vpg_identifier IS NOT NULL
)
SELECT
    vpg_identifier,
    vpg_name,
    vpg_zvm,
    vpg_unlisted_at,
    vpg_tasks,
    vpg_first_activity_at,
    vpg_last_activity_at,
    type,
    tasks,
    failed_tasks,
    first_started_at,
    last_started_at
FROM per_vpg
ORDER BY
    CASE WHEN vpg_last_activity_at IS NULL THEN 1 ELSE 0 END,
    vpg_last_activity_at DESC,
    vpg_identifier,
    tasks DESC,
    type;
