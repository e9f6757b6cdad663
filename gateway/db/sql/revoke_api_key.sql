UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE key_prefix = $1
RETURNING org_id, revoked_at
