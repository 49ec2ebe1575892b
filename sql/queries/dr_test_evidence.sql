-- Question: Has every VPG had a successful failover test lately: when, how long it took
--   (the RTO the ZVM's Recovery Report measured, else the task's duration), and who ran it?
-- Grain: one row per VPG the warehouse knows that its ZVM has not stopped listing
--   (unlisted_at null; VPGs only ever seen in tasks are included).
-- Parameter days = 90: the look-back in days; a VPG whose last successful test started
--   before it, or that never had one, is a gap.
-- Parameter zvm = '': only the VPGs of this ZVM (empty: every ZVM).
-- protected_site_name / recovery_site_name: the last known names of the VPG's protected
-- and recovery sites, from the site listings or else the VPG listing (null where the VPG
-- was never listed or no listing ever named the site).
-- A successful test is a FailOverTest task that Completed (state 6); its duration is the
-- test failover's, not the later StopFailOverTest's. last_success_rto_seconds is the RTO of
-- the test's recovery operation (recovery_operations linked to the task) when the Recovery
-- Report gave one, else that duration: last_success_rto_source says which
-- (recovery_report or task_duration; null when there is no successful test). zvm is the
-- ZVM that lists the VPG, else the one whose tasks named it. The gaps come first: never
-- tested, then the oldest last success; then by name. The tests are read from
-- vpg_daily_tests (a row per VPG and day), only the part of the look-back's first day and
-- the last successes themselves from tasks: the cost follows the VPGs and days, not the
-- tests of the whole history.
WITH test_types AS (
    -- The type's spellings (casing has varied between ZVM versions), so that the tasks are
    -- found through the index on (type, state, started_at) rather than a scan of them all.
    SELECT name FROM task_types WHERE LOWER(name) = 'failovertest'
),
tests AS (
    -- For each VPG: its last success, ever, and its tests and failed tests in the look-back.
    SELECT
        vpg_identifier,
        MAX(last_success_at) AS last_success_at,
        SUM(tests) AS tests,
        SUM(failed_tests) AS failed_tests
    FROM (
        -- Every test of the history, a row per VPG and UTC day from vpg_daily_tests (kept
        -- equal to the tasks by every pass): the last successes, and the counts of the
        -- whole days after the one the look-back starts in...
        SELECT
            d.vpg_identifier,
            d.last_success_started_at AS last_success_at,
            CASE WHEN d.day > ${utc_day(days_ago(":days"))} THEN d.tests ELSE 0 END AS tests,
            CASE WHEN d.day > ${utc_day(days_ago(":days"))} THEN d.failed_tests ELSE 0 END
                AS failed_tests
        FROM vpg_daily_tests AS d
        UNION ALL
        -- ...and the tests of the rest of the day it starts in, from tasks.
        SELECT
            tv.vpg_identifier,
            NULL,
            1,
            CASE WHEN t.state = 4 THEN 1 ELSE 0 END
        FROM tasks AS t
        JOIN task_vpgs AS tv ON tv.task_identifier = t.task_identifier
        WHERE t.type IN (SELECT name FROM test_types)
            AND t.started_at >= ${days_ago(":days")}
            AND t.started_at < ${next_utc_midnight(days_ago(":days"))}
    ) AS parts
    GROUP BY vpg_identifier
),
successes AS (
    SELECT
        tv.vpg_identifier,
        t.task_identifier,
        t.started_at,
        t.completed_at,
        t.duration_seconds,
        t.initiated_by,
        ro.rto_seconds,
        ROW_NUMBER() OVER (
            PARTITION BY tv.vpg_identifier
            ORDER BY t.task_identifier DESC
        ) AS newest_first
    FROM tests AS l
    JOIN tasks AS t ON t.started_at = l.last_success_at
    JOIN task_vpgs AS tv
        ON tv.task_identifier = t.task_identifier AND tv.vpg_identifier = l.vpg_identifier
    LEFT JOIN (
        SELECT task_identifier, MAX(rto_seconds) AS rto_seconds
        FROM recovery_operations
        WHERE task_identifier IS NOT NULL AND rto_seconds IS NOT NULL
        GROUP BY task_identifier
    ) AS ro ON ro.task_identifier = t.task_identifier
    WHERE t.type IN (SELECT name FROM test_types) AND t.state = 6
),
known_vpgs AS (
    -- A VPG no ZVM lists takes the greatest ZVM whose tasks name it: found ZVM by ZVM,
    -- each check stopping at its first task, rather than by reading all the VPG's tasks.
    -- The check is a scalar subquery with LIMIT 1, not EXISTS: PostgreSQL turns EXISTS
    -- into a semi join and may hash every task of the VPG first (a second per VPG at
    -- 10,000,000 tasks); a LIMIT keeps the plan that stops at the first row.
    SELECT
        v.vpg_identifier,
        v.name,
        v.priority,
        v.protected_site_identifier,
        v.recovery_site_identifier,
        COALESCE(
            v.zvm,
            (
                SELECT MAX(z.name)
                FROM zvms AS z
                WHERE (
                    SELECT t.zvm
                    FROM task_vpgs AS tv
                    JOIN tasks AS t ON t.task_identifier = tv.task_identifier
                    WHERE tv.vpg_identifier = v.vpg_identifier AND t.zvm = z.name
                    LIMIT 1
                ) IS NOT NULL
            )
        ) AS zvm
    FROM vpgs AS v
    WHERE v.unlisted_at IS NULL
)
SELECT
    k.vpg_identifier,
    k.name AS vpg_name,
    k.zvm,
    ps.name AS protected_site_name,
    rs.name AS recovery_site_name,
    k.priority,
    CASE k.priority WHEN 0 THEN 'Low' WHEN 1 THEN 'Medium' WHEN 2 THEN 'High' END
        AS priority_name,
    CASE WHEN s.started_at >= ${days_ago(":days")} THEN 1 ELSE 0 END AS tested_in_window,
    COALESCE(w.tests, 0) AS tests_in_window,
    COALESCE(w.failed_tests, 0) AS failed_tests_in_window,
    s.task_identifier AS last_success_task_identifier,
    s.started_at AS last_success_started_at,
    s.completed_at AS last_success_completed_at,
    s.duration_seconds AS last_success_duration_seconds,
    s.initiated_by AS last_success_initiated_by,
    COALESCE(s.rto_seconds, s.duration_seconds) AS last_success_rto_seconds,
    CASE
        WHEN s.task_identifier IS NULL THEN NULL
        WHEN s.rto_seconds IS NOT NULL THEN 'recovery_report'
        ELSE 'task_duration'
    END AS last_success_rto_source,
    ${seconds_since("s.started_at")} / 86400.0 AS days_since_last_success
FROM known_vpgs AS k
LEFT JOIN successes AS s ON s.vpg_identifier = k.vpg_identifier AND s.newest_first = 1
LEFT JOIN tests AS w ON w.vpg_identifier = k.vpg_identifier
LEFT JOIN sites AS ps ON ps.site_identifier = k.protected_site_identifier
LEFT JOIN sites AS rs ON rs.site_identifier = k.recovery_site_identifier
WHERE (:zvm = '' OR k.zvm = :zvm)
ORDER BY
    tested_in_window,
    CASE WHEN s.started_at IS NULL THEN 0 ELSE 1 END,
    s.started_at,
    COALESCE(k.name, k.vpg_identifier),
    k.vpg_identifier;
