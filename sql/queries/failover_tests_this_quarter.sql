-- Did every VPG have a successful failover test this quarter?
-- One row per VPG a ZVM lists now (unlisted_at null; VPGs known only from tasks, whose
-- ZVM has no VPG listing, are included too), tested or not, with its name and priority and
-- its FailOverTest tasks started since the start of the current calendar quarter (UTC):
-- how many, how many succeeded or failed, the last test and the last success. VPGs without
-- a successful test come first: they are the gaps an auditor asks about. Deleted VPGs
-- (unlisted) are left out; v_failover_tests keeps their tests. protected_site_name and
-- recovery_site_name are the last known names of the VPG's sites, from the site listings
-- or else the VPG listing (null if neither ever named the site). max_rto_seconds is the
-- longest recovery time among the quarter's successful tests: the RTO the ZVM's Recovery
-- Report measured for a test whose operation is known (recovery_operations linked to its
-- task), else the test's task duration; rto_source says which: recovery_report (every
-- successful test has its operation), task_duration (none has), mixed, or null (no
-- successful test).
SELECT
    v.vpg_identifier,
    v.name AS vpg_name,
    v.priority,
    v.zvm,
    ps.name AS protected_site_name,
    rs.name AS recovery_site_name,
    COUNT(f.task_identifier) AS tests,
    SUM(CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE 0 END) AS successful_tests,
    SUM(CASE WHEN f.outcome = 'failed' THEN 1 ELSE 0 END) AS failed_tests,
    MAX(f.started_at) AS last_test_started_at,
    MAX(CASE WHEN f.outcome = 'succeeded' THEN f.completed_at END) AS last_success_completed_at,
    CASE
        WHEN SUM(CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE 0 END) > 0 THEN 1
        ELSE 0
    END AS has_successful_test,
    MAX(
        CASE WHEN f.outcome = 'succeeded' THEN COALESCE(ro.rto_seconds, f.duration_seconds) END
    ) AS max_rto_seconds,
    CASE
        WHEN SUM(CASE WHEN f.outcome = 'succeeded' THEN 1 ELSE 0 END) = 0 THEN NULL
        WHEN SUM(CASE WHEN f.outcome = 'succeeded' AND ro.rto_seconds IS NULL THEN 1 ELSE 0 END)
            = 0 THEN 'recovery_report'
        WHEN SUM(CASE WHEN f.outcome = 'succeeded' AND ro.rto_seconds IS NOT NULL THEN 1 ELSE 0 END)
            = 0 THEN 'task_duration'
        ELSE 'mixed'
    END AS rto_source
FROM vpgs AS v
LEFT JOIN v_failover_tests AS f
    ON f.vpg_identifier = v.vpg_identifier
    AND f.started_at >= ${quarter_start()}
LEFT JOIN (
    SELECT task_identifier, MAX(rto_seconds) AS rto_seconds
    FROM recovery_operations
    WHERE task_identifier IS NOT NULL AND rto_seconds IS NOT NULL
    GROUP BY task_identifier
) AS ro ON ro.task_identifier = f.task_identifier
LEFT JOIN sites AS ps ON ps.site_identifier = v.protected_site_identifier
LEFT JOIN sites AS rs ON rs.site_identifier = v.recovery_site_identifier
WHERE v.unlisted_at IS NULL
GROUP BY v.vpg_identifier, v.name, v.priority, v.zvm, ps.name, rs.name
ORDER BY has_successful_test, tests, v.name, v.vpg_identifier;
