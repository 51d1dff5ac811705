-- Whether this database holds a finished bench build (vee_tasks/bench.py records its spec last).
SELECT to_regclass('public.bench_build') IS NOT NULL AS built;
