-- A customer record replaces the customer's whole identifier set: drop the
-- identifiers it no longer lists. Those it still lists stay untouched, so a
-- re-import deletes and rewrites nothing.
DELETE FROM customer_identifiers ci
USING import_customers c
WHERE ci.org_id = c.org_id AND ci.customer_id = c.customer_id
  AND NOT EXISTS (
      SELECT 1 FROM import_identifiers n
      WHERE n.org_id = ci.org_id AND n.customer_id = ci.customer_id AND n.source = ci.source
        AND n.account_id = ci.account_id AND n.type = ci.type AND n.value = ci.value
  )
