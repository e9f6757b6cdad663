-- New balances, in key order (see import_apply_customers).
INSERT INTO balances (org_id, entity_type, entity_id, program_id,
                      main_points, delayed_accrual_points, external_trigger_points, as_of)
SELECT n.org_id, n.entity_type, n.entity_id, n.program_id,
       n.main_points, n.delayed_accrual_points, n.external_trigger_points, n.as_of
FROM import_balances n
WHERE NOT EXISTS (
    SELECT 1 FROM balances b
    WHERE b.org_id = n.org_id AND b.entity_type = n.entity_type AND b.entity_id = n.entity_id
      AND b.program_id = n.program_id
)
ORDER BY n.org_id, n.entity_type COLLATE "C", n.entity_id, n.program_id
