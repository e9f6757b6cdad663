-- A replica's state for the read router; $1 is the primary's WAL position read just before (NULL when the
-- primary could not be asked).
SELECT
    pg_is_in_recovery() AS in_recovery,
    pg_last_wal_replay_lsn() >= $1::text::pg_lsn AS caught_up,
    pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS replayed_all_received,
    extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
    (SELECT coalesce(max(version), 0) FROM schema_migrations) AS schema_version
