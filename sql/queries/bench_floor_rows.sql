-- I/O floor, write side: result rows shaped like vee.exception_resolution, one per exception
-- (produced before the clock starts; only loading them is timed).
SELECT exception_id, read_date, 'ESTIMATE'::text, 0.9::float8,
       jsonb_build_object('ACCEPT', 0.025, 'ESTIMATE', 0.9, 'EDIT', 0.025, 'REREAD', 0.025,
                          'FIELD_ORDER', 0.025),
       'AUTO_APPLY'::text, 'vee-resolution'::text, '1'::text, 'bench-floor'::text, now(),
       false  -- audit (migration vee/0053)
FROM mdm.vee_exception
WHERE read_date = :read_date
  AND status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW')
