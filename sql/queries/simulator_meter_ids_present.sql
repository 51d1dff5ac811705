-- `vee simulate --append`: how many of the simulated meter ids already exist.
SELECT count(*) AS n FROM mdm.meter WHERE meter_id = ANY(:meter_ids)
