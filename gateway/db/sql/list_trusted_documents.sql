SELECT document_id, name, registered_at, revoked_at FROM trusted_documents ORDER BY registered_at, document_id
