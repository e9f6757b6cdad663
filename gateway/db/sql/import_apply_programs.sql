INSERT INTO programs (org_id, program_id, name, is_default)
SELECT org_id, program_id, name, is_default FROM import_programs
ON CONFLICT (org_id, program_id) DO UPDATE
SET name = excluded.name, is_default = excluded.is_default
WHERE (programs.name, programs.is_default) IS DISTINCT FROM (excluded.name, excluded.is_default)
