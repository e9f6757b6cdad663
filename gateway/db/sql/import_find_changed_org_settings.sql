-- Orgs of the file whose identifier rules change (dual eligibility or primary
-- identifier): run before applying, so that their existing identifiers can be
-- checked against the new rules afterwards.
SELECT i.org_id, i.line
FROM import_orgs i
JOIN orgs o ON o.org_id = i.org_id
WHERE (o.dual_eligibility, o.primary_identifier) IS DISTINCT FROM (i.dual_eligibility, i.primary_identifier)
