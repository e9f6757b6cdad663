-- Every org the file touches (with an org or a program record) must end with
-- exactly one default program, counting the file's programs over the
-- database's. Returns the first line at fault: a second default program, or
-- the org's own line (else its first program line) when it has none.
WITH touched AS (
    SELECT org_id, coalesce(min(line) FILTER (WHERE is_org), min(line)) AS line
    FROM (
        SELECT org_id, line, true AS is_org FROM import_orgs
        UNION ALL
        SELECT org_id, line, false FROM import_programs
    ) records
    GROUP BY org_id
),
merged AS (
    SELECT org_id, program_id, is_default, line FROM import_programs
    UNION ALL
    SELECT p.org_id, p.program_id, p.is_default, NULL
    FROM programs p
    WHERE p.org_id IN (SELECT org_id FROM touched)
      AND NOT EXISTS (SELECT 1 FROM import_programs i WHERE i.org_id = p.org_id AND i.program_id = p.program_id)
)
SELECT line, reason
FROM (
    SELECT p.line,
           format('org %s already has a default program: program %s %s', p.org_id, m.program_id,
                  CASE WHEN m.line IS NULL THEN 'in the database' ELSE format('on line %s', m.line) END) AS reason
    FROM import_programs p
    JOIN merged m ON m.org_id = p.org_id AND m.is_default AND m.program_id <> p.program_id
    WHERE p.is_default AND (m.line IS NULL OR m.line < p.line)
    UNION ALL
    SELECT t.line, format('org %s has no default program', t.org_id)
    FROM touched t
    WHERE NOT EXISTS (SELECT 1 FROM merged m WHERE m.org_id = t.org_id AND m.is_default)
) problems
ORDER BY line
LIMIT 1
