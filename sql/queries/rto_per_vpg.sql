-- Question: How long does recovery take for each VPG, month by month: the RTO the ZVM's
--   Recovery Report measured (typical, usually at most, at worst), against your target?
-- Grain: one row per VPG, recovery type and UTC month (of the operation's start), over the
--   successful recovery operations (Failover, FailoverTest, Move) with an RTO that started
--   in the look-back.
-- Parameter days = 365: the look-back in days (of started_at).
-- Parameter zvm = '': only this ZVM's operations (empty: every ZVM).
-- Parameter recovery_type = '': only this type: Failover, FailoverTest or Move (empty: all).
-- Parameter target_seconds = 0: your RTO target in seconds (0: none given).
-- The ZVM states no RTO target (its API has none, see docs/zvm-api.md): give yours as
-- target_seconds and operations_over_target counts the operations slower than it.
-- p50/p90 are exact (PostgreSQL's percentile_cont, written elsewhere with windows: the
-- percentile macro, see duration_percentiles). vpg_name is the VPG's last known name, else the name the report
-- gave; an operation whose VPG could not be found is grouped under its reported name, with a
-- null vpg_identifier. month is text, YYYY-MM (UTC). Ordered by VPG (unnamed last), type,
-- then month.
WITH operations AS (
    SELECT
        ro.zvm,
        ro.vpg_identifier,
        COALESCE(v.name, ro.vpg_name) AS vpg_name,
        ro.recovery_type,
        ${utc_month("ro.started_at")} AS month,
        ro.rto_seconds,
        ro.operation_identifier
    FROM recovery_operations AS ro
    LEFT JOIN vpgs AS v ON v.vpg_identifier = ro.vpg_identifier
    WHERE ro.rto_seconds IS NOT NULL
        AND LOWER(ro.status) IN ('success', 'succeeded', 'completed')
        AND ro.started_at >= ${days_ago(":days")}
        AND (:zvm = '' OR ro.zvm = :zvm)
        AND (:recovery_type = '' OR LOWER(ro.recovery_type) = LOWER(:recovery_type))
),
ranked AS (
    SELECT
        o.zvm,
        o.vpg_identifier,
        o.vpg_name,
        o.recovery_type,
        o.month,
        o.rto_seconds AS rto,
        ROW_NUMBER() OVER (
            PARTITION BY o.zvm, o.vpg_identifier, o.vpg_name, o.recovery_type, o.month
            ORDER BY o.rto_seconds, o.operation_identifier
        ) AS row_in_group,
        COUNT(*) OVER (
            PARTITION BY o.zvm, o.vpg_identifier, o.vpg_name, o.recovery_type, o.month
        ) AS in_group
    FROM operations AS o
)
SELECT
    zvm,
    vpg_identifier,
    vpg_name,
    recovery_type,
    month,
    COUNT(*) AS operations,
    MIN(rto) AS min_rto_seconds,
    ${percentile("0.5", "rto", "row_in_group", "in_group")} AS p50_rto_seconds,
    ${percentile("0.9", "rto", "row_in_group", "in_group")} AS p90_rto_seconds,
    MAX(rto) AS max_rto_seconds,
    AVG(rto) AS avg_rto_seconds,
    CASE WHEN :target_seconds > 0 THEN :target_seconds END AS rto_target_seconds,
    CASE
        WHEN :target_seconds > 0 THEN SUM(CASE WHEN rto > :target_seconds THEN 1 ELSE 0 END)
    END AS operations_over_target
FROM ranked
GROUP BY zvm, vpg_identifier, vpg_name, recovery_type, month
ORDER BY
    CASE WHEN vpg_name IS NULL THEN 1 ELSE 0 END,
    vpg_name,
    CASE WHEN vpg_identifier IS NULL THEN 1 ELSE 0 END,
    vpg_identifier,
    zvm,
    recovery_type,
    month;
