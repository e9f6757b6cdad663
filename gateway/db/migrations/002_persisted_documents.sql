-- Automatic persisted queries (Apollo's protocol, version 1): documents an org's clients registered by
-- sending them once with their SHA-256. Only documents that passed validation are kept, and at most
-- --max-persisted-queries per org: registering one more forgets the least recently used.
CREATE TABLE persisted_queries (
    org_id       bigint NOT NULL REFERENCES orgs,
    sha256       text NOT NULL,  -- 64 lower-case hex digits, of the document's UTF-8 text
    document     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, sha256)
);
CREATE INDEX persisted_queries_by_use ON persisted_queries (org_id, last_used_at);

-- Trusted documents: the operations a deployment's own apps were built with, registered by an operator
-- from the build's manifest (`loyalty-gateway documents register`). Deployment-wide, like
-- schema_migrations: the same apps serve every org, so this small table would be copied to every shard.
CREATE TABLE trusted_documents (
    document_id   text PRIMARY KEY,  -- as the manifest names it: a SHA-256, or Relay's own id
    sha256        text NOT NULL,
    document      text NOT NULL,
    name          text NOT NULL,     -- the operation's name, for people
    registered_at timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX trusted_documents_by_sha256 ON trusted_documents (sha256) WHERE revoked_at IS NULL;
