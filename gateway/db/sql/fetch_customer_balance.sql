-- The balance of ONE customer lookup sent with ONE identifier: nearly every
-- request. fetch_balances.sql answers it too, but its CTEs, UNION ALLs over
-- fleets and aggregates cost PostgreSQL twice the CPU for this case (72 against
-- 148 µs per execution at 1M customers: bench/explain.py --compare). Same rows
-- and columns as fetch_balances.sql returns for such a batch (one lookup), so
-- the caller groups them the same way; tests/db/test_fetch_balances_lean.py
-- checks the two agree.
-- $1 org, $2 source, $3 account id ('' for none), $4 program id (NULL: default),
-- $5 all programs, $6 identifier type, $7 normalised value, $8 parsed entity id (ID),
-- $9 NULL, or the one customer an end user may see.
-- Scalar parameters only: the generic plan then costs about what a custom one
-- does, so a prepared statement settles on it and is not planned on each call.
-- The first match decides (the lowest customer id when a shared identifier
-- matches several); in a dual-eligibility org only an identifier of the primary
-- type may decide. `other`: the identifier also matches a different customer.
SELECT 1 AS lookup, o.dual_eligibility, o.primary_identifier, d.entity_id,
       ARRAY[d.entity_id IS NOT NULL] AS belongs,
       ARRAY[coalesce(d.entity_id <> m.last, false)] AS other,
       p.program_id, p.name AS program_name, p.is_default,
       b.main_points, b.delayed_accrual_points, b.external_trigger_points
FROM orgs o
CROSS JOIN LATERAL (
    SELECT min(matched.customer_id) AS first, max(matched.customer_id) AS last
    FROM (
        SELECT i.customer_id
        FROM customer_identifiers i
        WHERE i.org_id = $1 AND i.source = $2 AND i.account_id = $3 AND i.type = $6 AND i.value = $7
          AND ($9::bigint IS NULL OR i.customer_id = $9)
        UNION ALL
        SELECT c.customer_id
        FROM customers c
        WHERE $6 = 'ID' AND c.org_id = $1 AND c.customer_id = $8
          AND ($9::bigint IS NULL OR c.customer_id = $9)
    ) matched
) m
CROSS JOIN LATERAL (
    SELECT CASE WHEN NOT o.dual_eligibility OR $6 = o.primary_identifier THEN m.first END AS entity_id
) d
LEFT JOIN programs p
  ON p.org_id = $1 AND ($5 OR p.program_id = $4 OR ($4 IS NULL AND p.is_default))
LEFT JOIN balances b
  ON b.org_id = $1 AND b.entity_type = 'CUSTOMER' AND b.entity_id = d.entity_id AND b.program_id = p.program_id
WHERE o.org_id = $1
ORDER BY p.program_id
