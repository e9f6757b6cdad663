-- Fleets whose externalId, primary user or version changes are deleted and
-- inserted again rather than updated: two fleets of the file may swap values,
-- which the unique indexes, checked row by row, would refuse as an update.
-- No foreign key points at a fleet, and the fleet comes back with its id, so
-- its balances stay attached.
DELETE FROM fleets f
USING import_fleets i
WHERE f.org_id = i.org_id AND f.fleet_id = i.fleet_id
  AND (f.external_id, f.primary_user_id, f.as_of) IS DISTINCT FROM (i.external_id, i.primary_user_id, i.as_of)
