-- For a run that selected nothing: the read date's exceptions in any status, and the nearest
-- read dates on either side that have any (each an index probe where mdm.vee_exception has an
-- index leading with read_date; a scan where it has none, once per empty run).
SELECT (SELECT count(*) FROM mdm.vee_exception WHERE read_date = :read_date) AS on_date,
       (SELECT max(read_date) FROM mdm.vee_exception WHERE read_date < :read_date) AS before,
       (SELECT min(read_date) FROM mdm.vee_exception WHERE read_date > :read_date) AS after
