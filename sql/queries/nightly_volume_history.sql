-- Exceptions raised per read date (all statuses) on the days before :read_date, and on it.
SELECT read_date, count(*)::int AS exceptions
FROM mdm.vee_exception
WHERE read_date >= CAST(:read_date AS date) - CAST(:lookback_days AS int)
  AND read_date <= CAST(:read_date AS date)
GROUP BY read_date
ORDER BY read_date;
