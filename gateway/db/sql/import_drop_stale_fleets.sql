-- Versioned fleet records no newer than the fleet stored (see import_drop_stale_balances). Returns how many
-- were dropped.
WITH dropped AS (
    DELETE FROM import_fleets n
    USING fleets f
    WHERE f.org_id = n.org_id AND f.fleet_id = n.fleet_id AND n.as_of <= f.as_of
    RETURNING n.line
)
SELECT count(*) AS dropped FROM dropped
