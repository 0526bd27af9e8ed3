import { sql, type Kysely, type Transaction } from 'kysely';
import { LOADED_TABLE_TABLE, POSITION_TABLE } from '../engine/position-store';
import { SCHEMA_CHANGE_POSITION_TABLE } from '../engine/schema-change-positions';
import { LOADED_PARTITION_TABLE } from '../engine/partition-loading';
import { PARTITION_CHANGE_TABLE } from '../engine/partition-changes';
import { RELOAD_BASELINE_TABLE } from '../staging/reload-baseline';
import { quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';
import type { KitRoles } from './roles';
import {
  ENGINE_GRANTS,
  FINISH_RELOAD,
  engineGrantStatement,
  type EngineGrant,
  type EngineGrantNames,
} from './engine-grants';
import { AuditTrailError } from '../errors';

/**
 * The SECURITY DEFINER capture functions: owned by the capture role. `seal_at_commit`
 * seals the chain at the commit of every transaction that captured (triggers/trust.sql).
 */
export const CAPTURE_FUNCTIONS = ['capture_insert', 'capture_update', 'seal_at_commit'] as const;

/**
 * SECURITY DEFINER functions the capture role owns that are not triggers: `finish_reload`
 * ends the reload of a table added back to the config (#17 item 19) with DELETE versions,
 * called by the local engine or `reload finish` (writer), the capture triggers, or the
 * operator (owner).
 */
export const RELOAD_FUNCTIONS = [FINISH_RELOAD] as const;

/** What readers may call besides SELECT (the history API's helpers; row_key_of calls key_of, which calls key_value). */
export const HISTORY_FUNCTIONS = ['exact_row', 'row_key_of', 'key_of', 'key_value'] as const;

/** Retention: owner only (name and argument types). */
export const OWNER_ONLY_FUNCTIONS = [
  'prune_audit_log(timestamptz)',
  'prune_audit_log_committed_before(timestamptz)',
  'prune_audit_log_through(bigint)',
] as const;

/** Prefix of the statement-level guard triggers on every kit table. */
export const GUARD_TRIGGER_PREFIX = 'kit_guard';

/** A trigger on a kit table running a function from outside the audit schema. */
export interface ForeignTrigger {
  readonly table: string;
  readonly trigger: string;
  readonly function: string;
}

/** Thrown when a kit table carries a foreign trigger: migrate would run its code. */
export class ForeignTriggerError extends AuditTrailError {
  override readonly name = 'ForeignTriggerError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'FOREIGN_TRIGGER', kind: 'finding', ...options });
  }
}

/**
 * Triggers on the audit schema's kit tables (not staging tables) whose function lives
 * outside the audit schema. Only the owner can create functions in the audit schema,
 * and EXECUTE on kit functions is revoked from PUBLIC, so a role holding only the
 * TRIGGER privilege can attach nothing but such a foreign function.
 */
export async function foreignTriggers(
  db: Kysely<unknown> | Transaction<unknown>,
  auditSchema: string,
): Promise<ForeignTrigger[]> {
  const { rows } = await sql<ForeignTrigger>`
    SELECT c.relname AS "table", t.tgname AS trigger,
      -- Always schema-qualified (regprocedure text depends on the session's search_path).
      pg_catalog.format('%I.%I(%s)', pn.nspname, p.proname,
        pg_catalog.pg_get_function_identity_arguments(p.oid)) AS function
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE n.nspname = ${auditSchema} AND NOT t.tgisinternal AND p.pronamespace <> n.oid
    ORDER BY 1, 2`.execute(db);
  return rows;
}

/**
 * One line naming a foreign trigger, its table and the function it runs; names are
 * quoted, so a hostile trigger name cannot forge the rest of the line.
 */
export function describeForeignTrigger(found: ForeignTrigger, auditSchema: string): string {
  return `${quoteIdent(found.trigger)} on ${quoteQualified(auditSchema, found.table)} runs ${found.function}`;
}

/** Refuses to go on while a foreign trigger sits on an audit-schema table. */
export async function refuseForeignTriggers(
  db: Kysely<unknown>,
  auditSchema: string,
): Promise<void> {
  const found = await foreignTriggers(db, auditSchema);
  if (found.length === 0) return;
  const drops = found
    .map((t) => `DROP TRIGGER ${quoteIdent(t.trigger)} ON ${quoteQualified(auditSchema, t.table)};`)
    .join('\n');
  throw new ForeignTriggerError(
    `refusing to migrate: ${found.length} trigger(s) on audit-schema tables run code from outside the kit (${found
      .map((t) => describeForeignTrigger(t, auditSchema))
      .join(
        '; ',
      )}); migrate would run it with the migrating login's rights. Review and drop:\n${drops}`,
  );
}

/**
 * Puts every kit object in the hands of the kit's roles and nothing else: ownership
 * (owner; capture functions to the capture role), no PUBLIC privileges, each role's
 * grants, and a statement guard on every kit table that refuses writes from any other
 * role whatever was granted. Idempotent; run at the end of every migrate.
 */
export async function secureInstall(
  trx: Transaction<unknown>,
  auditSchema: string,
  roles: KitRoles,
): Promise<void> {
  const schema = quoteIdent(auditSchema);
  const owner = quoteIdent(roles.owner);
  const run = (text: string) => sql.raw(text).execute(trx);
  await run(`ALTER SCHEMA ${schema} OWNER TO ${owner}`);
  const tables = await schemaTables(trx, auditSchema);
  for (const table of tables) {
    if (table.owner !== roles.owner)
      await run(`ALTER TABLE ${quoteQualified(auditSchema, table.name)} OWNER TO ${owner}`);
  }
  await handFunctions(trx, auditSchema, roles);
  await run(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM PUBLIC;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ${schema} FROM PUBLIC;
    ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ${schema} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC`);
  await grantRoles(trx, auditSchema, roles, tables);
  for (const table of tables.filter((t) => !t.staging))
    await guardKitTable(trx, auditSchema, table.name, roles);
  await enableKitTriggersAlways(trx, auditSchema);
  // Only the capture role's definer functions insert audit rows; the owner creates the
  // capture triggers on staging tables, which needs EXECUTE.
  await run(
    `GRANT EXECUTE ON FUNCTION ${CAPTURE_FUNCTIONS.map((f) => `${schema}.${f}()`).join(', ')} TO ${owner}`,
  );
}

interface SchemaTable {
  readonly name: string;
  readonly owner: string;
  readonly staging: boolean;
}

async function schemaTables(
  trx: Transaction<unknown>,
  auditSchema: string,
): Promise<SchemaTable[]> {
  const registry = quoteQualified(auditSchema, 'audited_table');
  const { rows } = await sql<SchemaTable>`
    SELECT c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
           c.oid IN (SELECT staging_table FROM ${sql.raw(registry)}) AS staging
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ${auditSchema})
      AND c.relkind IN ('r', 'p')
    ORDER BY 1`.execute(trx);
  return rows;
}

async function handFunctions(
  trx: Transaction<unknown>,
  auditSchema: string,
  roles: KitRoles,
): Promise<void> {
  const { rows } = await sql<{ signature: string; name: string; owner: string }>`
    SELECT p.oid::regprocedure::text AS signature, p.proname AS name,
           pg_catalog.pg_get_userbyid(p.proowner) AS owner
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ${auditSchema})`.execute(
    trx,
  );
  const schema = quoteIdent(auditSchema);
  for (const fn of rows) {
    const wanted =
      (CAPTURE_FUNCTIONS as readonly string[]).includes(fn.name) ||
      RELOAD_FUNCTIONS.some((signature) => signature.startsWith(`${fn.name}(`))
        ? roles.capture
        : roles.owner;
    if (fn.owner === wanted) continue;
    // The new owner needs CREATE on the schema for ALTER ... OWNER; the capture role
    // gets it only for this transaction.
    if (wanted === roles.capture)
      await sql
        .raw(`GRANT CREATE ON SCHEMA ${schema} TO ${quoteIdent(roles.capture)}`)
        .execute(trx);
    await sql.raw(`ALTER FUNCTION ${fn.signature} OWNER TO ${quoteIdent(wanted)}`).execute(trx);
    if (wanted === roles.capture)
      await sql
        .raw(`REVOKE CREATE ON SCHEMA ${schema} FROM ${quoteIdent(roles.capture)}`)
        .execute(trx);
  }
}

async function grantRoles(
  trx: Transaction<unknown>,
  auditSchema: string,
  roles: KitRoles,
  tables: readonly SchemaTable[],
): Promise<void> {
  const q = (name: string) => quoteQualified(auditSchema, name);
  const schema = quoteIdent(auditSchema);
  const [capture, writer, reader] = [roles.capture, roles.writer, roles.reader].map(quoteIdent);
  const staging = tables.filter((t) => t.staging).map((t) => t.name);
  const names: EngineGrantNames = {
    staging,
    sequence: await serialSequences(trx, auditSchema, ENGINE_GRANTS),
  };
  const statements = [
    `GRANT USAGE ON SCHEMA ${schema} TO ${capture}, ${reader}`,
    // capture: append audit rows and chain blocks; read what it seals and the registry.
    `GRANT SELECT, INSERT ON ${q('audit_log')}, ${q('audit_chain')} TO ${capture}`,
    `GRANT SELECT ON ${q('audited_table')} TO ${capture}`,
    // capture: hold reload rows against the prior baseline (adding the keys new to the
    // table), and end the reload.
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ${q(RELOAD_BASELINE_TABLE)} TO ${capture}`,
    `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${capture}`,
    `REVOKE EXECUTE ON FUNCTION ${OWNER_ONLY_FUNCTIONS.map((f) => `${schema}.${f}`).join(', ')} FROM ${capture}`,
    `REVOKE EXECUTE ON FUNCTION ${CAPTURE_FUNCTIONS.map((f) => `${schema}.${f}()`).join(', ')} FROM ${capture}`,
    // writer and engine: all the local engine uses (src/trust/engine-grants.ts), the list
    // its permission diagnosis names a revoked privilege from. writer: the schema, staging
    // DML, ending a reload; engine (the local engine's login, beside writer; never DMS's):
    // its bookkeeping, and the ids of the partitions it saw change.
    ...ENGINE_GRANTS.flatMap(
      (grant) => engineGrantStatement(auditSchema, grant, roles[grant.role], names) ?? [],
    ),
    // owner: ending a reload (the operator, for DMS); writer holds it above (the engine,
    // at the end of a reload, or `reload finish` as the DMS login).
    `GRANT EXECUTE ON FUNCTION ${RELOAD_FUNCTIONS.map((f) => `${schema}.${f}`).join(', ')} TO ${quoteIdent(roles.owner)}`,
    // writer (\`reload finish\` as the DMS login) and reader (verify): whether a reload is
    // pending and what its load copied. Its rows are audit versions readers already see.
    `GRANT SELECT ON ${q(RELOAD_BASELINE_TABLE)} TO ${writer}, ${reader}`,
    // writer (DMS's login): DELETE on staging besides the engine's DML above. With the
    // grants above, all it holds: the engine's bookkeeping is the engine role's
    // (migration 0027 took it from writer).
    ...(staging.length > 0 ? [`GRANT DELETE ON ${staging.map(q).join(', ')} TO ${writer}`] : []),
    // reader: history.
    `GRANT SELECT ON ${q('audit_log')}, ${q('audited_table')}, ${q('audit_chain')}, ${q('schema_change')}, ${q(SCHEMA_CHANGE_POSITION_TABLE)}, ${q(PARTITION_CHANGE_TABLE)} TO ${reader}`,
    // reader: verify names the partition a row left with (a leaf found detached).
    `GRANT SELECT ON ${q(LOADED_PARTITION_TABLE)} TO ${reader}`,
    // key_of: row_key_of normalises the key with it (an IMMUTABLE invoker's function),
    // each value through key_value (inlined only where the caller may execute it).
    `GRANT EXECUTE ON FUNCTION ${schema}.exact_row(jsonb, text[]), ${schema}.row_key_of(text, text, text[]), ${schema}.key_of(jsonb, text[]), ${schema}.key_value(jsonb) TO ${reader}`,
  ];
  for (const statement of statements) await sql.raw(statement).execute(trx);
}

/**
 * The sequences behind the serial columns `grants` name (`schema_change`'s ids), as the
 * target names them (quoted where needed, qualified).
 */
async function serialSequences(
  trx: Transaction<unknown>,
  auditSchema: string,
  grants: readonly EngineGrant[],
): Promise<EngineGrantNames['sequence']> {
  const found = new Map<string, string>();
  for (const { on } of grants) {
    if (on.kind !== 'sequence') continue;
    const { rows } = await sql<{ sequence: string | null }>`
      SELECT pg_catalog.pg_get_serial_sequence(${quoteQualified(auditSchema, on.table)}, ${on.column}) AS sequence`.execute(
      trx,
    );
    const sequence = rows[0]?.sequence;
    if (!sequence) throw new Error(`${auditSchema}.${on.table}.${on.column} has no sequence`);
    found.set(`${on.table}.${on.column}`, sequence);
  }
  return (table, column) => {
    const sequence = found.get(`${table}.${column}`);
    if (sequence === undefined) throw new Error(`no sequence looked up for ${table}.${column}`);
    return sequence;
  };
}

/** Which roles may run which statements on a kit table (anything else is refused). */
function writersFor(table: string, roles: KitRoles): Record<string, readonly string[]> {
  switch (table) {
    case 'audit_log':
      // UPDATE and TRUNCATE are refused to everyone by append-only.sql.
      return { INSERT: [roles.capture], DELETE: [roles.owner] };
    case 'audit_chain':
      return { INSERT: [roles.capture, roles.owner], 'UPDATE OR DELETE OR TRUNCATE': [] };
    case POSITION_TABLE:
      return {
        'INSERT OR UPDATE OR DELETE': [roles.owner, roles.engine],
        TRUNCATE: [roles.owner],
      };
    case RELOAD_BASELINE_TABLE:
      // migrate (owner) fills it; the capture functions mark it, add the keys a reload
      // copies that it lacks, and empty it.
      return {
        TRUNCATE: [roles.owner],
        'INSERT OR UPDATE OR DELETE': [roles.owner, roles.capture],
      };
    case LOADED_PARTITION_TABLE:
      return {
        'INSERT OR UPDATE': [roles.owner, roles.engine],
        'DELETE OR TRUNCATE': [roles.owner],
      };
    case LOADED_TABLE_TABLE:
    case SCHEMA_CHANGE_POSITION_TABLE:
    case PARTITION_CHANGE_TABLE:
      return { INSERT: [roles.owner, roles.engine], 'UPDATE OR DELETE OR TRUNCATE': [roles.owner] };
    default:
      return { 'INSERT OR UPDATE OR DELETE OR TRUNCATE': [roles.owner] };
  }
}

async function guardKitTable(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: string,
  roles: KitRoles,
): Promise<void> {
  const target = quoteQualified(auditSchema, table);
  const rules = Object.entries(writersFor(table, roles));
  const wanted = rules.map(([events, allowed], index) => ({
    name: `${GUARD_TRIGGER_PREFIX}_${index + 1}`,
    events,
    allowed,
  }));
  const { rows } = await sql<{ name: string; definition: string }>`
    SELECT tgname AS name, pg_catalog.pg_get_triggerdef(oid) AS definition
    FROM pg_catalog.pg_trigger
    WHERE tgrelid = ${target}::regclass AND tgname LIKE ${`${GUARD_TRIGGER_PREFIX}_%`}`.execute(
    trx,
  );
  const current = new Map(rows.map((row) => [row.name, row.definition]));
  for (const trigger of wanted) {
    const create = `CREATE TRIGGER ${quoteIdent(trigger.name)} BEFORE ${trigger.events} ON ${target}
      FOR EACH STATEMENT EXECUTE FUNCTION ${quoteQualified(auditSchema, 'guard_kit_table')}(${trigger.allowed.map(quoteLiteral).join(', ')})`;
    const existing = current.get(trigger.name);
    current.delete(trigger.name);
    if (existing !== undefined && sameTrigger(existing, trigger.events, trigger.allowed)) continue;
    await sql.raw(`DROP TRIGGER IF EXISTS ${quoteIdent(trigger.name)} ON ${target}`).execute(trx);
    await sql.raw(create).execute(trx);
    // ENABLE ALWAYS: session_replication_role = replica must not switch a guard off.
    await sql
      .raw(`ALTER TABLE ${target} ENABLE ALWAYS TRIGGER ${quoteIdent(trigger.name)}`)
      .execute(trx);
  }
  for (const stale of current.keys())
    await sql.raw(`DROP TRIGGER ${quoteIdent(stale)} ON ${target}`).execute(trx);
}

/**
 * Every kit trigger in the audit schema (its function is the kit's) fires in every
 * session_replication_role, as installed: DMS may apply as replica. A trigger left
 * disabled, or switched back with `ENABLE TRIGGER USER` (which fires only at origin), is
 * put back, so the seal at commit, the guards and the capture run for DMS again
 * (verify --integrity names such a trigger on the audit log or the chain: kit-trigger).
 */
async function enableKitTriggersAlways(
  trx: Transaction<unknown>,
  auditSchema: string,
): Promise<void> {
  const { rows } = await sql<{ table_name: string; trigger: string }>`
    SELECT c.relname AS table_name, t.tgname AS trigger
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    WHERE n.nspname = ${auditSchema} AND NOT t.tgisinternal AND p.pronamespace = n.oid
      AND t.tgenabled <> 'A'
    ORDER BY 1, 2`.execute(trx);
  for (const row of rows)
    await sql
      .raw(
        `ALTER TABLE ${quoteQualified(auditSchema, row.table_name)} ENABLE ALWAYS TRIGGER ${quoteIdent(row.trigger)}`,
      )
      .execute(trx);
}

/** pg_get_triggerdef spells events and arguments predictably: compare those parts. */
function sameTrigger(definition: string, events: string, allowed: readonly string[]): boolean {
  return (
    definition.includes(`BEFORE ${events} ON`) &&
    definition.endsWith(`guard_kit_table(${allowed.map(quoteLiteral).join(', ')})`)
  );
}
