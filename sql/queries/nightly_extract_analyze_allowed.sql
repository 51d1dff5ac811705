-- May this login run vee.analyze_nightly_extract()? Not when the roles were made after the
-- upgrade and no `vee db upgrade` has granted it since (`vee db status` names it): the run
-- then goes on without fresh statistics, as a non-owner's plain ANALYZE let it, instead of
-- failing on the function's permission check.
SELECT has_function_privilege('vee.analyze_nightly_extract()', 'EXECUTE');
