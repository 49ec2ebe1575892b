-- v_etl_health, version 2: one row per ZVM: its last run, its last
-- successful run, the sync cursors, its open tasks and how far behind the warehouse is.
-- seconds_since_last_success: now minus the end of the last successful run;
-- lag_seconds: now minus the newest source timestamp loaded (the larger of the two cursors).
-- "now" is the database's clock. The same rows and columns as version 1; open_tasks counts
-- the tasks in the open states (those task_states marks not final) through an index, not
-- by a scan of every task.
SELECT
    z.name AS zvm,
    lr.run_id AS last_run_id,
    lr.trigger AS last_run_trigger,
    lr.started_at AS last_run_started_at,
    lr.finished_at AS last_run_finished_at,
    lr.status AS last_run_status,
    lr.error AS last_run_error,
    ls.run_id AS last_success_run_id,
    ls.finished_at AS last_success_at,
    ${seconds_since("ls.finished_at")} AS seconds_since_last_success,
    cs.value AS started_cursor,
    cc.value AS completed_cursor,
    ${seconds_since(greatest("cs.value", "cc.value"))} AS lag_seconds,
    (
        SELECT COUNT(*)
        FROM tasks AS t
        WHERE t.zvm = z.name
            AND t.state IN (${open_states()})
    ) AS open_tasks
FROM zvms AS z
LEFT JOIN etl_runs AS lr
    ON lr.run_id = (SELECT MAX(r.run_id) FROM etl_runs AS r WHERE r.zvm = z.name)
LEFT JOIN etl_runs AS ls
    ON ls.run_id = (
        SELECT MAX(r.run_id) FROM etl_runs AS r WHERE r.zvm = z.name AND r.status = 'succeeded'
    )
LEFT JOIN sync_cursors AS cs ON cs.zvm = z.name AND cs.cursor = 'started'
LEFT JOIN sync_cursors AS cc ON cc.zvm = z.name AND cc.cursor = 'completed';
