-- Question: Is the ETL healthy, day by day, for each ZVM: how many passes ran and failed,
--   how many records were rejected, and how stale did the data get?
-- Grain: one row per UTC day (of the pass's start) and ZVM that had at least one pass.
-- Parameter days = 30: the look-back in days.
-- Parameter zvm = '': only this ZVM (empty: every ZVM).
-- tasks_* and rejected_in_passes add up the passes' counts (a bad record the ZVM sends
-- again is counted by each pass); new_rejected_records counts the rows the day's passes
-- added to rejected_tasks (each bad record is stored once). max_lag_seconds is the
-- longest the ZVM's data went without a successful pass, as seen at the day's successful
-- passes: each one's end minus the previous successful pass's end (null on a day with no
-- success). Newest day first.
WITH runs AS (
    SELECT
        r.run_id,
        r.zvm,
        ${utc_day("r.started_at")} AS day,
        r.status,
        r.started_at,
        r.finished_at,
        r.tasks_received,
        r.tasks_inserted,
        r.tasks_updated,
        r.tasks_rejected,
        r.requests,
        r.retries,
        (SELECT COUNT(*) FROM rejected_tasks AS j WHERE j.run_id = r.run_id) AS new_rejected,
        LAG(r.finished_at) OVER (PARTITION BY r.zvm, r.status ORDER BY r.run_id)
            AS previous_same_status_finished_at
    FROM etl_runs AS r
    WHERE (:zvm = '' OR r.zvm = :zvm)
)
SELECT
    day,
    zvm,
    COUNT(*) AS runs,
    SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded_runs,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed_runs,
    SUM(tasks_received) AS tasks_received,
    SUM(tasks_inserted) AS tasks_inserted,
    SUM(tasks_updated) AS tasks_updated,
    SUM(tasks_rejected) AS rejected_in_passes,
    SUM(new_rejected) AS new_rejected_records,
    SUM(requests) AS requests,
    SUM(retries) AS retries,
    AVG(${seconds_between("started_at", "finished_at")}) AS avg_pass_seconds,
    MAX(CASE WHEN status = 'succeeded' THEN finished_at END) AS last_success_at,
    MAX(
        CASE
            WHEN status = 'succeeded'
                THEN ${seconds_between("previous_same_status_finished_at", "finished_at")}
        END
    ) AS max_lag_seconds
FROM runs
WHERE day >= ${utc_day(days_ago(":days"))}
GROUP BY day, zvm
ORDER BY day DESC, zvm;
