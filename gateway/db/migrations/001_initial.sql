-- Every table carries org_id and every key leads with it, so the data can be
-- distributed by org later without changing a single lookup.

CREATE TABLE orgs (
    org_id             bigint PRIMARY KEY,
    name               text NOT NULL,
    dual_eligibility   boolean NOT NULL DEFAULT false,
    -- Set exactly when dual eligibility is on: the identifier type that decides.
    primary_identifier text,
    CHECK (dual_eligibility = (primary_identifier IS NOT NULL))
);

CREATE TABLE programs (
    org_id     bigint NOT NULL REFERENCES orgs,
    program_id integer NOT NULL,
    name       text NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    PRIMARY KEY (org_id, program_id)
);
-- At most one default program per org; the importer checks "at least one".
CREATE UNIQUE INDEX programs_one_default ON programs (org_id) WHERE is_default;

CREATE TABLE customers (
    org_id      bigint NOT NULL REFERENCES orgs,
    customer_id bigint NOT NULL,
    PRIMARY KEY (org_id, customer_id)
);

-- Values are stored normalised (see gateway/domain/identifiers.py); account_id
-- is '' when the identifier has no account, so it can be part of the key.
-- Secondary identifiers of dual-eligibility orgs may be shared, hence
-- customer_id in the key; the importer enforces uniqueness where it applies.
-- The key doubles as the covering index of the lookup (index-only scans).
CREATE TABLE customer_identifiers (
    org_id      bigint NOT NULL,
    source      text NOT NULL,
    account_id  text NOT NULL,
    type        text NOT NULL,
    value       text NOT NULL,
    customer_id bigint NOT NULL,
    PRIMARY KEY (org_id, source, account_id, type, value, customer_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers ON DELETE CASCADE
);
CREATE INDEX customer_identifiers_by_customer ON customer_identifiers (org_id, customer_id);

CREATE TABLE fleets (
    org_id          bigint NOT NULL REFERENCES orgs,
    fleet_id        bigint NOT NULL,
    external_id     text NOT NULL,
    primary_user_id bigint NOT NULL,
    PRIMARY KEY (org_id, fleet_id),
    FOREIGN KEY (org_id, primary_user_id) REFERENCES customers
);
CREATE UNIQUE INDEX fleets_by_external_id ON fleets (org_id, external_id) INCLUDE (fleet_id);
-- A customer is the primary user of at most one fleet, so PRIMARY_USER_ID is
-- an identifier like the others.
CREATE UNIQUE INDEX fleets_by_primary_user ON fleets (org_id, primary_user_id) INCLUDE (fleet_id);

CREATE TABLE balances (
    org_id                  bigint NOT NULL,
    entity_type             text NOT NULL CHECK (entity_type IN ('CUSTOMER', 'FLEET')),
    entity_id               bigint NOT NULL,
    program_id              integer NOT NULL,
    main_points             numeric(18, 3) NOT NULL,
    delayed_accrual_points  numeric(18, 3) NOT NULL,
    external_trigger_points numeric(18, 3) NOT NULL,
    PRIMARY KEY (org_id, entity_type, entity_id, program_id),
    FOREIGN KEY (org_id, program_id) REFERENCES programs
);

-- Only a SHA-256 of each key is kept; key_prefix is the public, non-secret
-- part of the key that lets an operator tell keys apart.
CREATE TABLE api_keys (
    org_id       bigint NOT NULL REFERENCES orgs,
    key_prefix   text NOT NULL,
    key_hash     bytea NOT NULL,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (org_id, key_prefix)
);
CREATE UNIQUE INDEX api_keys_by_prefix ON api_keys (key_prefix);
