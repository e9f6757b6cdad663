-- Registering the same document again (a later build's manifest) keeps it and lifts a revocation;
-- an id already used for another text returns no row.
INSERT INTO trusted_documents (document_id, sha256, document, name) VALUES ($1, $2, $3, $4)
ON CONFLICT (document_id) DO UPDATE SET revoked_at = NULL, name = EXCLUDED.name
WHERE trusted_documents.sha256 = EXCLUDED.sha256
RETURNING document_id
