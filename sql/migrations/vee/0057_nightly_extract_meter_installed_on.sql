-- The meter's install date (mdm.meter.installed_on; the earliest where a warehouse that does
-- not enforce the meter key holds several) beside each staged exception: validation warns of
-- exceptions read before their meter was installed (a meter exchange recorded late, or a read
-- booked to the wrong meter). NULL for a meter unknown to mdm.meter (meter_known says so).
ALTER TABLE vee.nightly_extract ADD COLUMN meter_installed_on date;
