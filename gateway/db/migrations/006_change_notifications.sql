-- Every committed change to balances, identifier sets and fleets is announced on the channel
-- loyalty_gateway_changes, whoever writes it (import, import --follow, or the loyalty engine with plain
-- SQL): the gateways' live subscriptions LISTEN to it. One announcement per statement and org, sent at
-- commit (NOTIFY is transactional), naming the entities the statement touched: "<org> C:<customer id>
-- F:<fleet id> …", cut to stay under PostgreSQL's 8000-byte payload limit; or "<org> *" when a statement
-- writes more than 1000 rows (a bulk import), so that a huge transaction costs one message
-- per org and every subscriber of that org looks again. (1000 rows of a statement, rather than entities,
-- decide: counting rows is cheap, counting distinct entities over a million rows is not.)
CREATE FUNCTION loyalty_gateway_announce(org bigint, entities text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload text := org::text;
    entity  text;
BEGIN
    FOREACH entity IN ARRAY entities LOOP
        IF length(payload) + length(entity) > 7900 THEN
            PERFORM pg_notify('loyalty_gateway_changes', payload);
            payload := org::text;
        END IF;
        payload := payload || ' ' || entity;
    END LOOP;
    IF payload <> org::text THEN
        PERFORM pg_notify('loyalty_gateway_changes', payload);
    END IF;
END
$$;

-- The statement's rows are its transition table, named `changed` by each trigger below.
CREATE FUNCTION loyalty_gateway_announce_balances() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 1000 THEN
        PERFORM pg_notify('loyalty_gateway_changes', org_id::text || ' *') FROM (SELECT DISTINCT org_id FROM changed) orgs;
    ELSE
        PERFORM loyalty_gateway_announce(org_id, entities)
        FROM (SELECT org_id, array_agg(DISTINCT left(entity_type, 1) || ':' || entity_id) AS entities FROM changed GROUP BY org_id) touched;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION loyalty_gateway_announce_identifiers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 1000 THEN
        PERFORM pg_notify('loyalty_gateway_changes', org_id::text || ' *') FROM (SELECT DISTINCT org_id FROM changed) orgs;
    ELSE
        PERFORM loyalty_gateway_announce(org_id, entities)
        FROM (SELECT org_id, array_agg(DISTINCT 'C:' || customer_id) AS entities FROM changed GROUP BY org_id) touched;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION loyalty_gateway_announce_fleets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM changed) > 1000 THEN
        PERFORM pg_notify('loyalty_gateway_changes', org_id::text || ' *') FROM (SELECT DISTINCT org_id FROM changed) orgs;
    ELSE
        PERFORM loyalty_gateway_announce(org_id, entities)
        FROM (SELECT org_id, array_agg(DISTINCT 'F:' || fleet_id) AS entities FROM changed GROUP BY org_id) touched;
    END IF;
    RETURN NULL;
END
$$;

-- A transition table serves one event only: three triggers a table. An update is announced by its new
-- rows (keys are not updated: identifiers and fleets that change are deleted and inserted again).
CREATE TRIGGER announce_inserted AFTER INSERT ON balances REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_balances();
CREATE TRIGGER announce_updated AFTER UPDATE ON balances REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_balances();
CREATE TRIGGER announce_deleted AFTER DELETE ON balances REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_balances();
CREATE TRIGGER announce_inserted AFTER INSERT ON customer_identifiers REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_identifiers();
CREATE TRIGGER announce_updated AFTER UPDATE ON customer_identifiers REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_identifiers();
CREATE TRIGGER announce_deleted AFTER DELETE ON customer_identifiers REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_identifiers();
CREATE TRIGGER announce_inserted AFTER INSERT ON fleets REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_fleets();
CREATE TRIGGER announce_updated AFTER UPDATE ON fleets REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_fleets();
CREATE TRIGGER announce_deleted AFTER DELETE ON fleets REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION loyalty_gateway_announce_fleets();
