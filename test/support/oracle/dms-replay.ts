import type pg from 'pg';
import { buildTableMappings, escapeLocatorName, type TableMappings } from '../../../mappings';
import type { AuditTrailConfig } from '../../../src/config';
import { stagingTableName } from '../../../src/staging/header-columns';
import { connectClient } from '../../../src/postgres/connect';
import { finishReload } from '../../../src/staging/reload-baseline';
import { DmsApplier, cdc, fullLoad, type Headers } from '../dms-apply';
import type { ComparedTable } from './expected-history';
import { readOracleEvents, readSourceRows, type OracleEvent } from './install';

/**
 * Plays the oracle's events into staging exactly as an AWS DMS task applies them,
 * through the task's table mapping as the kit generates it from the config: a change
 * reaches the staging table the mapping renames its source relation to (a partition's
 * change under the partition's name, as test_decoding reports it), and a relation the
 * mapping does not select is not captured. A table is fully loaded each time the
 * mapping starts selecting it (empty change sequence, copy time; at the first catch-up,
 * or when it is added to the config later or added back after a removal, as DMS loads
 * a table added to a task: into the staging table as it is, TargetTablePrepMode
 * DO_NOTHING); then each
 * change as one statement in source commit order, with the header columns as DMS fills
 * them (commit time, xid, a fresh change sequence); an INSERT that meets a row with its
 * key as INSERT_RECORD (the kit's ApplyErrorInsertPolicy); and after every catch-up a
 * simulated task restart that applies the last changes again with the same headers. An
 * UPDATE or DELETE that finds no row is an apply error that stops the task
 * (ApplyErrorUpdatePolicy/ApplyErrorDeletePolicy STOP_TASK), so it fails the run.
 */
export class DmsReplayer {
  private appliedSeq = 0;
  /** The oracle mark each table the mapping selects was last fully loaded at, by `schema.table`. */
  private loadedAt = new Map<string, number>();

  constructor(
    private readonly source: pg.ClientBase,
    private readonly target: pg.Client,
    /** The target, for the operator's steps, which run through the kit's connection. */
    private readonly targetUrl: string,
    /** Every table the workload has, configured or not. */
    private readonly tables: readonly ComparedTable[],
    /** Changes applied again after each simulated restart. */
    private readonly replayed = 3,
  ) {}

  /** Applies every change committed since the last catch-up, loading newly mapped tables first. */
  async catchUp(config: AuditTrailConfig): Promise<void> {
    const events = await readOracleEvents(this.source);
    const mark = Math.max(this.appliedSeq, ...events.map((e) => e.seq));
    const mapping = new MappedTables(buildTableMappings(config), this.tables);
    // A table the mapping no longer selects is forgotten: selected again, it loads again.
    const selected = new Map<string, number>();
    const loadedNow: ComparedTable[] = [];
    for (const table of mapping.tables()) {
      const loadedAt = this.loadedAt.get(label(table));
      if (loadedAt === undefined) {
        await this.fullLoad(config.auditSchema, table);
        loadedNow.push(table);
      }
      selected.set(label(table), loadedAt ?? mark);
    }
    this.loadedAt = selected;
    const fresh = inCommitOrder(events.filter((e) => e.seq > this.appliedSeq));
    const applied: [DmsApplier, ComparedTable, OracleEvent, Headers][] = [];
    for (const event of fresh) {
      const route = mapping.route(event);
      if (!route || event.seq <= this.loadedAt.get(label(route.table))!) continue;
      const applier = new DmsApplier(
        this.target,
        route.auditSchema,
        route.table.table,
        route.table.keyColumns,
        route.staging,
      );
      const headers = cdc(event.operation, event.commitTimestamp, Number(event.xid));
      await apply(applier, route.table, event, headers);
      applied.push([applier, route.table, event, headers]);
    }
    // A task restart: DMS resumes from its last checkpoint and applies changes again.
    for (const [applier, table, event, headers] of applied.slice(-this.replayed))
      await apply(applier, table, event, headers);
    // The operator's step once DMS reports a table's load complete (README "Removing a
    // table"): ends the reload of a table added back, unless its first change applied
    // above already did. A no-op for any other table.
    // Through the kit's own connection, as `audit-trail reload finish` runs it (its
    // pinned settings, JIT off): not DMS's session.
    if (loadedNow.length > 0) {
      const operator = await connectClient(this.targetUrl, 'audit-trail-reload', 'target');
      try {
        for (const table of loadedNow)
          await finishReload(operator, config.auditSchema, {
            schema: table.schema,
            table: table.table,
          });
      } finally {
        await operator.end();
      }
    }
    this.appliedSeq = mark;
  }

  /** A full load: the rows the table holds now (the scenario writes nothing meanwhile). */
  private async fullLoad(auditSchema: string, table: ComparedTable): Promise<void> {
    // Read in the harness's session (JIT off): the stand-in's own session keeps JIT on,
    // and only its staging writes may compile (see jit.ts).
    const { rows } = await this.source.query<{ now: string }>(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS now`,
    );
    const copyTime = rows[0]!.now;
    const applier = new DmsApplier(this.target, auditSchema, table.table, table.keyColumns);
    for (const row of await readSourceRows(this.source, table))
      await applier.insert(row, fullLoad(copyTime));
  }
}

async function apply(
  applier: DmsApplier,
  table: ComparedTable,
  event: OracleEvent,
  headers: Headers,
): Promise<void> {
  if (event.operation === 'INSERT') {
    await applier.insertRecord({ ...event.newText! }, headers);
    return;
  }
  const where = Object.fromEntries(table.keyColumns.map((c) => [c, event.oldText![c] as string]));
  const touched =
    event.operation === 'DELETE'
      ? await applier.delete(where, headers)
      : await applier.update(where, { ...event.newText! }, headers);
  if (touched === 0)
    throw new Error(
      `${event.operation} of ${JSON.stringify(where)} found no staging row (oracle event ${event.seq}): DMS stops the task`,
    );
}

const label = (table: { schema: string; table: string }) => `${table.schema}.${table.table}`;

/** Where a DMS task with this mapping writes each source relation's changes. */
class MappedTables {
  constructor(
    private readonly mappings: TableMappings,
    private readonly all: readonly ComparedTable[],
  ) {}

  /** The workload's tables the mapping selects (through any of their relations). */
  tables(): ComparedTable[] {
    const staged = new Set(
      this.mappings.rules.flatMap((rule) =>
        rule['rule-type'] === 'transformation' &&
        rule['rule-target'] === 'table' &&
        rule['rule-action'] === 'rename'
          ? [rule.value]
          : [],
      ),
    );
    return this.all.filter((t) => staged.has(this.stagingOf(t)));
  }

  /**
   * The staging table and audit schema the mapping sends a change of `event.relation`
   * (the leaf partition, or the table itself) to, and the workload table it belongs to;
   * undefined when the mapping does not select the relation.
   */
  route(
    event: OracleEvent,
  ): { auditSchema: string; staging: string; table: ComparedTable } | undefined {
    const schema = escapeLocatorName(event.schema);
    const relation = escapeLocatorName(event.relation);
    const onRelation = (rule: TableMappings['rules'][number]) =>
      rule['object-locator']['schema-name'] === schema &&
      rule['object-locator']['table-name'] === relation;
    if (!this.mappings.rules.some((r) => r['rule-type'] === 'selection' && onRelation(r)))
      return undefined;
    const rename = (
      target: 'schema' | 'table',
      matches: (r: TableMappings['rules'][number]) => boolean,
    ) =>
      this.mappings.rules.find(
        (r) =>
          r['rule-type'] === 'transformation' &&
          r['rule-target'] === target &&
          r['rule-action'] === 'rename' &&
          matches(r),
      ) as { value: string } | undefined;
    const staging = rename('table', onRelation)?.value;
    const auditSchema = rename(
      'schema',
      (r) =>
        r['object-locator']['schema-name'] === schema && !('table-name' in r['object-locator']),
    )?.value;
    const table = this.all.find((t) => this.stagingOf(t) === staging && t.schema === event.schema);
    if (!staging || !auditSchema || !table)
      throw new Error(
        `the DMS mapping selects ${event.schema}.${event.relation} but renames it nowhere`,
      );
    return { auditSchema, staging, table };
  }

  private stagingOf(table: ComparedTable): string {
    return stagingTableName(table.table);
  }
}

/** Source commit order: transactions by commit time, changes in the order they were made. */
function inCommitOrder(events: readonly OracleEvent[]): OracleEvent[] {
  const firstSeq = new Map<string, number>();
  for (const e of events) if (!firstSeq.has(e.xid)) firstSeq.set(e.xid, e.seq);
  return [...events].sort(
    (a, b) =>
      a.commitTimestamp.localeCompare(b.commitTimestamp) ||
      firstSeq.get(a.xid)! - firstSeq.get(b.xid)! ||
      a.seq - b.seq,
  );
}
