import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The audit schema, the append-only audit log and the registry of audited tables.
 * (Release 0.1.0 also ran `triggers/*.sql` here; functions are now installed after the
 * versioned migrations, whenever their checksum changes: see `src/migrate/sql-files.ts`.)
 */
export function auditLogMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.createSchema(auditSchema).ifNotExists().execute();
      await createAuditLog(db, auditSchema);
      await createAuditedTableRegistry(db, auditSchema);
    },
  };
}

async function createAuditLog(db: Kysely<unknown>, auditSchema: string): Promise<void> {
  const schema = db.schema.withSchema(auditSchema);
  await schema
    .createTable('audit_log')
    .addColumn('id', 'bigint', (col) => col.generatedAlwaysAsIdentity().primaryKey())
    .addColumn('source_schema', 'text', (col) => col.notNull())
    .addColumn('source_table', 'text', (col) => col.notNull())
    .addColumn('row_key', 'jsonb', (col) => col.notNull())
    .addColumn('operation', 'text', (col) =>
      col.notNull().check(sql`operation IN ('SNAPSHOT', 'INSERT', 'UPDATE', 'DELETE')`),
    )
    .addColumn('commit_timestamp', sql`timestamptz(6)`, (col) => col.notNull())
    .addColumn('change_seq', sql`varchar(35)`)
    .addColumn('transaction_id', 'text')
    .addColumn('stream_position', 'text')
    .addColumn('old_row', 'jsonb')
    .addColumn('new_row', 'jsonb')
    .addColumn('changed_columns', sql`text[]`)
    // When the change was applied on the target (not the source commit time).
    .addColumn('recorded_at', sql`timestamptz(6)`, (col) =>
      col.notNull().defaultTo(sql`clock_timestamp()`),
    )
    // Idempotence: DMS re-applies changes after a restart; one change, one row (a key
    // change is two: DELETE under the old key, UPDATE under the new one). Full-load rows
    // have no change sequence (NULLs never conflict).
    .addUniqueConstraint('audit_log_change_key', [
      'source_schema',
      'source_table',
      'change_seq',
      'operation',
    ])
    .execute();
  // history(key) and asOf(key, t): one index range per key, already in history order
  // (commit time, then change sequence with full-load rows first, then apply order).
  await sql`CREATE INDEX audit_log_key_history_idx ON ${sql.id(auditSchema, 'audit_log')}
    (source_schema, source_table, row_key, commit_timestamp, change_seq NULLS FIRST, id)`.execute(
    db,
  );
  // changesBetween(table, from, to): rows arrive in commit order, so a BRIN index
  // serves time ranges at a fraction of a btree's size and insert cost.
  await sql`CREATE INDEX audit_log_commit_time_idx ON ${sql.id(auditSchema, 'audit_log')}
    USING brin (commit_timestamp)`.execute(db);
  // transaction(txid).
  await schema
    .createIndex('audit_log_transaction_idx')
    .on('audit_log')
    .column('transaction_id')
    .execute();
  await sql`REVOKE ALL ON ${sql.id(auditSchema, 'audit_log')} FROM PUBLIC`.execute(db);
  await sql`COMMENT ON TABLE ${sql.id(auditSchema, 'audit_log')} IS ${sql.lit(
    'Append-only change history written by the staging triggers. Only the owner may delete, for retention.',
  )}`.execute(db);
}

async function createAuditedTableRegistry(db: Kysely<unknown>, auditSchema: string): Promise<void> {
  await db.schema
    .withSchema(auditSchema)
    .createTable('audited_table')
    .addColumn('source_schema', 'text', (col) => col.notNull())
    .addColumn('source_table', 'text', (col) => col.notNull())
    .addColumn('staging_table', sql`regclass`, (col) => col.notNull())
    .addColumn('key_columns', sql`text[]`, (col) => col.notNull())
    .addColumn('ignore_columns', sql`text[]`, (col) => col.notNull())
    // numeric and bigint columns: the history API reads them back as strings.
    .addColumn('exact_number_columns', sql`text[]`, (col) => col.notNull())
    .addColumn('installed_at', sql`timestamptz(6)`, (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('audited_table_pkey', ['source_schema', 'source_table'])
    .execute();
}
