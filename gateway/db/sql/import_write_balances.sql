-- The staged balances: new ones inserted, those held already replaced where they differ (so that a
-- re-import rewrites nothing). One upsert rather than an update and an insert: a batch of balances alone
-- takes no import lock (see import_lock.sql), so another feeder may write the same balance meanwhile; and
-- every writer locks rows in this one order (key order, which also fills index pages in turn), so that two
-- of them wait for each other but never deadlock. A versioned record replaces only an older or unversioned
-- balance, checked again here against the balance as committed: a feeder may have written a newer one
-- since the batch's drop_outdated looked. A record without asOf replaces whatever is stored.
INSERT INTO balances AS b (org_id, entity_type, entity_id, program_id,
                           main_points, delayed_accrual_points, external_trigger_points, as_of)
SELECT n.org_id, n.entity_type, n.entity_id, n.program_id,
       n.main_points, n.delayed_accrual_points, n.external_trigger_points, n.as_of
FROM import_balances n
ORDER BY n.org_id, n.entity_type COLLATE "C", n.entity_id, n.program_id
ON CONFLICT (org_id, entity_type, entity_id, program_id) DO UPDATE
SET main_points = excluded.main_points,
    delayed_accrual_points = excluded.delayed_accrual_points,
    external_trigger_points = excluded.external_trigger_points,
    as_of = excluded.as_of
WHERE (excluded.as_of IS NULL OR b.as_of IS NULL OR excluded.as_of > b.as_of)
  AND (b.main_points, b.delayed_accrual_points, b.external_trigger_points, b.as_of)
      IS DISTINCT FROM (excluded.main_points, excluded.delayed_accrual_points, excluded.external_trigger_points,
                        excluded.as_of)
