-- A first load's balances (see import_write_balances for every other import): the table is empty, locked
-- against other writers and without its primary key until the load has built it, so the staged balances,
-- checked to be unique, are inserted as they are, in key order.
INSERT INTO balances (org_id, entity_type, entity_id, program_id,
                      main_points, delayed_accrual_points, external_trigger_points, as_of)
SELECT n.org_id, n.entity_type, n.entity_id, n.program_id,
       n.main_points, n.delayed_accrual_points, n.external_trigger_points, n.as_of
FROM import_balances n
ORDER BY n.org_id, n.entity_type COLLATE "C", n.entity_id, n.program_id
