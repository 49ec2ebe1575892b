-- How long do moves take?
-- One row per ZVM, VPG and move task type (Move, MoveBeforeCommit, MoveCommit,
-- MoveRollback), over the tasks that completed: how many, and their average, shortest
-- and longest duration in seconds. A move whose task names no VPG has a null vpg_identifier;
-- vpg_name is the VPG's last known name (null when the ZVM never listed it).
SELECT
    t.zvm,
    tv.vpg_identifier,
    v.name AS vpg_name,
    t.type,
    COUNT(*) AS moves,
    AVG(t.duration_seconds) AS avg_duration_seconds,
    MIN(t.duration_seconds) AS min_duration_seconds,
    MAX(t.duration_seconds) AS max_duration_seconds,
    MAX(t.completed_at) AS last_completed_at
FROM tasks AS t
LEFT JOIN task_vpgs AS tv ON tv.task_identifier = t.task_identifier
LEFT JOIN vpgs AS v ON v.vpg_identifier = tv.vpg_identifier
WHERE t.type IN (
        SELECT tt.name
        FROM task_types AS tt
        WHERE LOWER(tt.name) IN ('move', 'movebeforecommit', 'movecommit', 'moverollback')
    )
    AND t.state = 6
GROUP BY t.zvm, tv.vpg_identifier, v.name, t.type
ORDER BY max_duration_seconds DESC, t.zvm, t.type;
