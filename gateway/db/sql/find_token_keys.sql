-- The live keys that verify one org's end-user tokens.
SELECT key_id, kid, algorithm, format, material, issuer, audience
FROM end_user_token_keys
WHERE org_id = $1 AND revoked_at IS NULL
ORDER BY created_at DESC, key_id
