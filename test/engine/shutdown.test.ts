import { replicateArgs, spawnCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';

describe('engine: running continuously', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline('CREATE TABLE public.kv (k text PRIMARY KEY, v text)', {
      tables: [{ table: 'kv' }],
    });
  });
  afterAll(async () => p?.dispose());

  it(
    'applies changes as they commit, logs JSON to stderr with lag, and stops cleanly on SIGTERM',
    { timeout: 120_000 },
    async () => {
      const configFile = await writeConfig({ tables: [{ table: 'kv' }] });
      const child = spawnCli(replicateArgs(configFile, p, '--lag-interval', '200'));
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.on('close', (code) => resolve(code)),
      );
      // Up to 60 s: a loaded machine may take seconds to start the CLI.
      const waitFor = async (check: () => Promise<boolean> | boolean) => {
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline && !(await check()))
          await new Promise((r) => setTimeout(r, 50));
      };
      await waitFor(() => stderr.includes('"msg":"streaming"'));
      await p.source(
        `INSERT INTO public.kv VALUES ('a', '1'); UPDATE public.kv SET v = '2' WHERE k = 'a'`,
      );
      const applied = async () =>
        (await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n === 2;
      await waitFor(applied);
      expect(await applied()).toBe(true);
      await waitFor(() => stderr.includes('"msg":"lag"'));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const records = stderr
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(
        records.every(
          (record) => typeof record.time === 'string' && typeof record.level === 'string',
        ),
      ).toBe(true);
      const lag = records.find((record) => record.msg === 'lag');
      expect(lag).toMatchObject({ lagBytes: expect.any(Number), lagSeconds: expect.any(Number) });
      expect(records.at(-1)).toMatchObject({ msg: 'engine stopped', transactions: 1, changes: 2 });
      // The walsender is gone, nothing left running: it ends once the server has read the
      // closed connection, which on a loaded machine can come after the CLI's exit.
      const walsenderGone = async () =>
        (
          await p.source('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [
            p.slotName,
          ])
        ).rows[0].active_pid === null;
      await waitFor(walsenderGone);
      expect(await walsenderGone()).toBe(true);
    },
  );
});
