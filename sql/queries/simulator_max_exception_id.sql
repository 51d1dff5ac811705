-- `vee simulate --append`: new exception ids start after the largest present one.
SELECT coalesce(max(exception_id), 0) AS max_id FROM mdm.vee_exception
