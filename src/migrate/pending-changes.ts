/**
 * Guard for the order of a schema change: the source is altered, the pipeline applies
 * every change committed before the ALTER, and only then does `migrate` give staging the
 * new shape. Run too early, staging already has the new shape when older changes arrive
 * (a column it no longer has, a type it no longer is) and the pipeline stops with no
 * `migrate` that could undo it. Before applying a schema change, `migrate` therefore asks
 * the source's logical replication slots whether changes of the old shape are pending.
 */
import { decodePgOutput, type RelationMessage } from '../engine/pgoutput';
import { quoteIdent } from '../postgres/identifiers';
import type { QueryRunner } from './publishable';

/** The audited tables whose staging table is about to change shape. */
export interface ChangingTable {
  readonly schema: string;
  readonly table: string;
  /** Leaf partitions (test_decoding reports changes under their names). */
  readonly partitions?: readonly string[];
}

/** Options for {@link oldShapeChangesPending}. */
export interface PendingChangesOptions {
  /**
   * How long to wait for a slot in use (a running engine or DMS task) to confirm the
   * source's current WAL position. An idle consumer confirms on the server's keepalive,
   * which comes every `wal_sender_timeout / 2`.
   */
  readonly timeoutMs: number;
  /** Poll interval while waiting. @default 250 */
  readonly pollMs?: number;
  /**
   * Per slot, the position its consumer has applied on the target, when it records one
   * (the engine's `cdc_engine_position`): the slot confirms only after the target commit,
   * so changes before it may still be in the slot yet are applied.
   */
  readonly appliedUpTo?: ReadonlyMap<string, string>;
}

/** An LSN `X/Y` as a number, for comparisons. */
function lsnValue(lsn: string): bigint {
  const [high = '0', low = '0'] = lsn.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

interface SlotRow {
  slot_name: string;
  plugin: string;
  active: boolean;
  confirmed: string | null;
}

const SLOTS_SQL = `
  SELECT slot_name::text, plugin::text, active, confirmed_flush_lsn::text AS confirmed
    FROM pg_catalog.pg_replication_slots
   WHERE slot_type = 'logical' AND database = current_database()
     AND plugin IN ('pgoutput', 'test_decoding')
   ORDER BY slot_name`;

const CURRENT_LSN_SQL = `SELECT pg_catalog.pg_current_wal_insert_lsn()::text AS lsn`;

const FLUSHED_SQL = `SELECT pg_catalog.pg_current_wal_flush_lsn() >= $1::pg_lsn AS reached`;

const LSN_REACHED_SQL = `SELECT $1::pg_lsn >= $2::pg_lsn AS reached`;

/** Publications that publish an audited table (the engine's among them). */
const PUBLICATIONS_SQL = `
  SELECT DISTINCT pubname::text FROM pg_catalog.pg_publication_tables
   WHERE (schemaname, tablename) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])))
   ORDER BY 1`;

/** A relation's published columns now, as pgoutput would describe them. */
const CURRENT_COLUMNS_SQL = `
  SELECT attname::text AS name, atttypid::int AS type_oid, atttypmod AS typmod
    FROM pg_catalog.pg_attribute
   WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
   ORDER BY attnum`;

/**
 * All current columns of a table named in test_decoding output, each with its type as
 * test_decoding prints it (format_type without the modifier; qualified by the same
 * search_path, since SQL decoding runs in this session).
 */
const CURRENT_NAMES_SQL = `
  SELECT attname::text AS name, pg_catalog.format_type(atttypid, NULL) AS type
    FROM pg_catalog.pg_attribute
   WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))
     AND attnum > 0 AND NOT attisdropped`;

/**
 * Why `migrate` must not change staging yet: a slot on the source still holds changes
 * of a changing table in its old shape, or a slot in use has not confirmed the source's
 * current position within the timeout. Empty when it is safe.
 *
 * - A slot not in use is peeked (nothing is consumed): a pgoutput slot through the
 *   publications that publish the audited tables, each pending INSERT or UPDATE
 *   checked against the relation's current columns (every column it carries must still
 *   exist with that name, type and type modifier; a column added since is fine: the
 *   change is applied with it NULL); a test_decoding slot (AWS DMS) by column name and
 *   type as test_decoding prints it (without the type modifier).
 * - A slot in use (an engine or DMS task running) cannot be peeked: it must confirm the
 *   position the source had when this check began, which it does once everything
 *   committed before has been applied.
 *
 * @example
 * const problems = await oldShapeChangesPending(run, [{ schema: 'public', table: 'items' }], { timeoutMs: 60_000 });
 */
export async function oldShapeChangesPending(
  run: QueryRunner,
  tables: readonly ChangingTable[],
  options: PendingChangesOptions,
): Promise<string[]> {
  if (tables.length === 0) return [];
  const [{ lsn: startLsn } = { lsn: '0/0' }] = await run<{ lsn: string }>(CURRENT_LSN_SQL, []);
  const deadline = Date.now() + options.timeoutMs;
  // Decoding reads flushed WAL only; with synchronous_commit off a commit may not be
  // flushed yet (the WAL writer does within wal_writer_delay): wait for it.
  for (;;) {
    const [flushed] = await run<{ reached: boolean }>(FLUSHED_SQL, [startLsn]);
    if (flushed?.reached || Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const problems: string[] = [];
  for (const first of await run<SlotRow>(SLOTS_SQL, [])) {
    let slot: SlotRow | undefined = first;
    for (;;) {
      const applied = options.appliedUpTo?.get(slot.slot_name);
      if (!slot.active) {
        problems.push(...(await peekOldShape(run, slot, tables, applied)));
        break;
      }
      const [reached] = await run<{ reached: boolean }>(LSN_REACHED_SQL, [
        slot.confirmed ?? '0/0',
        startLsn,
      ]);
      if (reached?.reached) break;
      if (applied !== undefined && lsnValue(applied) >= lsnValue(startLsn)) break;
      if (Date.now() >= deadline) {
        problems.push(
          `replication slot ${slot.slot_name} is in use and has confirmed only up to ` +
            `${slot.confirmed ?? 'nothing'}, the source was at ${startLsn}: its consumer (the engine ` +
            'or a DMS task) may still have changes from before the schema change to apply',
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
      slot = (await run<SlotRow>(SLOTS_SQL, [])).find((s) => s.slot_name === first.slot_name);
      if (slot === undefined) break;
    }
  }
  return problems;
}

async function peekOldShape(
  run: QueryRunner,
  slot: SlotRow,
  tables: readonly ChangingTable[],
  applied: string | undefined,
): Promise<string[]> {
  const from = applied === undefined ? 0n : lsnValue(applied);
  const stale =
    slot.plugin === 'pgoutput'
      ? await peekPgOutput(run, slot.slot_name, tables, from)
      : await peekTestDecoding(run, slot.slot_name, tables, from);
  return [...stale.entries()].map(
    ([table, { count, lsn }]) =>
      `replication slot ${slot.slot_name} has ${count} change(s) of ${table} made before its ` +
      `schema change and not yet applied (the first at ${lsn})`,
  );
}

type Stale = Map<string, { count: number; lsn: string }>;

function noteStale(stale: Stale, table: string, lsn: string): void {
  const seen = stale.get(table);
  stale.set(table, { count: (seen?.count ?? 0) + 1, lsn: seen?.lsn ?? lsn });
}

async function peekPgOutput(
  run: QueryRunner,
  slotName: string,
  tables: readonly ChangingTable[],
  from: bigint,
): Promise<Stale> {
  const publications = await run<{ pubname: string }>(PUBLICATIONS_SQL, [
    tables.map((t) => t.schema),
    tables.map((t) => t.table),
  ]);
  const stale: Stale = new Map();
  if (publications.length === 0) return stale;
  const rows = await run<{ lsn: string; data: Buffer }>(
    `SELECT lsn::text, data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, NULL,
       'proto_version', '1', 'publication_names', $2)`,
    [slotName, publications.map((p) => quoteIdent(p.pubname)).join(',')],
  );
  const changing = new Set(tables.map((t) => `${t.schema}.${t.table}`));
  const relations = new Map<number, RelationMessage>();
  const currentShape = new Map<number, Set<string>>();
  for (const row of rows) {
    const message = decodePgOutput(row.data);
    if (message.tag === 'relation') {
      relations.set(message.relationId, message);
      continue;
    }
    if (message.tag !== 'insert' && message.tag !== 'update') continue;
    if (lsnValue(row.lsn) < from) continue;
    const relation = relations.get(message.relationId);
    if (relation === undefined) continue;
    const name = `${relation.schema}.${relation.table}`;
    if (!changing.has(name)) continue;
    if (!currentShape.has(relation.relationId)) {
      const columns = await run<{ name: string; type_oid: number; typmod: number }>(
        CURRENT_COLUMNS_SQL,
        [relation.relationId],
      );
      currentShape.set(
        relation.relationId,
        new Set(columns.map((c) => JSON.stringify([c.name, c.type_oid, c.typmod]))),
      );
    }
    // A column added since is harmless (the change is applied with it NULL); a column the
    // table no longer has under that name and type is not.
    const now = currentShape.get(relation.relationId)!;
    const fits = relation.columns.every((c) =>
      now.has(JSON.stringify([c.name, c.typeOid, c.typeModifier])),
    );
    if (!fits) noteStale(stale, name, row.lsn);
  }
  return stale;
}

async function peekTestDecoding(
  run: QueryRunner,
  slotName: string,
  tables: readonly ChangingTable[],
  from: bigint,
): Promise<Stale> {
  const owner = new Map<string, string>();
  for (const t of tables) {
    for (const source of t.partitions ?? [t.table]) {
      owner.set(`${t.schema}\u0000${source}`, `${t.schema}.${t.table}`);
    }
  }
  const rows = await run<{ lsn: string; data: string }>(
    `SELECT lsn::text, data FROM pg_catalog.pg_logical_slot_peek_changes($1, NULL, NULL)`,
    [slotName],
  );
  const stale: Stale = new Map();
  const current = new Map<string, Set<string>>();
  for (const row of rows) {
    const change = /^table (.+?): (INSERT|UPDATE): (.*)$/s.exec(row.data);
    const qualified = change?.[1];
    if (qualified === undefined || lsnValue(row.lsn) < from) continue;
    const [schema, relname] = splitQualified(qualified);
    const table = owner.get(`${schema}\u0000${relname}`);
    if (table === undefined) continue;
    if (!current.has(qualified!)) {
      const columns = await run<{ name: string; type: string }>(CURRENT_NAMES_SQL, [
        schema,
        relname,
      ]);
      current.set(qualified!, new Set(columns.map((c) => JSON.stringify([c.name, c.type]))));
    }
    // A column added since is harmless; one the table no longer has under that name and
    // type is not (test_decoding prints no type modifier: numeric(10,2) -> (12,4) is not
    // seen here, int -> bigint is).
    const now = current.get(qualified!)!;
    const fits = testDecodingColumns(change![3]!).every((c) =>
      now.has(JSON.stringify([c.name, c.type])),
    );
    if (!fits) noteStale(stale, table, row.lsn);
  }
  return stale;
}

/**
 * The columns (name and printed type) of the tuple that gives a test_decoding INSERT or
 * UPDATE its shape: `name[type]:value ...`, or for an UPDATE of the key
 * `old-key: ... new-tuple: ...` (the new tuple). Read token by token, so a value (quoted,
 * `''` doubled) that looks like a column, a quoted name and a type with brackets
 * (`integer[]`) or spaces are read as what they are.
 */
export function testDecodingColumns(text: string): { name: string; type: string }[] {
  let columns: { name: string; type: string }[] = [];
  let at = 0;
  const quotedEnd = (from: number, quote: string): number => {
    let i = from + 1;
    for (;;) {
      const next = text.indexOf(quote, i);
      if (next < 0) return text.length;
      if (text[next + 1] !== quote) return next + 1;
      i = next + 2;
    }
  };
  while (at < text.length) {
    if (text[at] === ' ') {
      at += 1;
      continue;
    }
    if (text.startsWith('old-key: ', at)) {
      at += 'old-key: '.length;
      continue;
    }
    if (text.startsWith('new-tuple: ', at)) {
      columns = []; // the old key's columns were read first: the new tuple is the shape
      at += 'new-tuple: '.length;
      continue;
    }
    // name: an identifier as quote_identifier prints it
    const nameEnd = text[at] === '"' ? quotedEnd(at, '"') : text.indexOf('[', at);
    if (nameEnd < 0 || text[nameEnd] !== '[') break;
    const rawName = text.slice(at, nameEnd);
    // type: up to the "]:" outside quotes (a type may hold [] and quoted names)
    let i = nameEnd + 1;
    while (i < text.length && !(text[i] === ']' && text[i + 1] === ':'))
      i = text[i] === '"' ? quotedEnd(i, '"') : i + 1;
    const type = text.slice(nameEnd + 1, i);
    // value: 'quoted', B'bits', or bare up to the next space
    let v = i + 2;
    if (text[v] === 'B' && text[v + 1] === "'") v += 1;
    at =
      text[v] === "'"
        ? quotedEnd(v, "'")
        : text.indexOf(' ', v) < 0
          ? text.length
          : text.indexOf(' ', v);
    const name = rawName.startsWith('"') ? rawName.slice(1, -1).replace(/""/g, '"') : rawName;
    columns.push({ name, type });
  }
  return columns;
}

/** Splits test_decoding's `schema.table` (each quoted only when it needs to be). */
function splitQualified(qualified: string): [string, string] {
  const part = /("(?:[^"]|"")+"|[^."]+)/g;
  const [schema = '', table = ''] = [...qualified.matchAll(part)].map((m) =>
    m[1]!.startsWith('"') ? m[1]!.slice(1, -1).replace(/""/g, '"') : m[1]!,
  );
  return [schema, table];
}
