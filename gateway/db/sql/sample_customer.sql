-- A customer identifier that answers with points in its org's default
-- program, preferring orgs without dual eligibility (a single identifier
-- is enough there), then email addresses: the friendliest example.
SELECT o.org_id, o.name AS org_name, i.source, nullif(i.account_id, '') AS account_id, i.type, i.value
FROM orgs o
JOIN programs p ON p.org_id = o.org_id AND p.is_default
JOIN LATERAL (
    SELECT b.entity_id
    FROM balances b
    WHERE b.org_id = o.org_id AND b.entity_type = 'CUSTOMER' AND b.program_id = p.program_id
      AND b.main_points > 0
    ORDER BY b.entity_id
    LIMIT 1
) c ON true
JOIN customer_identifiers i ON i.org_id = o.org_id AND i.customer_id = c.entity_id
WHERE NOT o.dual_eligibility
ORDER BY o.org_id, (i.type = 'EMAIL') DESC, i.type
LIMIT 1
