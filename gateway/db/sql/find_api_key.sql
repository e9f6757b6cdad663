-- The stored key with this public prefix, if it is live.
SELECT org_id, key_hash
FROM api_keys
WHERE key_prefix = $1 AND revoked_at IS NULL
