-- Balances the database holds already: replaced, but only where they differ,
-- so that a re-import rewrites nothing. A record without asOf leaves the balance unversioned.
UPDATE balances b
SET main_points = n.main_points,
    delayed_accrual_points = n.delayed_accrual_points,
    external_trigger_points = n.external_trigger_points,
    as_of = n.as_of
FROM import_balances n
WHERE b.org_id = n.org_id AND b.entity_type = n.entity_type AND b.entity_id = n.entity_id
  AND b.program_id = n.program_id
  AND (b.main_points, b.delayed_accrual_points, b.external_trigger_points, b.as_of)
      IS DISTINCT FROM (n.main_points, n.delayed_accrual_points, n.external_trigger_points, n.as_of)
