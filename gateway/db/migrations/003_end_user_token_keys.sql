-- Keys that verify one org's end-user tokens (`loyalty-gateway token-key add`). A token is checked only
-- against the live keys of the org its `org` claim names: one org's signing key cannot speak for another
-- org's customers.
CREATE TABLE end_user_token_keys (
    org_id     bigint NOT NULL REFERENCES orgs,
    key_id     text NOT NULL,  -- `tk_` and 12 hex digits, made by the CLI: how operators name the key
    kid        text,           -- a JWK's own `kid`, matched against a token's `kid` header
    algorithm  text NOT NULL CHECK (algorithm IN ('HS256', 'RS256', 'ES256')),
    format     text NOT NULL CHECK (format IN ('secret', 'pem', 'jwk')),
    -- An HS256 secret as given: HMAC verification needs the secret itself, so it cannot be hashed, and only
    -- the database's own access control keeps it. Otherwise a public key: SubjectPublicKeyInfo PEM, or one
    -- JWK as JSON.
    material   bytea NOT NULL,
    issuer     text,           -- when set, the `iss` every token it verifies must carry
    audience   text,           -- when set, the `aud` every token it verifies must carry (unset: none)
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (org_id, key_id),
    CHECK ((format = 'secret') = (algorithm = 'HS256'))
);
CREATE UNIQUE INDEX end_user_token_keys_by_id ON end_user_token_keys (key_id);
-- A token's `kid` picks one live key of its org.
CREATE UNIQUE INDEX end_user_token_keys_live_kid ON end_user_token_keys (org_id, kid) WHERE revoked_at IS NULL;
-- An org's live keys, and whether any org has one (end-user tokens are on).
CREATE INDEX end_user_token_keys_live ON end_user_token_keys (org_id) WHERE revoked_at IS NULL;
