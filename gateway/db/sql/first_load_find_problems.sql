-- After a first load copied customers, identifiers and balances straight into their tables (and their keys
-- and foreign keys were built): what those keys do not cover. Whether some balance names an entity that
-- does not exist, or some identifier belongs to two customers where its org's rules make it unique (every
-- identifier when dual eligibility is off, only the primary type when it is on). Says only whether: the
-- import is then done again the usual way, which names the line.
SELECT EXISTS (
           SELECT FROM balances b
           WHERE b.entity_type = 'CUSTOMER'
             AND NOT EXISTS (SELECT FROM customers c WHERE c.org_id = b.org_id AND c.customer_id = b.entity_id)
       )
    OR EXISTS (
           SELECT FROM balances b
           WHERE b.entity_type = 'FLEET'
             AND NOT EXISTS (SELECT FROM fleets f WHERE f.org_id = b.org_id AND f.fleet_id = b.entity_id)
       )
    OR EXISTS (
           SELECT FROM customer_identifiers i
           JOIN orgs o ON o.org_id = i.org_id
           WHERE NOT o.dual_eligibility OR i.type = o.primary_identifier
           GROUP BY i.org_id, i.source, i.account_id, i.type, i.value
           HAVING count(*) > 1
       ) AS found
