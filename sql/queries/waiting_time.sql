-- Question: Which tasks sat waiting for user input or paused, and for how long?
-- Grain: one row per task started in the look-back that was ever seen in
--   WaitingForUserInput (state 2) or Paused (state 3), from task_status_changes.
-- Parameter days = 90: the look-back in days (of started_at).
-- Parameter zvm = '': only this ZVM's tasks (empty: every ZVM).
-- Each observation of a task lasts until its next observation; the last one lasts until
-- the task was last seen (last_seen_at), so a task still waiting counts up to the last
-- pass that saw it. Observations are taken by the sync passes, so the times are precise
-- to about one sync interval. still_waiting is 1 when the task is in state 2 or 3 now.
-- vpg_names as in slowest_tasks. Longest total first. Only the tasks ever seen waiting or
-- paused are read (on PostgreSQL through a partial index of those observations).
WITH observations AS (
    SELECT
        c.task_identifier,
        c.state,
        c.observed_at,
        COALESCE(
            LEAD(c.observed_at) OVER (
                PARTITION BY c.task_identifier ORDER BY c.observed_at
            ),
            t.last_seen_at
        ) AS until_at
    FROM task_status_changes AS c
    JOIN tasks AS t ON t.task_identifier = c.task_identifier
    WHERE t.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR t.zvm = :zvm)
        AND c.task_identifier IN (
            SELECT w.task_identifier FROM task_status_changes AS w WHERE w.state IN (2, 3)
        )
),
waits AS (
    SELECT
        task_identifier,
        SUM(CASE WHEN state = 2 THEN ${seconds_between("observed_at", "until_at")} ELSE 0 END)
            AS waiting_for_user_input_seconds,
        SUM(CASE WHEN state = 3 THEN ${seconds_between("observed_at", "until_at")} ELSE 0 END)
            AS paused_seconds,
        MIN(observed_at) AS first_waiting_observed_at
    FROM observations
    WHERE state IN (2, 3)
    GROUP BY task_identifier
)
SELECT
    t.task_identifier,
    t.zvm,
    t.type,
    s.name AS state_name,
    t.initiated_by,
    t.started_at,
    t.completed_at,
    w.first_waiting_observed_at,
    w.waiting_for_user_input_seconds,
    w.paused_seconds,
    w.waiting_for_user_input_seconds + w.paused_seconds AS total_waiting_seconds,
    CASE WHEN t.state IN (2, 3) THEN 1 ELSE 0 END AS still_waiting,
    (
        SELECT ${string_agg("COALESCE(v.name, v.vpg_identifier)")}
        FROM task_vpgs AS tv
        JOIN vpgs AS v ON v.vpg_identifier = tv.vpg_identifier
        WHERE tv.task_identifier = t.task_identifier
    ) AS vpg_names
FROM waits AS w
JOIN tasks AS t ON t.task_identifier = w.task_identifier
JOIN task_states AS s ON s.state = t.state
ORDER BY total_waiting_seconds DESC, t.task_identifier;
