SELECT document_id, sha256, document FROM trusted_documents WHERE revoked_at IS NULL
