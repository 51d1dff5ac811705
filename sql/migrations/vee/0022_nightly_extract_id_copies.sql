-- How many rows of mdm.vee_exception carry each staged exception_id, counted over the whole
-- table (1 where the warehouse enforces the contract's key, which the extract checks first).
-- An id held by an analyst's row and a decidable row is a duplicate too, though only one of
-- them is selected: validation quarantines it and the analyst's row is never touched.
ALTER TABLE vee.nightly_extract ADD COLUMN id_copies integer NOT NULL DEFAULT 1;
