-- The current value of a setting (to put it back after a block that changed it).
SELECT current_setting(:name) AS value;
