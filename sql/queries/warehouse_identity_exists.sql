-- Whether migration vee/0054 made the warehouse's id yet.
SELECT to_regclass('vee.warehouse_identity') IS NOT NULL AS identity_exists;
