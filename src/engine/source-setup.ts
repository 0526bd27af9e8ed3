import { AuditTrailError } from '../errors';
import type pg from 'pg';
import type { AuditedTableConfig } from '../config';
import { unpublishableReasons } from '../migrate/publishable';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
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
    await source.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET TABLE ${tableList}`);
    await source.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET (${PUBLICATION_OPTIONS})`);
  } else {
    await source.query(
      `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList} ` +
        `WITH (${PUBLICATION_OPTIONS})`,
    );
  }
}

const PUBLICATION_OPTIONS =
  "publish = 'insert, update, delete, truncate', publish_via_partition_root = true";

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
