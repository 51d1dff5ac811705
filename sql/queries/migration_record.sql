-- One migration applied, in the same transaction as its script.
INSERT INTO vee.schema_migration (track, version, name, checksum)
VALUES (:track, :version, :name, :checksum);
