-- Versioned balance records the same file (or batch) holds a newer version of: only the newest counts.
-- Returns how many were dropped.
WITH dropped AS (
    DELETE FROM import_balances n
    USING import_balances m
    WHERE m.org_id = n.org_id AND m.entity_type = n.entity_type AND m.entity_id = n.entity_id
      AND m.program_id = n.program_id AND n.as_of < m.as_of
    RETURNING n.line
)
SELECT count(*) AS dropped FROM dropped
