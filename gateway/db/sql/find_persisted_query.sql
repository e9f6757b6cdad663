SELECT document FROM persisted_queries WHERE org_id = $1 AND sha256 = $2
