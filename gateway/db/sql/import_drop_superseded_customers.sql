-- Versioned customer records the same file (or batch) holds a newer version of: only the newest identifier
-- set counts. Their identifiers go with them. Returns how many records were dropped.
WITH dropped AS (
    DELETE FROM import_customers n
    USING import_customers m
    WHERE m.org_id = n.org_id AND m.customer_id = n.customer_id AND n.as_of < m.as_of
    RETURNING n.line
), identifiers AS (
    DELETE FROM import_identifiers i USING dropped d WHERE i.line = d.line
)
SELECT count(*) AS dropped FROM dropped
