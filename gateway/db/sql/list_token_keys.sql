-- Every org token key (of one org when $1 is not NULL), newest first; never the key material.
SELECT org_id, key_id, kid, algorithm, format, issuer, audience, name, created_at, revoked_at
FROM end_user_token_keys
WHERE $1::bigint IS NULL OR org_id = $1
ORDER BY created_at DESC, key_id
