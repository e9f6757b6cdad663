-- Autovacuum never analyzes temporary tables; without statistics the planner
-- would guess the sizes of the joins below.
ANALYZE import_orgs, import_programs, import_customers, import_identifiers, import_fleets, import_balances
