-- Question: Is each ZVM's task history proven complete: when did zvm-etl verify last find
--   it complete, and what did its last verification find?
-- Grain: one row per ZVM that zvm-etl verify has verified at least once.
-- Parameter zvm = '': only this ZVM (empty: every ZVM).
-- last_*: the newest verification (status complete, incomplete or failed; last_error says
-- why one failed, or that the ZVM was never synced). proven_complete_*: the newest
-- verification that found the history complete, and the range of task starts it compared
-- (null when none did); seconds_since_proven_complete is now minus its end. A ZVM's
-- history is only as proven as its last complete verification: run zvm-etl verify
-- nightly (docs/operations.md).
SELECT
    v.zvm,
    lv.finished_at AS last_verified_at,
    lv.status AS last_status,
    lv.days_checked AS last_days_checked,
    lv.days_differing AS last_days_differing,
    lv.missing_in_warehouse AS last_missing_in_warehouse,
    lv.missing_on_zvm AS last_missing_on_zvm,
    lv.purged_by_zvm AS last_purged_by_zvm,
    lv.error AS last_error,
    cv.finished_at AS proven_complete_at,
    cv.since AS proven_complete_since,
    cv.until AS proven_complete_until,
    ${seconds_since("cv.finished_at")} AS seconds_since_proven_complete
FROM (
    SELECT
        zvm,
        MAX(id) AS last_id,
        MAX(CASE WHEN status = 'complete' THEN id END) AS complete_id
    FROM verifications
    WHERE (:zvm = '' OR zvm = :zvm)
    GROUP BY zvm
) AS v
JOIN verifications AS lv ON lv.id = v.last_id
LEFT JOIN verifications AS cv ON cv.id = v.complete_id
ORDER BY v.zvm;
