-- The version of the identifier set each customer record brings, for the customers the database holds
-- already (a record without asOf leaves its customer unversioned); only where it differs, so that a
-- re-import rewrites nothing.
UPDATE customers c
SET as_of = i.as_of
FROM import_customers i
WHERE c.org_id = i.org_id AND c.customer_id = i.customer_id AND c.as_of IS DISTINCT FROM i.as_of
