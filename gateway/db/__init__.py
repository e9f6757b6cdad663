"""Database access: pool, migrations, and one async function per query. No GraphQL here."""
