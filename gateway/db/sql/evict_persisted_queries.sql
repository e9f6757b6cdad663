-- Keep an org's $2 most recently used documents.
DELETE FROM persisted_queries
WHERE org_id = $1 AND sha256 IN (
    SELECT sha256 FROM persisted_queries WHERE org_id = $1 ORDER BY last_used_at DESC, sha256 OFFSET $2
)
