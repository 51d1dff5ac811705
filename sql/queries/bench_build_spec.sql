-- The recorded build spec, and whether the reads are still there: they are loaded UNLOGGED,
-- so a server crash empties them (the bench then rebuilds).
SELECT (SELECT spec FROM public.bench_build LIMIT 1) AS spec,
       EXISTS (SELECT 1 FROM mdm.interval_read) AS has_reads;
