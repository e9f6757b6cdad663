-- Registering a document again only marks it used.
INSERT INTO persisted_queries (org_id, sha256, document) VALUES ($1, $2, $3)
ON CONFLICT (org_id, sha256) DO UPDATE SET last_used_at = now()
