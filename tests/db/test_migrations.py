from gateway.db.migrations import applied_versions, available_migrations, migrate


async def test_migrations_are_recorded_and_running_them_again_is_a_no_op(connection):
    # The template was migrated already: nothing is pending.
    assert await migrate(connection) == []
    assert await applied_versions(connection) == {m.version for m in available_migrations()}


async def test_every_table_carries_org_id_and_every_key_leads_with_it(connection):
    tables = await connection.fetch(
        """
        SELECT c.relname, (SELECT a.attname FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum = i.indkey[0]) AS first_key_column
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          -- deployment-wide tables, small enough to copy to every shard
          AND c.relname NOT IN ('schema_migrations', 'trusted_documents')
        """
    )
    assert {t["relname"] for t in tables} >= {
        "orgs",
        "programs",
        "customers",
        "customer_identifiers",
        "fleets",
        "balances",
        "api_keys",
        "persisted_queries",
    }
    for table in tables:
        assert table["first_key_column"] == "org_id", table["relname"]
