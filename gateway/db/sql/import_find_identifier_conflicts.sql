-- Run after applying: an identifier of the file that another customer of the
-- org holds, where the org's rules make it unique (every identifier when dual
-- eligibility is off, only the primary type when it is on). When both
-- customers are in the file, the later line is at fault.
SELECT i.line,
       format('identifier %s %s (source %s%s) already belongs to customer %s %s',
              i.type, to_json(i.value), i.source,
              CASE WHEN i.account_id = '' THEN '' ELSE format(', account %s', to_json(i.account_id)) END,
              other.customer_id,
              CASE WHEN oc.line IS NULL THEN 'in the database' ELSE format('on line %s', oc.line) END) AS reason
FROM import_identifiers i
JOIN orgs o ON o.org_id = i.org_id
JOIN customer_identifiers other
  ON other.org_id = i.org_id AND other.source = i.source AND other.account_id = i.account_id
 AND other.type = i.type AND other.value = i.value AND other.customer_id <> i.customer_id
LEFT JOIN import_customers oc ON oc.org_id = other.org_id AND oc.customer_id = other.customer_id
WHERE (NOT o.dual_eligibility OR i.type = o.primary_identifier)
  AND (oc.line IS NULL OR oc.line < i.line)
ORDER BY i.line, other.customer_id
LIMIT 1
