-- Balances the database holds already: replaced, but only where they differ,
-- so that a re-import rewrites nothing.
UPDATE balances b
SET main_points = n.main_points,
    delayed_accrual_points = n.delayed_accrual_points,
    external_trigger_points = n.external_trigger_points
FROM import_balances n
WHERE b.org_id = n.org_id AND b.entity_type = n.entity_type AND b.entity_id = n.entity_id
  AND b.program_id = n.program_id
  AND (b.main_points, b.delayed_accrual_points, b.external_trigger_points)
      IS DISTINCT FROM (n.main_points, n.delayed_accrual_points, n.external_trigger_points)
