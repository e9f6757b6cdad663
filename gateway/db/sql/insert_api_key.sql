INSERT INTO api_keys (org_id, key_prefix, key_hash, name)
VALUES ($1, $2, $3, $4)
