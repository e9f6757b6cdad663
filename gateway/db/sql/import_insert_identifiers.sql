-- The identifiers a customer record lists that its customer does not hold yet.
-- Sorted in key order like the other big inserts (see import_apply_customers);
-- the sort compares bytes (COLLATE "C"): several times faster than a libc
-- collation, and the very order of the index when the database collation is
-- C or C.UTF-8; under another collation the order is merely close to it.
INSERT INTO customer_identifiers (org_id, source, account_id, type, value, customer_id)
SELECT n.org_id, n.source, n.account_id, n.type, n.value, n.customer_id
FROM import_identifiers n
WHERE NOT EXISTS (
    SELECT 1 FROM customer_identifiers ci
    WHERE ci.org_id = n.org_id AND ci.source = n.source AND ci.account_id = n.account_id
      AND ci.type = n.type AND ci.value = n.value AND ci.customer_id = n.customer_id
)
ORDER BY n.org_id, n.source COLLATE "C", n.account_id COLLATE "C", n.type COLLATE "C", n.value COLLATE "C",
         n.customer_id
