-- The first line (in file order) that repeats the key of an earlier record of
-- the same kind, and the reason naming that earlier line.
WITH org_keys AS (
    SELECT org_id, min(line) AS first_line FROM import_orgs GROUP BY org_id HAVING count(*) > 1
),
program_keys AS (
    SELECT org_id, program_id, min(line) AS first_line
    FROM import_programs GROUP BY org_id, program_id HAVING count(*) > 1
),
customer_keys AS (
    SELECT org_id, customer_id, min(line) AS first_line
    FROM import_customers GROUP BY org_id, customer_id HAVING count(*) > 1
),
fleet_keys AS (
    SELECT org_id, fleet_id, min(line) AS first_line
    FROM import_fleets GROUP BY org_id, fleet_id HAVING count(*) > 1
),
balance_keys AS (
    SELECT org_id, entity_type, entity_id, program_id, min(line) AS first_line
    FROM import_balances GROUP BY org_id, entity_type, entity_id, program_id HAVING count(*) > 1
)
SELECT line, reason
FROM (
    SELECT min(s.line) AS line, format('org %s is already defined on line %s', k.org_id, k.first_line) AS reason
    FROM org_keys k JOIN import_orgs s ON s.org_id = k.org_id AND s.line > k.first_line
    GROUP BY k.org_id, k.first_line
    UNION ALL
    SELECT min(s.line), format('program %s of org %s is already defined on line %s', k.program_id, k.org_id, k.first_line)
    FROM program_keys k
    JOIN import_programs s ON s.org_id = k.org_id AND s.program_id = k.program_id AND s.line > k.first_line
    GROUP BY k.org_id, k.program_id, k.first_line
    UNION ALL
    SELECT min(s.line),
           format('customer %s of org %s is already defined on line %s', k.customer_id, k.org_id, k.first_line)
    FROM customer_keys k
    JOIN import_customers s ON s.org_id = k.org_id AND s.customer_id = k.customer_id AND s.line > k.first_line
    GROUP BY k.org_id, k.customer_id, k.first_line
    UNION ALL
    SELECT min(s.line), format('fleet %s of org %s is already defined on line %s', k.fleet_id, k.org_id, k.first_line)
    FROM fleet_keys k
    JOIN import_fleets s ON s.org_id = k.org_id AND s.fleet_id = k.fleet_id AND s.line > k.first_line
    GROUP BY k.org_id, k.fleet_id, k.first_line
    UNION ALL
    SELECT min(s.line),
           format('the balance of %s %s in program %s of org %s is already defined on line %s',
                  k.entity_type, k.entity_id, k.program_id, k.org_id, k.first_line)
    FROM balance_keys k
    JOIN import_balances s
      ON s.org_id = k.org_id AND s.entity_type = k.entity_type AND s.entity_id = k.entity_id
     AND s.program_id = k.program_id AND s.line > k.first_line
    GROUP BY k.org_id, k.entity_type, k.entity_id, k.program_id, k.first_line
) problems
ORDER BY line
LIMIT 1
