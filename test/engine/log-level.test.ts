import { replicateArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';

describe('replicate --log-level / AUDIT_TRAIL_LOG_LEVEL', () => {
  let p: Pipeline;
  const config = { tables: [{ table: 'kv' }] };
  beforeAll(async () => {
    p = await createPipeline(
      'CREATE TABLE kv (k int PRIMARY KEY); INSERT INTO kv VALUES (1)',
      config,
    );
  });
  afterAll(async () => p?.dispose());

  it('writes only lines at or above the level, and refuses an unknown level with exit 2', async () => {
    const configFile = await writeConfig(config);
    const args = replicateArgs(configFile, p, '--until-idle');
    const quiet = await runCli(['--log-level', 'warn', ...args]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    const { rows } = await p.target('SELECT count(*)::int AS n FROM audit.audit_log');
    expect(rows[0].n).toBe(1);
    const wrong = await runCli(args, { AUDIT_TRAIL_LOG_LEVEL: 'loud' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/AUDIT_TRAIL_LOG_LEVEL.*loud|loud.*is invalid/);
  });
});
