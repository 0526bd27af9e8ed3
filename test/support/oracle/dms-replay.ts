import type pg from 'pg';
import { DmsApplier, cdc, fullLoad, type Headers } from '../dms-apply';
import { keyOf, type ComparedTable, type TextRow } from './expected-history';
import { readOracleEvents, type OracleEvent } from './install';

/**
 * Plays the oracle's events into staging exactly as an AWS DMS task applies them: a
 * full load of the rows that exist at the first catch-up (empty change sequence, copy
 * time), then each change as one statement in source commit order, with the header
 * columns as DMS fills them (commit time, xid, a fresh change sequence); a re-insert
 * of a deleted key as INSERT_RECORD; and after every catch-up a simulated task restart
 * that applies the last changes again with the same headers.
 */
export class DmsReplayer {
  private appliedSeq: number | undefined;
  /** Canonical keys that have a staging row (live or flagged D), per table. */
  private readonly stagingKeys = new Map<string, Set<string>>();

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
    for (const [event, headers] of applied.slice(-this.replayed))
      await this.apply(event, headers, true);
    this.appliedSeq = Math.max(this.appliedSeq!, ...fresh.map((e) => e.seq));
  }

  private tableOf(event: OracleEvent): ComparedTable | undefined {
    return this.tables.find((t) => t.schema === event.schema && t.table === event.table);
  }

  private applier(table: ComparedTable): DmsApplier {
    return new DmsApplier(this.target, this.auditSchema, table.table, table.keyColumns);
  }

  private keys(table: ComparedTable): Set<string> {
    const label = `${table.schema}.${table.table}`;
    if (!this.stagingKeys.has(label)) this.stagingKeys.set(label, new Set());
    return this.stagingKeys.get(label)!;
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
      for (const [key, row] of state) {
        await this.applier(table).insert({ ...row }, fullLoad(copyTime));
        this.keys(table).add(key);
      }
    }
  }

  private async apply(event: OracleEvent, headers: Headers, replay = false): Promise<void> {
    const table = this.tableOf(event);
    if (!table) return;
    const applier = this.applier(table);
    const keys = this.keys(table);
    const keyText = (row: TextRow) =>
      Object.fromEntries(table.keyColumns.map((c) => [c, row[c] as string]));
    const keyOfRow = (row: TextRow) => keyOf(row, table.keyColumns, event.columnTypes);
    if (event.operation === 'INSERT') {
      const key = keyOfRow(event.newText!);
      if (keys.has(key)) await applier.insertRecord({ ...event.newText! }, headers);
      else await applier.insert({ ...event.newText! }, headers);
      keys.add(key);
      return;
    }
    const where = keyText(event.oldText!);
    if (event.operation === 'UPDATE' && !replay) {
      const newKey = keyOfRow(event.newText!);
      if (newKey !== keyOfRow(event.oldText!) && keys.has(newKey))
        throw new DmsLimitation(
          `key change onto the key of a deleted row (oracle event ${event.seq}): the row DMS keeps for the delete (operation_indicator) makes the UPDATE fail on the staging primary key`,
        );
    }
    const touched =
      event.operation === 'DELETE'
        ? await applier.delete(where, headers)
        : await applier.update(where, { ...event.newText! }, headers);
    if (touched === 0) {
      // Already moved by the first application (a replayed key change): DMS logs
      // "0 rows affected" and goes on.
      const newKey = event.newText && keyOfRow(event.newText);
      if (newKey && keys.has(newKey) && newKey !== keyOfRow(event.oldText!)) return;
      throw new Error(
        `DMS apply: ${event.operation} of ${JSON.stringify(where)} found no staging row (oracle event ${event.seq})`,
      );
    }
    if (event.operation === 'UPDATE') {
      keys.delete(keyOfRow(event.oldText!));
      keys.add(keyOfRow(event.newText!));
    }
  }
}

/**
 * A change DMS cannot apply to the staging layout at all (not a wrong history: the task
 * stops on the apply error). Reported apart from differences; see the lead's note.
 */
export class DmsLimitation extends Error {
  override readonly name = 'DmsLimitation';
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
