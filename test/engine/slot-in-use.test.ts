import type { EngineLogger } from '../../src/engine';
import { ReplicationConnection } from '../../src/engine/replication-connection';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { auditRows, createPipeline, type Pipeline } from './helpers';

/**
 * A slot still held when the engine starts: by the walsender of an engine killed a
 * moment ago (it ends once the server notices), or by a second engine running beside
 * the first. The engine waits a bounded time for it, then refuses, before any load or
 * apply step.
 */
describe('engine: a replication slot held by another process when it starts', () => {
  let p: Pipeline;
  let holder: ReplicationConnection | null = null;

  beforeAll(async () => {
    p = await createPipeline('CREATE TABLE public.kv (k text PRIMARY KEY, v text)', {
      tables: [{ table: 'kv' }],
    });
    await p.replicate(); // creates the slot and loads the (empty) table
  });
  afterEach(async () => {
    await holder?.close();
    holder = null;
  });
  afterAll(async () => p?.dispose());

  let holders = 0;
  /**
   * Streams from the pipeline's slot on a connection of its own, as another engine
   * would; returns the pid of that connection's walsender. The previous holder's
   * walsender may still hold the slot a moment after its client closed, so this waits
   * for the slot to be free first and then for this holder's own walsender (by its
   * application name): taking the old walsender's pid for the new holder's left the
   * slot free when the engine started, which then never waited.
   */
  async function holdSlot(): Promise<number> {
    await slotHeldBy(null);
    const name = `another-engine-${++holders}`;
    holder = new ReplicationConnection(p.sourceUrl, name);
    await holder.connect();
    holder.startReplication(p.slotName, p.slotName, 0n);
    return (await slotHeldBy(name)) as number;
  }

  /**
   * Waits until the slot is held by the connection with application name `holder`
   * (free, for null) and returns the holding pid; fails after 20 s.
   */
  async function slotHeldBy(holder: string | null): Promise<number | null> {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      const { rows } = await p.source(
        `SELECT s.active_pid AS pid, a.application_name AS name
           FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
          WHERE s.slot_name = $1`,
        [p.slotName],
      );
      const pid = (rows[0]?.pid as number | null) ?? null;
      if (holder === null ? pid === null : pid !== null && rows[0].name === holder) return pid;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`slot ${p.slotName}: not ${holder ? `held by ${holder}` : 'free'} within 20 s`);
  }

  const auditCount = async () =>
    (await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n as number;

  it('refuses after its wait, naming the process that holds the slot, and applies nothing', async () => {
    const pid = await holdSlot();
    await p.source(`INSERT INTO public.kv VALUES ('a', '1')`);
    const before = await auditCount();
    const refused = await p.replicate({ slotWaitMs: 300 }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'SLOT_IN_USE', exitCode: 2 });
    expect((refused as Error).message).toContain(`process ${pid}`);
    // The time it waited, all of it: not what was left of its wait for the source side.
    const waited = Number(/after waiting (\d+) ms/.exec((refused as Error).message)?.[1]);
    expect(waited).toBeGreaterThanOrEqual(300);
    expect((refused as { hint?: string }).hint).toMatch(/another engine/);
    expect(await auditCount()).toBe(before);
  });

  it('starts once the slot is released during its wait, and logs that it waited', async () => {
    const pid = await holdSlot();
    await p.source(`INSERT INTO public.kv VALUES ('b', '1')`);
    const logged: { msg: string; fields?: Record<string, unknown> }[] = [];
    let release: () => void = () => undefined;
    const waiting = new Promise<void>((resolve) => (release = resolve));
    const logger: EngineLogger = {
      log(_level, msg, fields) {
        logged.push({ msg, ...(fields ? { fields } : {}) });
        if (msg === 'replication slot in use; waiting') release();
      },
    };
    const running = p.engine({ logger, slotWaitMs: 60_000 }).runUntilIdle();
    // A run that never waited is a failure to report, not a test left to time out.
    const ranWithoutWaiting = running.then(() => {
      throw new Error('the engine ran without waiting for the held slot');
    });
    await Promise.race([waiting, ranWithoutWaiting]);
    await holder!.close();
    holder = null;
    const result = await running;
    expect(result.changes).toBeGreaterThanOrEqual(1);
    const waited = logged.find((entry) => entry.msg === 'replication slot in use; waiting');
    expect(waited?.fields).toMatchObject({ slot: p.slotName, pid });
    const { rows } = await p.target(
      `SELECT count(*)::int AS n FROM audit.audit_log WHERE row_key->>'k' = 'b'`,
    );
    expect(rows[0].n).toBe(1);
  });
});

/**
 * Two engines on one slot started at the same moment (a service manager and an
 * operator, say): both find the slot free, so the source cannot tell them apart. The
 * first to lock the slot on the target runs; the other is refused before any step.
 */
describe('engine: two engines started at the same moment with one slot', () => {
  let p: Pipeline;
  const both = parseConfig({ tables: [{ table: 'a' }, { table: 'b' }] });

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE a (id int PRIMARY KEY, v text);
       CREATE TABLE b (id int PRIMARY KEY, v text);
       INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 500) AS g;
       INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 500) AS g;`,
      { tables: [{ table: 'a' }] },
    );
  });
  afterAll(async () => p?.dispose());

  /** Starts two runs at once, neither waiting for the slot; returns the refusals. */
  async function startTwo(options: Parameters<Pipeline['replicate']>[0]): Promise<unknown[]> {
    const runs = await Promise.allSettled([p.replicate(options), p.replicate(options)]);
    const refused = runs.flatMap((run) => (run.status === 'rejected' ? [run.reason] : []));
    expect(refused).toHaveLength(1);
    return refused;
  }

  it('on the first run: one loads, the other is refused with SLOT_IN_USE; every row once', async () => {
    const [refusal] = await startTwo({ slotWaitMs: 0 });
    expect(refusal).toMatchObject({ code: 'SLOT_IN_USE', exitCode: 2 });
    expect((refusal as Error).message).toMatch(/another engine .* on the target/);
    const rows = await auditRows(p, 'a');
    expect(rows).toHaveLength(500);
    expect(new Set(rows.map((r) => r.operation))).toEqual(new Set(['SNAPSHOT']));
  });

  it('loading an added table: one loads it, the other is refused; every row once', async () => {
    await migrateTarget({ config: both, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    await p.source(`UPDATE a SET v = 'changed' WHERE id = 1`);
    const [refusal] = await startTwo({ config: both, slotWaitMs: 0 });
    expect(refusal).toMatchObject({ code: 'SLOT_IN_USE', exitCode: 2 });
    expect(await auditRows(p, 'b')).toHaveLength(500);
    const changed = (await auditRows(p, 'a')).filter((r) => r.operation === 'UPDATE');
    expect(changed).toHaveLength(1);
  });
});
