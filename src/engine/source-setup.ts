import { AuditTrailError } from '../errors';
import type pg from 'pg';
import type { AuditedTableConfig } from '../config';
import { unpublishableReasons } from '../migrate/publishable';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
import { serverVersionNum } from '../postgres/server-version';
import { parseLsn, type Lsn } from './lsn';

/** The source cannot be replicated as configured; the message says what to change. */
export class SourceSetupError extends AuditTrailError {
  override readonly name = 'SourceSetupError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'SOURCE_SETUP', kind: 'finding', ...options });
  }
}

/**
 * The engine's replication slot is gone (dropped by hand or by `max_slot_wal_keep_size`)
 * after the target applied changes from it: the changes since then are lost, and the
 * engine refuses to carry on as if nothing happened.
 */
export class SlotGoneError extends AuditTrailError {
  override readonly name = 'SlotGoneError';
  constructor(
    readonly slot: string,
    readonly appliedUpTo: string,
    auditSchema: string,
  ) {
    super(
      `replication slot "${slot}" is gone but the target has applied up to ${appliedUpTo}: ` +
        'changes since then are lost',
      {
        code: 'SLOT_GONE',
        kind: 'finding',
        hint: `${reloadSteps(auditSchema)}; raise max_slot_wal_keep_size if the server dropped it`,
      },
    );
  }
}

/**
 * How to reload a target whose history lost changes of its slot: without a position
 * row, the engine's next start re-creates the slot and loads every table again.
 */
export function reloadSteps(auditSchema: string): string {
  return (
    `delete the row for this slot from ${auditSchema}.cdc_engine_position and clear the ` +
    'staging tables to reload'
  );
}

/**
 * Checks the source prerequisites DMS has too: `wal_level=logical`, a primary key on
 * every audited table (without one, deletes and key changes cannot be applied), and
 * that publishing the tables can neither fail nor break the source's writes.
 * @throws SourceSetupError naming the setting or the table.
 */
export async function checkSource(
  source: pg.ClientBase,
  tables: readonly AuditedTableConfig[],
): Promise<void> {
  const { rows } = await source.query<{ wal_level: string }>('SHOW wal_level');
  const walLevel = rows[0]?.wal_level;
  if (walLevel !== 'logical') {
    throw new SourceSetupError(
      `source wal_level is "${walLevel}", but logical replication needs wal_level=logical ` +
        '(self-managed: ALTER SYSTEM SET wal_level = logical and restart; RDS/Aurora: ' +
        'rds.logical_replication=1 in the (cluster) parameter group and reboot)',
    );
  }
  for (const table of tables) {
    const name = `${table.schema}.${table.table}`;
    const found = await source.query<{ oid: string; has_pk: boolean }>(
      `SELECT c.oid::text AS oid,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [table.schema, table.table],
    );
    const row = found.rows[0];
    if (!row) throw new SourceSetupError(`source table "${name}" does not exist`);
    if (!row.has_pk) {
      throw new SourceSetupError(
        `source table "${name}" has no primary key: add one (ALTER TABLE ... ADD PRIMARY KEY) ` +
          'so updates and deletes can be replicated',
      );
    }
  }
  // Before the publication exists: a table it would break is refused, not discovered
  // through the application's failing UPDATEs.
  const reasons = await unpublishableReasons(
    async <Row>(text: string, values: readonly unknown[]) =>
      (await source.query(text, [...values])).rows as Row[],
    tables,
  );
  if (reasons.length > 0) throw new SourceSetupError(`cannot replicate: ${reasons.join('; ')}`);
}

/**
 * Creates the publication for exactly the audited tables, or resets an existing one
 * to exactly those tables (idempotent). Changes of a partition are published under the
 * audited partitioned table (`publish_via_partition_root`), as staging mirrors it.
 * @throws {@link PublicationNarrowedError} when the existing one was narrowed.
 */
export async function ensurePublication(
  source: pg.ClientBase,
  publication: string,
  tables: readonly AuditedTableConfig[],
): Promise<void> {
  const tableList = tables.map((table) => quoteQualified(table.schema, table.table)).join(', ');
  const { rowCount } = await source.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [
    publication,
  ]);
  if (rowCount) {
    // Resetting a narrowed publication would hide that changes were never sent.
    const problems = await publicationNarrowing(source, publication);
    if (problems.length > 0) throw new PublicationNarrowedError(publication, problems, tables);
    await source
      .query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tableList}`)
      .catch((error: unknown) => refusePublicationPrivilege(source, 'reset', tables, error));
    await source.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET (${PUBLICATION_OPTIONS})`);
  } else {
    await source
      .query(
        `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList} ` +
          `WITH (${PUBLICATION_OPTIONS})`,
      )
      .catch((error: unknown) => refusePublicationPrivilege(source, 'create', tables, error));
  }
}

/**
 * A permission error (42501) creating or resetting the publication: PostgreSQL allows
 * `CREATE PUBLICATION` only with CREATE on the database, and a publication `FOR TABLE`
 * (created or set) only to a member of each table's owner. Thrown as
 * `SOURCE_PRIVILEGE_MISSING` (exit 2) naming both needs, the tables' owners the login is
 * not a member of, and the server's words; any other error as it was.
 */
async function refusePublicationPrivilege(
  source: pg.ClientBase,
  action: 'create' | 'reset',
  tables: readonly AuditedTableConfig[],
  error: unknown,
): Promise<never> {
  if ((error as { code?: unknown }).code !== '42501') throw error;
  const login = await source.query<{ login: string; database: string; create: boolean }>(
    `SELECT current_user::text AS login, pg_catalog.current_database()::text AS database,
            pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS create`,
  );
  const { login: name, database, create } = login.rows[0]!;
  // Multi-array unnest is expanded by the parser to pg_catalog.unnest per array.
  const owners = await source.query<{ owner: string; schema: string; name: string }>(
    `SELECT pg_catalog.pg_get_userbyid(c.relowner)::text AS owner, u.s AS schema, u.t AS name
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(s, t, ord)
       JOIN pg_catalog.pg_namespace AS n ON n.nspname OPERATOR(pg_catalog.=) u.s
       JOIN pg_catalog.pg_class AS c
         ON c.relnamespace OPERATOR(pg_catalog.=) n.oid AND c.relname OPERATOR(pg_catalog.=) u.t
      WHERE NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')
      ORDER BY u.ord`,
    [tables.map((table) => table.schema), tables.map((table) => table.table)],
  );
  const notOwned = owners.rows
    .map((row) => `${quoteQualified(row.schema, row.name)} by ${row.owner}`)
    .join(', ');
  throw new AuditTrailError(
    `the engine's source login ${name} may not ${action} its publication ` +
      `(${(error as Error).message}): it needs CREATE on the source database and ownership ` +
      'of every audited table (membership in its owner role), as PostgreSQL requires of a ' +
      'publication FOR TABLE; nothing was applied',
    {
      code: 'SOURCE_PRIVILEGE_MISSING',
      kind: 'usage',
      hint:
        "as the source's administrator " +
        [
          ...(create
            ? []
            : [`run GRANT CREATE ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(name)}`]),
          ...(notOwned === ''
            ? []
            : [
                `make each audited table owned by a role ${name} is a member of (now ` +
                  `${notOwned}): GRANT that role TO ${quoteIdent(name)}, or ALTER TABLE ... OWNER ` +
                  'TO one it is (a superuser-owned table needs another owner first)',
              ]),
        ].join(', and '),
      cause: error,
    },
  );
}

const PUBLICATION_OPTIONS =
  "publish = 'insert, update, delete, truncate', publish_via_partition_root = true";

/** The operations the engine's publication must publish: every change of its tables. */
const PUBLISHED_OPERATIONS = ['insert', 'update', 'delete', 'truncate'] as const;

/**
 * How the existing publication `publication` publishes less than every change of its
 * tables: a row filter or a column list (PostgreSQL 15+), or an operation left out. Empty
 * when it publishes everything, or does not exist.
 *
 * Whoever owns the publication (the engine's source login, or a superuser) can narrow it
 * while the engine is stopped. pgoutput decodes each change with the publication as it was
 * when the change was written, so what was filtered meanwhile is never sent: resetting the
 * publication at the next start cannot bring it back, and history would lack it silently.
 */
export async function publicationNarrowing(
  source: pg.ClientBase,
  publication: string,
): Promise<string[]> {
  const { rows } = await source.query<
    Record<`pub${(typeof PUBLISHED_OPERATIONS)[number]}`, boolean>
  >(
    `SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_catalog.pg_publication
      WHERE pubname OPERATOR(pg_catalog.=) $1`,
    [publication],
  );
  const flags = rows[0];
  if (flags === undefined) return [];
  const problems: string[] = [];
  const left = PUBLISHED_OPERATIONS.filter((operation) => !flags[`pub${operation}`]);
  if (left.length > 0) problems.push(`it does not publish ${left.join(', ')}`);
  for (const table of await narrowedTables(source, publication)) {
    const name = quoteQualified(table.schema, table.name);
    if (table.filtered) problems.push(`${name} has a row filter`);
    if (table.column_list) problems.push(`${name} has a column list`);
  }
  return problems;
}

/** Tables of the publication with a row filter or a column list (PostgreSQL 15+ only). */
async function narrowedTables(
  source: pg.ClientBase,
  publication: string,
): Promise<{ schema: string; name: string; filtered: boolean; column_list: boolean }[]> {
  if ((await serverVersionNum(source)) < 150000) return [];
  return (
    await source.query<{ schema: string; name: string; filtered: boolean; column_list: boolean }>(
      `SELECT n.nspname AS schema, c.relname AS name,
              pr.prqual IS NOT NULL AS filtered, pr.prattrs IS NOT NULL AS column_list
         FROM pg_catalog.pg_publication_rel AS pr
         JOIN pg_catalog.pg_publication AS p ON p.oid OPERATOR(pg_catalog.=) pr.prpubid
         JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) pr.prrelid
         JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE p.pubname OPERATOR(pg_catalog.=) $1
          AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL)
        ORDER BY n.nspname, c.relname`,
      [publication],
    )
  ).rows;
}

/**
 * The engine's publication publishes less than every change
 * ({@link publicationNarrowing}): changes made since it was narrowed were never sent.
 */
export class PublicationNarrowedError extends AuditTrailError {
  override readonly name = 'PublicationNarrowedError';
  constructor(
    readonly publication: string,
    readonly problems: readonly string[],
    tables: readonly Pick<AuditedTableConfig, 'schema' | 'table'>[],
  ) {
    const tableList = tables.map((table) => quoteQualified(table.schema, table.table)).join(', ');
    super(
      `publication "${publication}" on the source publishes less than every change: ` +
        `${problems.join('; ')}. Changes written while it was so were never sent to the ` +
        'engine and are missing from history; nothing was applied',
      {
        code: 'PUBLICATION_NARROWED',
        kind: 'finding',
        hint:
          `find who changed it (the source's pgAudit log: ALTER PUBLICATION), put it back ` +
          `(ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tableList}; ` +
          `ALTER PUBLICATION ${quoteIdent(publication)} SET (${PUBLICATION_OPTIONS})) and ` +
          'start the engine; then run audit-trail verify: the rows it reports are the missed ' +
          'changes that still matter, which a reload of their tables repairs (the versions ' +
          'between are lost)',
      },
    );
  }
}

/**
 * How far a replication slot was confirmed (`confirmed_flush_lsn`), or `undefined` when
 * there is no such slot.
 */
export async function slotConfirmedFlush(
  source: pg.ClientBase,
  slot: string,
): Promise<Lsn | undefined> {
  const { rows } = await source.query<{ lsn: string | null }>(
    'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  if (rows.length === 0) return undefined;
  return parseLsn(rows[0]!.lsn ?? '0/0');
}

/**
 * Drops a replication slot if it exists. A slot still held by a dead engine's
 * walsender is released once the server notices; its backend is terminated first.
 */
export async function dropSlotIfExists(source: pg.ClientBase, slot: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { rows } = await source.query<{ active_pid: number | null }>(
      'SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    const row = rows[0];
    if (!row) return;
    if (row.active_pid === null) {
      try {
        // Qualified: an untyped parameter prefers a lookalike's text argument in public
        // over pg_catalog's name (test/engine/source-planted-functions).
        await source.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [slot]);
        return;
      } catch (error) {
        if (!/is active|does not exist/.test((error as Error).message)) throw error;
      }
    } else {
      await source.query('SELECT pg_catalog.pg_terminate_backend($1)', [row.active_pid]);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`replication slot "${slot}" stays active; stop the process that uses it`);
}
