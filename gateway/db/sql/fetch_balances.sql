-- Balances for a batch of lookups of one org, in one round trip.
-- $1 org; per lookup (arrays of equal length, lookup n at index n):
--   $2 entity type, $3 source, $4 account id ('' for none), $5 program id (NULL: default), $6 all programs;
-- per sent identifier (arrays of equal length, in the order sent):
--   $7 lookup number, $8 type, $9 normalised value, $10 parsed entity id (ID / PRIMARY_USER_ID).
-- $11: NULL, or the one customer an end user may see: identifiers then match only
-- that customer and the fleets it heads, so everyone else looks like nobody.
-- Returns one row per (lookup, selected program), or one row with NULL program
-- columns when a lookup selects none.
WITH lookups AS (
    SELECT *
    FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::bool[])
         WITH ORDINALITY AS l (entity_type, source, account_id, program_id, all_programs, lookup)
),
sent AS (
    SELECT *
    FROM unnest($7::int[], $8::text[], $9::text[], $10::bigint[])
         WITH ORDINALITY AS s (lookup, type, value, entity_id, ord)
),
org AS (
    SELECT dual_eligibility, primary_identifier FROM orgs WHERE org_id = $1
),
matched AS (
    SELECT s.lookup, s.ord, s.type, i.customer_id AS entity_id
    FROM sent s
    JOIN lookups l ON l.lookup = s.lookup AND l.entity_type = 'CUSTOMER'
    JOIN customer_identifiers i
      ON i.org_id = $1 AND i.source = l.source AND i.account_id = l.account_id
     AND i.type = s.type AND i.value = s.value
     AND ($11::bigint IS NULL OR i.customer_id = $11)
    UNION ALL
    SELECT s.lookup, s.ord, s.type, c.customer_id
    FROM sent s
    JOIN lookups l ON l.lookup = s.lookup AND l.entity_type = 'CUSTOMER'
    JOIN customers c ON c.org_id = $1 AND c.customer_id = s.entity_id
     AND ($11::bigint IS NULL OR c.customer_id = $11)
    WHERE s.type = 'ID'
    UNION ALL
    SELECT s.lookup, s.ord, s.type, f.fleet_id
    FROM sent s
    JOIN lookups l ON l.lookup = s.lookup AND l.entity_type = 'FLEET'
    JOIN fleets f ON f.org_id = $1 AND f.fleet_id = s.entity_id
     AND ($11::bigint IS NULL OR f.primary_user_id = $11)
    WHERE s.type = 'ID'
    UNION ALL
    SELECT s.lookup, s.ord, s.type, f.fleet_id
    FROM sent s
    JOIN lookups l ON l.lookup = s.lookup AND l.entity_type = 'FLEET'
    JOIN fleets f ON f.org_id = $1 AND f.external_id = s.value
     AND ($11::bigint IS NULL OR f.primary_user_id = $11)
    WHERE s.type = 'EXTERNAL_ID'
    UNION ALL
    SELECT s.lookup, s.ord, s.type, f.fleet_id
    FROM sent s
    JOIN lookups l ON l.lookup = s.lookup AND l.entity_type = 'FLEET'
    JOIN fleets f ON f.org_id = $1 AND f.primary_user_id = s.entity_id
     AND ($11::bigint IS NULL OR f.primary_user_id = $11)
    WHERE s.type = 'PRIMARY_USER_ID'
),
-- The deciding identifier: the first one that matched, or, for customers of
-- a dual-eligibility org, the one of the org's primary type.
decided AS (
    SELECT DISTINCT ON (m.lookup) m.lookup, m.entity_id
    FROM matched m
    JOIN lookups l ON l.lookup = m.lookup
    CROSS JOIN org o
    WHERE l.entity_type = 'FLEET' OR NOT o.dual_eligibility OR m.type = o.primary_identifier
    ORDER BY m.lookup, m.ord, m.entity_id
),
verdicts AS (
    SELECT lookup, array_agg(belongs ORDER BY ord) AS belongs, array_agg(other ORDER BY ord) AS other
    FROM (
        SELECT s.lookup, s.ord,
               coalesce(bool_or(m.entity_id = d.entity_id), false) AS belongs,
               coalesce(bool_or(m.entity_id <> d.entity_id), false) AS other
        FROM sent s
        LEFT JOIN decided d ON d.lookup = s.lookup
        LEFT JOIN matched m ON m.lookup = s.lookup AND m.ord = s.ord
        GROUP BY s.lookup, s.ord
    ) per_identifier
    GROUP BY lookup
),
selected AS (
    SELECT l.lookup, p.program_id, p.name, p.is_default
    FROM lookups l
    JOIN programs p
      ON p.org_id = $1
     AND (l.all_programs OR p.program_id = l.program_id OR (l.program_id IS NULL AND p.is_default))
)
SELECT l.lookup, o.dual_eligibility, o.primary_identifier, d.entity_id, v.belongs, v.other,
       p.program_id, p.name AS program_name, p.is_default,
       b.main_points, b.delayed_accrual_points, b.external_trigger_points
FROM lookups l
CROSS JOIN org o
LEFT JOIN decided d ON d.lookup = l.lookup
LEFT JOIN verdicts v ON v.lookup = l.lookup
LEFT JOIN selected p ON p.lookup = l.lookup
LEFT JOIN balances b
  ON b.org_id = $1 AND b.entity_type = l.entity_type AND b.entity_id = d.entity_id
 AND b.program_id = p.program_id
ORDER BY l.lookup, p.program_id
