-- Rows that would not change are left alone: a re-import rewrites nothing.
INSERT INTO orgs (org_id, name, dual_eligibility, primary_identifier)
SELECT org_id, name, dual_eligibility, primary_identifier FROM import_orgs
ON CONFLICT (org_id) DO UPDATE
SET name = excluded.name, dual_eligibility = excluded.dual_eligibility, primary_identifier = excluded.primary_identifier
WHERE (orgs.name, orgs.dual_eligibility, orgs.primary_identifier)
      IS DISTINCT FROM (excluded.name, excluded.dual_eligibility, excluded.primary_identifier)
