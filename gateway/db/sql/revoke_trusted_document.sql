UPDATE trusted_documents SET revoked_at = coalesce(revoked_at, now()) WHERE document_id = $1 RETURNING revoked_at
