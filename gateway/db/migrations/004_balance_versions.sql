-- The version of each balance, as the loyalty engine stamped it (a balance record's `asOf`): an import or a
-- follow batch skips a record no newer than what is stored, so that a replayed, retried or late batch can
-- never move a balance backwards. NULL for balances loaded without one (they are replaced as before).
ALTER TABLE balances ADD COLUMN as_of timestamptz;
