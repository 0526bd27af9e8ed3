import { createEngine, type EngineLogger } from '../../src/engine';
import { ReplicationConnection } from '../../src/engine/replication-connection';
import { createPipeline, type Pipeline } from './helpers';

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

  /** Streams from the pipeline's slot on a connection of its own, as another engine would. */
  async function holdSlot(): Promise<number> {
    holder = new ReplicationConnection(p.sourceUrl, 'another-engine');
    await holder.connect();
    holder.startReplication(p.slotName, p.slotName, 0n);
    for (;;) {
      const { rows } = await p.source(
        'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
        [p.slotName],
      );
      if (rows[0]?.active_pid) return rows[0].active_pid as number;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
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
    const running = createEngine({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
      slotName: p.slotName,
      logger,
      lagIntervalMs: 0,
      slotWaitMs: 60_000,
    }).runUntilIdle();
    await waiting;
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
