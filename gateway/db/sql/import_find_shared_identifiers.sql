-- Run after applying, for the orgs whose identifier rules the file changed
-- ($1 org ids, $2 their lines): an identifier that several customers share
-- although the new rules make it unique.
WITH changed AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS c (org_id, line)
)
SELECT c.line,
       format('with these settings, identifier %s %s (source %s%s) would belong to customers %s and %s',
              ci.type, to_json(ci.value), ci.source,
              CASE WHEN ci.account_id = '' THEN '' ELSE format(', account %s', to_json(ci.account_id)) END,
              min(ci.customer_id), max(ci.customer_id)) AS reason
FROM changed c
JOIN orgs o ON o.org_id = c.org_id
JOIN customer_identifiers ci ON ci.org_id = c.org_id AND (NOT o.dual_eligibility OR ci.type = o.primary_identifier)
GROUP BY c.line, ci.org_id, ci.source, ci.account_id, ci.type, ci.value
HAVING count(*) > 1
ORDER BY c.line
LIMIT 1
