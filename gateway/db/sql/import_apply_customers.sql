-- New rows go in key order (here and in the other big inserts): index pages
-- are then filled one after another instead of at random, which at a million
-- rows means far less buffer churn and WAL. NOT EXISTS rather than ON
-- CONFLICT: a speculative insertion costs an extra WAL record per row, and
-- the import lock already keeps other imports out.
INSERT INTO customers (org_id, customer_id, as_of)
SELECT org_id, customer_id, as_of FROM import_customers i
WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.org_id = i.org_id AND c.customer_id = i.customer_id)
ORDER BY org_id, customer_id
