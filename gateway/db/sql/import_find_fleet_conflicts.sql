-- Fleets as they will be (the file's over the database's): within an org an
-- externalId names one fleet and a customer is the primary user of at most
-- one. Checked before applying, since the unique indexes would otherwise fail
-- midway with no line to name. Reports the later of two lines of the file.
WITH merged AS (
    SELECT org_id, fleet_id, external_id, primary_user_id, line FROM import_fleets
    UNION ALL
    SELECT f.org_id, f.fleet_id, f.external_id, f.primary_user_id, NULL
    FROM fleets f
    WHERE f.org_id IN (SELECT org_id FROM import_fleets)
      AND NOT EXISTS (SELECT 1 FROM import_fleets i WHERE i.org_id = f.org_id AND i.fleet_id = f.fleet_id)
)
SELECT line, reason
FROM (
    SELECT i.line, 1 AS rank,
           format('externalId %s is already used by fleet %s %s', to_json(i.external_id), m.fleet_id,
                  CASE WHEN m.line IS NULL THEN 'in the database' ELSE format('on line %s', m.line) END) AS reason
    FROM import_fleets i
    JOIN merged m ON m.org_id = i.org_id AND m.external_id = i.external_id AND m.fleet_id <> i.fleet_id
    WHERE m.line IS NULL OR m.line < i.line
    UNION ALL
    SELECT i.line, 2,
           format('customer %s is already the primary user of fleet %s %s', i.primary_user_id, m.fleet_id,
                  CASE WHEN m.line IS NULL THEN 'in the database' ELSE format('on line %s', m.line) END)
    FROM import_fleets i
    JOIN merged m ON m.org_id = i.org_id AND m.primary_user_id = i.primary_user_id AND m.fleet_id <> i.fleet_id
    WHERE m.line IS NULL OR m.line < i.line
) problems
ORDER BY line, rank
LIMIT 1
