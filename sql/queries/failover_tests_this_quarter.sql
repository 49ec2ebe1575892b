-- Did every VPG have a successful failover test this quarter?
-- One row per VPG the warehouse knows, with its FailOverTest tasks started since the start
-- of the current calendar quarter (UTC): how many, how many succeeded or failed, the last
-- test and the last success. VPGs without a successful test come first: they are the gaps
-- an auditor asks about.
SELECT
    v.vpg_identifier,
    COUNT(f.task_identifier) AS tests,
    SUM(CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE 0 END) AS successful_tests,
    SUM(CASE WHEN f.outcome = 'failed' THEN 1 ELSE 0 END) AS failed_tests,
    MAX(f.started_at) AS last_test_started_at,
    MAX(CASE WHEN f.outcome = 'succeeded' THEN f.completed_at END) AS last_success_completed_at,
    CASE
        WHEN SUM(CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE 0 END) > 0 THEN 1
        ELSE 0
    END AS has_successful_test
FROM vpgs AS v
LEFT JOIN v_failover_tests AS f
    ON f.vpg_identifier = v.vpg_identifier
    AND f.started_at >= ${quarter_start()}
GROUP BY v.vpg_identifier
ORDER BY has_successful_test, v.vpg_identifier;
