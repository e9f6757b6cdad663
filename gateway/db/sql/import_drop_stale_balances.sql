-- Versioned balance records no newer than the version stored: a replay, a retry or a late batch. Skipped,
-- so that no balance ever moves backwards (the import lock is held: nothing else writes them meanwhile).
-- Returns how many were dropped.
WITH dropped AS (
    DELETE FROM import_balances n
    USING balances b
    WHERE b.org_id = n.org_id AND b.entity_type = n.entity_type AND b.entity_id = n.entity_id
      AND b.program_id = n.program_id AND n.as_of <= b.as_of
    RETURNING n.line
)
SELECT count(*) AS dropped FROM dropped
