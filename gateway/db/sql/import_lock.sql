-- Taken once a file (or a follow batch) is staged, for its checks and apply, by every import that holds
-- more than balances: one such import applies at a time (concurrent ones would race on the same keys),
-- but reading and staging a large file does not hold up anyone. Imports of balances alone do without it
-- (their upsert is safe beside any other writer), so a bulk import never holds up the balances of
-- `import --follow`. Bulk loads (demo-data) take the same lock.
SELECT pg_advisory_xact_lock(7311120002)
