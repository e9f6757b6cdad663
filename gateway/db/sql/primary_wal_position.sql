-- How far the primary's WAL is flushed (what streaming replicas can receive), as text.
SELECT pg_current_wal_flush_lsn()::text
