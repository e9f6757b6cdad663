-- Opens an import, inside its transaction: one import at a time (concurrent
-- ones would race on the same keys), room for the set-based checks' hashes
-- and sorts, and the staging tables the file is copied into.
-- Every staging row keeps the file line it came from, so that a set-based
-- check can name the line at fault. The tables vanish with the transaction.
SELECT pg_advisory_xact_lock(7311120002);
SET LOCAL work_mem = '256MB';
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
    customer_id bigint NOT NULL
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
    primary_user_id bigint NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_balances (
    line                    bigint NOT NULL,
    org_id                  bigint NOT NULL,
    entity_type             text NOT NULL,
    entity_id               bigint NOT NULL,
    program_id              integer NOT NULL,
    main_points             numeric(18, 3) NOT NULL,
    delayed_accrual_points  numeric(18, 3) NOT NULL,
    external_trigger_points numeric(18, 3) NOT NULL
) ON COMMIT DROP;
