-- This warehouse's id (migration vee/0054), as text.
SELECT CAST(warehouse_id AS text) AS warehouse_id FROM vee.warehouse_identity;
