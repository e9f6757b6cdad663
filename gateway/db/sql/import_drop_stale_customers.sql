-- Versioned customer records no newer than the identifier set stored (see import_drop_stale_balances), with
-- their identifiers. Returns how many records were dropped.
WITH dropped AS (
    DELETE FROM import_customers n
    USING customers c
    WHERE c.org_id = n.org_id AND c.customer_id = n.customer_id AND n.as_of <= c.as_of
    RETURNING n.line
), identifiers AS (
    DELETE FROM import_identifiers i USING dropped d WHERE i.line = d.line
)
SELECT count(*) AS dropped FROM dropped
