-- The staging tables an import's file is copied into. Every staging row keeps the file line it came from,
-- so that a set-based check can name the line at fault. `import` creates them in its transaction and they
-- vanish with it; `import --follow` creates them once per connection with ON COMMIT DELETE ROWS instead,
-- so that a batch creates no table (and writes no catalog rows).
CREATE TEMP TABLE import_orgs (
    line               bigint NOT NULL,
    org_id             bigint NOT NULL,
    name               text NOT NULL,
    dual_eligibility   boolean NOT NULL,
    primary_identifier text
) ON COMMIT DROP;
CREATE TEMP TABLE import_programs (
    line       bigint NOT NULL,
    org_id     bigint NOT NULL,
    program_id integer NOT NULL,
    name       text NOT NULL,
    is_default boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_customers (
    line        bigint NOT NULL,
    org_id      bigint NOT NULL,
    customer_id bigint NOT NULL,
    as_of       timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE import_identifiers (
    line        bigint NOT NULL,
    org_id      bigint NOT NULL,
    customer_id bigint NOT NULL,
    source      text NOT NULL,
    account_id  text NOT NULL,
    type        text NOT NULL,
    value       text NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_fleets (
    line            bigint NOT NULL,
    org_id          bigint NOT NULL,
    fleet_id        bigint NOT NULL,
    external_id     text NOT NULL,
    primary_user_id bigint NOT NULL,
    as_of           timestamptz
) ON COMMIT DROP;
CREATE TEMP TABLE import_balances (
    line                    bigint NOT NULL,
    org_id                  bigint NOT NULL,
    entity_type             text NOT NULL,
    entity_id               bigint NOT NULL,
    program_id              integer NOT NULL,
    main_points             numeric(18, 3) NOT NULL,
    delayed_accrual_points  numeric(18, 3) NOT NULL,
    external_trigger_points numeric(18, 3) NOT NULL,
    as_of                   timestamptz
) ON COMMIT DROP;
