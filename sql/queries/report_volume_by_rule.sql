-- Exceptions the MDMS raised per read date and rule code.
SELECT read_date, rule_code, count(*) AS exceptions
FROM mdm.vee_exception
WHERE read_date BETWEEN :since AND :until
GROUP BY read_date, rule_code
ORDER BY read_date, rule_code;
