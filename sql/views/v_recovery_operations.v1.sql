-- v_recovery_operations, version 1: one row per recovery operation (Failover, FailoverTest,
-- Move) of a ZVM's Recovery Report, with the VPG's last known name, the outcome, the step
-- counts and the task it was matched to (its type, state and duration beside the RTO).
SELECT
    ro.zvm,
    ro.operation_identifier,
    ro.recovery_type,
    ro.vpg_identifier,
    COALESCE(v.name, ro.vpg_name) AS vpg_name,
    ro.vpg_name AS reported_vpg_name,
    ro.vpg_link,
    v.priority AS vpg_priority,
    ro.protected_site_name,
    ro.recovery_site_name,
    ro.started_at,
    ro.ended_at,
    ro.point_in_time,
    ro.rto_seconds,
    ro.status,
    CASE
        WHEN LOWER(ro.status) IN ('success', 'succeeded', 'completed') THEN 'succeeded'
        WHEN LOWER(ro.status) IN ('fail', 'failed', 'failure') THEN 'failed'
        ELSE 'unknown'
    END AS outcome,
    ro.initiated_by,
    ro.notes,
    (
        SELECT COUNT(*)
        FROM recovery_operation_steps AS st
        WHERE st.zvm = ro.zvm AND st.operation_identifier = ro.operation_identifier
    ) AS steps,
    (
        SELECT COUNT(*)
        FROM recovery_operation_steps AS st
        WHERE st.zvm = ro.zvm
            AND st.operation_identifier = ro.operation_identifier
            AND LOWER(st.result) IN ('fail', 'failed', 'failure', 'error')
    ) AS failed_steps,
    ro.task_identifier,
    t.type AS task_type,
    s.name AS task_state_name,
    t.duration_seconds AS task_duration_seconds,
    ro.task_match_seconds,
    ro.first_seen_at,
    ro.last_seen_at
FROM recovery_operations AS ro
LEFT JOIN vpgs AS v ON v.vpg_identifier = ro.vpg_identifier
LEFT JOIN tasks AS t ON t.task_identifier = ro.task_identifier
LEFT JOIN task_states AS s ON s.state = t.state;
