-- Versioned fleet records the same file (or batch) holds a newer version of: only the newest counts.
-- Returns how many were dropped.
WITH dropped AS (
    DELETE FROM import_fleets n
    USING import_fleets m
    WHERE m.org_id = n.org_id AND m.fleet_id = n.fleet_id AND n.as_of < m.as_of
    RETURNING n.line
)
SELECT count(*) AS dropped FROM dropped
