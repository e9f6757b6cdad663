-- The first line that refers to an org, program, customer or fleet that is
-- neither in the file nor in the database. On one line, the org is reported
-- before what depends on it (rank).
SELECT line, reason
FROM (
    SELECT p.line, 1 AS rank, format('unknown org %s', p.org_id) AS reason
    FROM import_programs p
    WHERE NOT EXISTS (SELECT 1 FROM import_orgs o WHERE o.org_id = p.org_id)
      AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = p.org_id)
    UNION ALL
    SELECT c.line, 1, format('unknown org %s', c.org_id)
    FROM import_customers c
    WHERE NOT EXISTS (SELECT 1 FROM import_orgs o WHERE o.org_id = c.org_id)
      AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = c.org_id)
    UNION ALL
    SELECT f.line, 1, format('unknown org %s', f.org_id)
    FROM import_fleets f
    WHERE NOT EXISTS (SELECT 1 FROM import_orgs o WHERE o.org_id = f.org_id)
      AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = f.org_id)
    UNION ALL
    SELECT f.line, 2, format('unknown primaryUserId: org %s has no customer %s', f.org_id, f.primary_user_id)
    FROM import_fleets f
    WHERE NOT EXISTS (
            SELECT 1 FROM import_customers c WHERE c.org_id = f.org_id AND c.customer_id = f.primary_user_id)
      AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.org_id = f.org_id AND c.customer_id = f.primary_user_id)
    UNION ALL
    SELECT b.line, 1, format('unknown org %s', b.org_id)
    FROM import_balances b
    WHERE NOT EXISTS (SELECT 1 FROM import_orgs o WHERE o.org_id = b.org_id)
      AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.org_id = b.org_id)
    UNION ALL
    SELECT b.line, 2, format('unknown program: org %s has no program %s', b.org_id, b.program_id)
    FROM import_balances b
    WHERE NOT EXISTS (
            SELECT 1 FROM import_programs p WHERE p.org_id = b.org_id AND p.program_id = b.program_id)
      AND NOT EXISTS (SELECT 1 FROM programs p WHERE p.org_id = b.org_id AND p.program_id = b.program_id)
    UNION ALL
    SELECT b.line, 3, format('unknown entity: org %s has no customer %s', b.org_id, b.entity_id)
    FROM import_balances b
    WHERE b.entity_type = 'CUSTOMER'
      AND NOT EXISTS (SELECT 1 FROM import_customers c WHERE c.org_id = b.org_id AND c.customer_id = b.entity_id)
      AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.org_id = b.org_id AND c.customer_id = b.entity_id)
    UNION ALL
    SELECT b.line, 3, format('unknown entity: org %s has no fleet %s', b.org_id, b.entity_id)
    FROM import_balances b
    WHERE b.entity_type = 'FLEET'
      AND NOT EXISTS (SELECT 1 FROM import_fleets f WHERE f.org_id = b.org_id AND f.fleet_id = b.entity_id)
      AND NOT EXISTS (SELECT 1 FROM fleets f WHERE f.org_id = b.org_id AND f.fleet_id = b.entity_id)
) problems
ORDER BY line, rank
LIMIT 1
