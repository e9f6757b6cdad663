INSERT INTO end_user_token_keys (org_id, key_id, kid, algorithm, format, material, issuer, audience, name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
