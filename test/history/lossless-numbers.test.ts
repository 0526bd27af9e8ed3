import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createHistory, LosslessNumber } from '../../src/history';
import { verifyAuditTrail } from '../../src/verify';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from '../engine/helpers';

/** Numbers a double cannot hold exactly, inside a jsonb document and a float column. */
const DOC =
  '{"scale": 1.10, "big": 9007199254740993, "huge": 123456789012345678901234567890, "plain": 1.5}';

describe('numbers inside row documents keep every digit', () => {
  let p: Pipeline;
  let db: Kysely<unknown>;
  const config = { tables: [{ table: 'docs' }] };

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE public.docs (id int PRIMARY KEY, doc jsonb, f float8);
       INSERT INTO public.docs VALUES (1, '${DOC}', 0.1);`,
      config,
    );
    await p.replicate();
    db = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: p.targetUrl }) }),
    });
  });
  afterAll(async () => {
    await db?.destroy();
    await p?.dispose();
  });

  it('in the history API', async () => {
    const [version] = await createHistory(db).history('public.docs', [1]);
    expect(version?.newRow).toEqual({
      id: 1,
      doc: {
        scale: new LosslessNumber('1.10'),
        big: new LosslessNumber('9007199254740993'),
        huge: new LosslessNumber('123456789012345678901234567890'),
        plain: 1.5,
      },
      f: 0.1,
    });
  });

  it('in history --json', async () => {
    const configFile = await writeConfig(config);
    const cli = await runCli([
      'history',
      'public.docs',
      '1',
      ...connectionArgs({ configFile, targetUrl: p.targetUrl }),
      '--json',
    ]);
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain(
      '"doc":{"big":9007199254740993,"huge":123456789012345678901234567890,"plain":1.5,"scale":1.10}',
    );
  });

  it('in verify --json', async () => {
    await p.source(`UPDATE public.docs SET doc = jsonb_set(doc, '{big}', '9007199254740995')`);
    const report = await verifyAuditTrail({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    expect(report.mismatches.map((m) => [m.kind, m.columns])).toEqual([['different', ['doc']]]);
    expect((report.mismatches[0]?.sourceRow?.doc as Record<string, unknown>).big).toEqual(
      new LosslessNumber('9007199254740995'),
    );
    const configFile = await writeConfig(config);
    const cli = await runCli([
      'verify',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl }),
      '--json',
    ]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('"big":9007199254740995');
    expect(cli.stdout).toContain('"big":9007199254740993');
    expect(cli.stdout).toContain('"scale":1.10');
  });
});
