-- Quarantined exceptions per read date and failed check, with the day's exception volume as
-- the denominator (an exception that failed two checks counts once under each).
WITH volume AS (
    SELECT read_date, count(*) AS exceptions
    FROM mdm.vee_exception
    WHERE read_date BETWEEN :since AND :until
    GROUP BY read_date
), quarantined AS (
    SELECT q.read_date, check_name, count(DISTINCT q.exception_id) AS quarantined
    FROM vee.quarantined_exception AS q
    CROSS JOIN LATERAL unnest(q.failed_checks) AS check_name
    WHERE q.read_date BETWEEN :since AND :until
    GROUP BY q.read_date, check_name
)
SELECT quarantined.read_date,
       quarantined.check_name,
       quarantined.quarantined,
       coalesce(volume.exceptions, 0) AS exceptions
FROM quarantined
LEFT JOIN volume ON volume.read_date = quarantined.read_date
ORDER BY quarantined.read_date, quarantined.check_name;
