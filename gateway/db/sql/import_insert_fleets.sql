INSERT INTO fleets (org_id, fleet_id, external_id, primary_user_id, as_of)
SELECT org_id, fleet_id, external_id, primary_user_id, as_of FROM import_fleets
ON CONFLICT (org_id, fleet_id) DO NOTHING
