-- The balances of several customer lookups of ONE org, each sent with ONE
-- identifier: the lookups that waited for a connection together
-- (gateway.db.balances), answered in one statement. fetch_customer_balance.sql
-- for each element of the arrays, the same rows and columns, numbered by
-- `lookup` (tests/db/test_fetch_balances_lean.py checks they agree).
-- $1 org; per lookup (arrays of equal length, lookup n at index n): $2 source,
-- $3 account id ('' for none), $4 program id (NULL: default), $5 all programs,
-- $6 identifier type, $7 normalised value, $8 parsed entity id (ID);
-- $9 NULL, or the one customer an end user may see.
-- The pool's connections use generic plans (gateway.db.pool): a custom plan for
-- each call would cost PostgreSQL more than the statement saves.
SELECT l.lookup, o.dual_eligibility, o.primary_identifier, d.entity_id,
       ARRAY[d.entity_id IS NOT NULL] AS belongs,
       ARRAY[coalesce(d.entity_id <> m.last, false)] AS other,
       p.program_id, p.name AS program_name, p.is_default,
       b.main_points, b.delayed_accrual_points, b.external_trigger_points
FROM orgs o
CROSS JOIN unnest($2::text[], $3::text[], $4::int[], $5::bool[], $6::text[], $7::text[], $8::bigint[])
     WITH ORDINALITY AS l (source, account_id, program_id, all_programs, type, value, entity_id, lookup)
CROSS JOIN LATERAL (
    SELECT min(matched.customer_id) AS first, max(matched.customer_id) AS last
    FROM (
        SELECT i.customer_id
        FROM customer_identifiers i
        WHERE i.org_id = $1 AND i.source = l.source AND i.account_id = l.account_id AND i.type = l.type
          AND i.value = l.value
          AND ($9::bigint IS NULL OR i.customer_id = $9)
        UNION ALL
        SELECT c.customer_id
        FROM customers c
        WHERE l.type = 'ID' AND c.org_id = $1 AND c.customer_id = l.entity_id
          AND ($9::bigint IS NULL OR c.customer_id = $9)
    ) matched
) m
CROSS JOIN LATERAL (
    SELECT CASE WHEN NOT o.dual_eligibility OR l.type = o.primary_identifier THEN m.first END AS entity_id
) d
LEFT JOIN programs p
  ON p.org_id = $1 AND (l.all_programs OR p.program_id = l.program_id OR (l.program_id IS NULL AND p.is_default))
LEFT JOIN balances b
  ON b.org_id = $1 AND b.entity_type = 'CUSTOMER' AND b.entity_id = d.entity_id AND b.program_id = p.program_id
WHERE o.org_id = $1
ORDER BY l.lookup, p.program_id
