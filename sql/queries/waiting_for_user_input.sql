-- Which tasks are stuck waiting for user input (a failover or move waiting for its
-- commit, for example), and since when?
-- One row per open task in state 2 (WaitingForUserInput). waiting_since is the first
-- observation of the current stretch in that state (task_status_changes; its precision
-- is the sync interval); age_seconds is the task's age since it started.
SELECT
    o.task_identifier,
    o.zvm,
    o.type,
    o.progress,
    o.initiated_by,
    o.started_at,
    (
        SELECT MIN(c.observed_at)
        FROM task_status_changes AS c
        WHERE c.task_identifier = o.task_identifier
            AND c.state = 2
            AND NOT EXISTS (
                SELECT 1
                FROM task_status_changes AS p
                WHERE p.task_identifier = c.task_identifier
                    AND p.state <> 2
                    AND p.observed_at > c.observed_at
            )
    ) AS waiting_since,
    o.age_seconds,
    o.last_seen_at
FROM v_open_tasks AS o
WHERE o.state = 2
ORDER BY o.age_seconds DESC;
