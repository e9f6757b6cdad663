UPDATE persisted_queries SET last_used_at = now() WHERE org_id = $1 AND sha256 = $2
