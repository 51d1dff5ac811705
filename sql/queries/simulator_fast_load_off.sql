-- `vee simulate`: foreign-key triggers back on for the exceptions and resolutions.
SET LOCAL session_replication_role = DEFAULT
