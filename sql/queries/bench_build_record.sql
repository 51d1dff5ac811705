-- The build is complete: record its spec, so the next `vee bench` can reuse the warehouse.
CREATE TABLE public.bench_build (spec jsonb NOT NULL);
INSERT INTO public.bench_build VALUES (CAST(:spec AS jsonb));
