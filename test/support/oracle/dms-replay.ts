import type pg from 'pg';
import { DmsApplier, cdc, fullLoad, type Headers } from '../dms-apply';
import { keyOf, type ComparedTable, type TextRow } from './expected-history';
import { readOracleEvents, type OracleEvent } from './install';

/**
 * Plays the oracle's events into staging exactly as an AWS DMS task applies them: a
 * full load of the rows that exist at the first catch-up (empty change sequence, copy
 * time), then each change as one statement in source commit order, with the header
 * columns as DMS fills them (commit time, xid, a fresh change sequence); an INSERT
 * that meets a row with its key as INSERT_RECORD (the kit's ApplyErrorInsertPolicy);
 * and after every catch-up a simulated task restart that applies the last changes
 * again with the same headers. An UPDATE or DELETE that finds no row is an apply error
 * that stops the task (ApplyErrorUpdatePolicy/ApplyErrorDeletePolicy STOP_TASK), so it
 * fails the run.
 */
export class DmsReplayer {
  private appliedSeq: number | undefined;

  constructor(
    private readonly source: pg.ClientBase,
    private readonly target: pg.Client,
    private readonly tables: readonly ComparedTable[],
    private readonly auditSchema = 'audit',
    /** Changes applied again after each simulated restart. */
    private readonly replayed = 3,
  ) {}

  /** Applies every change committed since the last catch-up (the first one: a full load). */
  async catchUp(loadMark: number): Promise<void> {
    const events = await readOracleEvents(this.source);
    if (this.appliedSeq === undefined) {
      await this.fullLoad(events.filter((e) => e.seq <= loadMark));
      this.appliedSeq = loadMark;
    }
    const fresh = inCommitOrder(events.filter((e) => e.seq > this.appliedSeq!));
    const applied: [OracleEvent, Headers][] = [];
    for (const event of fresh) {
      const headers = cdc(event.operation, event.commitTimestamp, Number(event.xid));
      await this.apply(event, headers);
      applied.push([event, headers]);
    }
    // A task restart: DMS resumes from its last checkpoint and applies changes again.
    for (const [event, headers] of applied.slice(-this.replayed)) await this.apply(event, headers);
    this.appliedSeq = Math.max(this.appliedSeq!, ...fresh.map((e) => e.seq));
  }

  private tableOf(event: OracleEvent): ComparedTable | undefined {
    return this.tables.find((t) => t.schema === event.schema && t.table === event.table);
  }

  private applier(table: ComparedTable): DmsApplier {
    return new DmsApplier(this.target, this.auditSchema, table.table, table.keyColumns);
  }

  private async fullLoad(events: readonly OracleEvent[]): Promise<void> {
    const { rows } = await this.target.query<{ now: string }>(
      `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS now`,
    );
    const copyTime = rows[0]!.now;
    for (const table of this.tables) {
      const state = new Map<string, TextRow>();
      for (const e of events.filter((x) => x.schema === table.schema && x.table === table.table)) {
        if (e.oldText) state.delete(keyOf(e.oldText, table.keyColumns, e.columnTypes));
        if (e.newText) state.set(keyOf(e.newText, table.keyColumns, e.columnTypes), e.newText);
      }
      for (const row of state.values())
        await this.applier(table).insert({ ...row }, fullLoad(copyTime));
    }
  }

  private async apply(event: OracleEvent, headers: Headers): Promise<void> {
    const table = this.tableOf(event);
    if (!table) return;
    const applier = this.applier(table);
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
