-- The version of each customer's identifier set and of each fleet, as the loyalty engine stamped it (a
-- customer or fleet record's `asOf`), kept as balances keep theirs (004): a record no newer than what is
-- stored is skipped. NULL for those loaded without one (they are replaced as before).
ALTER TABLE customers ADD COLUMN as_of timestamptz;
ALTER TABLE fleets ADD COLUMN as_of timestamptz;
