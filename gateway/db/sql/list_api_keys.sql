-- Every key (of one org when $1 is not NULL), newest first; never the hash.
SELECT org_id, key_prefix, name, created_at, last_used_at, revoked_at
FROM api_keys
WHERE $1::bigint IS NULL OR org_id = $1
ORDER BY created_at DESC, key_prefix
