-- PostGraphile's side of the bench: the gateway's lookup (one identifier, the
-- org's default program) as a SQL function in a schema of its own, which
-- PostGraphile exposes as the query field `pointsBalance`. Simpler than the
-- gateway's statement (no dual-eligibility or conflict checks): a handicap in
-- PostGraphile's favour.
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

CREATE TYPE bench.promised_points_breakup AS (
    delayed_accrual_points        numeric,
    external_trigger_based_points numeric
);

CREATE TYPE bench.program_balance AS (
    program_id   integer,
    program_name text,
    main_points  numeric
);

CREATE TYPE bench.points_balance AS (
    entity_id               bigint,
    main_points             numeric,
    promised_points         numeric,
    total_points            numeric,
    promised_points_breakup bench.promised_points_breakup,
    programs                bench.program_balance[]
);

CREATE FUNCTION bench.points_balance(org_id bigint, source text, type text, value text)
RETURNS bench.points_balance
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT i.customer_id,
           m.main,
           m.delayed + m.external,
           m.main + m.delayed + m.external,
           ROW(m.delayed, m.external)::bench.promised_points_breakup,
           ARRAY[ROW(p.program_id, p.name, m.main)::bench.program_balance]
    FROM customer_identifiers i
    JOIN programs p ON p.org_id = $1 AND p.is_default
    LEFT JOIN balances b
      ON b.org_id = $1 AND b.entity_type = 'CUSTOMER' AND b.entity_id = i.customer_id
     AND b.program_id = p.program_id
    CROSS JOIN LATERAL (
        SELECT coalesce(b.main_points, 0.000) AS main,
               coalesce(b.delayed_accrual_points, 0.000) AS delayed,
               coalesce(b.external_trigger_points, 0.000) AS external
    ) m
    WHERE i.org_id = $1 AND i.source = $2 AND i.account_id = '' AND i.type = $3 AND i.value = $4
    LIMIT 1
$$;
