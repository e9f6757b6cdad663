-- Taken once a file (or a follow batch) is staged, for its checks and apply: one import applies at a time
-- (concurrent ones would race on the same keys), but reading and staging a large file does not hold up the
-- small batches of `import --follow`. Bulk loads (demo-data) take the same lock. Room for the set-based
-- checks' hashes and sorts.
SELECT pg_advisory_xact_lock(7311120002);
SET LOCAL work_mem = '256MB';
