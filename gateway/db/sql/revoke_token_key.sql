UPDATE end_user_token_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE key_id = $1
RETURNING org_id, revoked_at
