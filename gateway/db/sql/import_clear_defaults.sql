-- Programs that stop being the default lose the flag first: the unique index
-- on an org's default program is checked row by row, so the new default must
-- not arrive while the old one still holds it.
UPDATE programs p
SET is_default = false
FROM import_programs i
WHERE p.org_id = i.org_id AND p.program_id = i.program_id AND p.is_default AND NOT i.is_default
