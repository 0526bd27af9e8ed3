import { readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Migration 0023 replaces the audit log's operation check (0001's
 * `audit_log_operation_check`) by the same condition in a cheaper form
 * (`audit_log_operation_known`). The check must hold on every path: migrate adding it, or
 * keeping the one the README's upgrade note has the operator add first.
 */

const config = parseConfig({ tables: [{ table: 'items' }] });
const MIGRATION = '0023-audit-log-operation-known';
const OPERATIONS = ['SNAPSHOT', 'INSERT', 'UPDATE', 'DELETE'];

/** The README's statements for 0023, with the default audit schema. */
function readmeStatements(): string[] {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)]
    .map((match) => match[1]!)
    .find((sql) => sql.includes('ADD CONSTRAINT audit_log_operation_known'));
  if (block === undefined) throw new Error('README has no block adding audit_log_operation_known');
  return block
    .split(';')
    .map((statement) => statement.trim())
    .filter(Boolean);
}

/** The audit log's check constraints, name and definition. */
async function checks(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ line: string }>(
      `SELECT format('%s %s', conname, pg_get_constraintdef(oid)) AS line FROM pg_constraint
        WHERE conrelid = 'audit.audit_log'::regclass AND contype = 'c' ORDER BY 1`,
    );
    return rows.map((row) => row.line);
  });
}

/** The oid of the audit log's `audit_log_operation_known`. */
async function constraintOid(url: string): Promise<number | undefined> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ oid: number }>(
      `SELECT oid::int AS oid FROM pg_constraint
        WHERE conrelid = 'audit.audit_log'::regclass AND conname = 'audit_log_operation_known'`,
    );
    return rows[0]?.oid;
  });
}

/** Inserts one audit row with `operation` (rolled back); the error if refused. */
async function insertOperation(client: pg.Client, operation: string): Promise<unknown> {
  await client.query('BEGIN');
  try {
    await client.query(
      `INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp)
       VALUES ('public', 'items', '{"id": 1}', $1, now())`,
      [operation],
    );
    return null;
  } catch (error) {
    return error;
  } finally {
    await client.query('ROLLBACK');
  }
}

describe('migration 0023: the audit log operation check', () => {
  let sourceUrl: string;
  let freshChecks: string[];

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('opsrc');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const freshUrl = await createTestDatabase('opfresh');
    await migrateTarget({ config, sourceUrl, targetUrl: freshUrl });
    freshChecks = await checks(freshUrl);
  });

  /** A target as the kit before 0023 left it: 0001's check, 0023 not recorded. */
  async function targetBeforeMigration(): Promise<string> {
    const targetUrl = await createTestDatabase('optgt');
    await migrateTarget({ config, sourceUrl, targetUrl });
    await withClient(targetUrl, (client) =>
      client.query(
        `ALTER TABLE audit.audit_log DROP CONSTRAINT audit_log_operation_known,
           ADD CONSTRAINT audit_log_operation_check
           CHECK (operation IN ('SNAPSHOT', 'INSERT', 'UPDATE', 'DELETE'));
         DELETE FROM audit.kysely_migration WHERE name = '${MIGRATION}'`,
      ),
    );
    return targetUrl;
  }

  it('a fresh install has the one check, which refuses any other operation', async () => {
    expect(freshChecks).toEqual([
      "audit_log_operation_known CHECK ((operation = ANY ('{SNAPSHOT,INSERT,UPDATE,DELETE}'::text[])))",
    ]);
    const freshUrl = await createTestDatabase('opfresh2');
    await migrateTarget({ config, sourceUrl, targetUrl: freshUrl });
    await withClient(freshUrl, async (client) => {
      for (const operation of OPERATIONS) {
        expect(await insertOperation(client, operation)).toBeNull();
      }
      for (const operation of ['MERGE', 'insert', 'INSERT ', '']) {
        expect(await insertOperation(client, operation)).toMatchObject({
          code: '23514',
          constraint: 'audit_log_operation_known',
        });
      }
    });
  });

  it('migrate replaces 0001 check on an install without the new one', async () => {
    const targetUrl = await targetBeforeMigration();
    expect(await checks(targetUrl)).toEqual([
      "audit_log_operation_check CHECK ((operation = ANY (ARRAY['SNAPSHOT'::text, 'INSERT'::text, 'UPDATE'::text, 'DELETE'::text])))",
    ]);
    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual([MIGRATION]);
    expect(await checks(targetUrl)).toEqual(freshChecks);
  });

  it("keeps the check the README's statements added before migrate", async () => {
    const targetUrl = await targetBeforeMigration();
    await withClient(targetUrl, async (client) => {
      for (const statement of readmeStatements()) await client.query(statement);
    });
    const added = await constraintOid(targetUrl);
    const report = await migrateTarget({ config, sourceUrl, targetUrl });
    expect(report.applied).toEqual([MIGRATION]);
    expect(await checks(targetUrl)).toEqual(freshChecks);
    // The same constraint, not a second one added in its place.
    expect(await constraintOid(targetUrl)).toBe(added);
  });

  it('validates the check when only the first README statement ran', async () => {
    const targetUrl = await targetBeforeMigration();
    await withClient(targetUrl, (client) => client.query(readmeStatements()[0]!));
    expect(await checks(targetUrl)).toContain(
      "audit_log_operation_known CHECK ((operation = ANY ('{SNAPSHOT,INSERT,UPDATE,DELETE}'::text[]))) NOT VALID",
    );
    await migrateTarget({ config, sourceUrl, targetUrl });
    expect(await checks(targetUrl)).toEqual(freshChecks);
  });

  it('refuses a constraint of that name with another definition', async () => {
    const targetUrl = await targetBeforeMigration();
    await withClient(targetUrl, (client) =>
      client.query(
        `ALTER TABLE audit.audit_log ADD CONSTRAINT audit_log_operation_known CHECK (operation <> '')`,
      ),
    );
    await expect(migrateTarget({ config, sourceUrl, targetUrl })).rejects.toThrow(
      /audit_log_operation_known that is not the kit's/,
    );
    const recorded = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT 1 FROM audit.kysely_migration WHERE name = '${MIGRATION}'`,
      );
      return rows.length;
    });
    expect(recorded).toBe(0);
  });
});
