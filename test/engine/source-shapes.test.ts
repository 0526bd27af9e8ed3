import { SourceSetupError } from '../../src/engine';
import { verifyAuditTrail } from '../../src/verify';
import { formatReport } from '../../src/cli/commands/verify-format';
import { auditRows, createPipeline, type Pipeline } from './helpers';

const verify = (p: Pipeline) =>
  verifyAuditTrail({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });

describe('engine: partitioned tables', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE measures (region text, id int, v numeric, PRIMARY KEY (region, id))
         PARTITION BY LIST (region);
       CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('EU');
       CREATE TABLE measures_other PARTITION OF measures DEFAULT;
       INSERT INTO measures VALUES ('EU', 1, 1.0), ('US', 1, 2.0);`,
      { tables: [{ table: 'measures', partitions: ['measures_eu', 'measures_other'] }] },
    );
  });
  afterAll(async () => p?.dispose());

  it('captures the changes of every partition under the partitioned table, a partition attached later too', async () => {
    await p.replicate();
    await p.source(`INSERT INTO measures VALUES ('EU', 2, 3.0), ('JP', 1, 4.0)`);
    await p.source(`UPDATE measures SET v = 1.5 WHERE region = 'EU' AND id = 1`);
    await p.source(`DELETE FROM measures WHERE region = 'US'`);
    await p.source(`CREATE TABLE measures_ap PARTITION OF measures FOR VALUES IN ('AP')`);
    await p.source(`INSERT INTO measures VALUES ('AP', 7, 7.0)`);
    await p.source(`UPDATE measures SET region = 'AP' WHERE region = 'JP'`);
    await p.replicate();
    const rows = await auditRows(p, 'measures');
    expect(rows.map((r) => [r.operation, r.row_key])).toEqual([
      ['SNAPSHOT', { region: 'EU', id: 1 }],
      ['SNAPSHOT', { region: 'US', id: 1 }],
      ['INSERT', { region: 'EU', id: 2 }],
      ['INSERT', { region: 'JP', id: 1 }],
      ['UPDATE', { region: 'EU', id: 1 }],
      ['DELETE', { region: 'US', id: 1 }],
      ['INSERT', { region: 'AP', id: 7 }],
      // A row moved to another partition is published as a delete and an insert.
      ['DELETE', { region: 'JP', id: 1 }],
      ['INSERT', { region: 'AP', id: 1 }],
    ]);
    expect((await verify(p)).ok).toBe(true);
  });

  it('rows a table held when attached as a partition are no change: verify reports each with its partition and the remedy', async () => {
    await p.source(`CREATE TABLE measures_sa (region text, id int, v numeric, PRIMARY KEY (region, id));
                    INSERT INTO measures_sa VALUES ('SA', 1, 9.0);
                    ALTER TABLE measures ATTACH PARTITION measures_sa FOR VALUES IN ('SA')`);
    await p.replicate();
    const report = await verify(p);
    expect(report.ok).toBe(false);
    expect(report.mismatches).toEqual([
      expect.objectContaining({
        kind: 'missing-in-audit',
        key: { region: 'SA', id: 1 },
        partition: 'public.measures_sa',
      }),
    ]);
    expect(formatReport(report)).toMatch(
      /public\.measures \{"id":1,"region":"SA"\}: missing-in-audit \(in partition public\.measures_sa: .*attached.*never captured.*task reload public\.measures_sa/,
    );
  });
});

describe('engine: generated columns', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE lines (id int PRIMARY KEY, qty int, price numeric(10,2),
         total numeric GENERATED ALWAYS AS (qty * price) STORED);
       INSERT INTO lines (id, qty, price) VALUES (1, 2, 1.50);`,
      { tables: [{ table: 'lines' }] },
    );
  });
  afterAll(async () => p?.dispose());

  it('are left out of staging and history (pgoutput does not send them), and verify agrees with the source', async () => {
    const { rows: columns } = await p.target(
      `SELECT attname FROM pg_attribute WHERE attrelid = 'audit.lines_staging'::regclass AND attname = 'total'`,
    );
    expect(columns).toEqual([]);
    await p.replicate();
    await p.source(`INSERT INTO lines (id, qty, price) VALUES (2, 1, 9.99)`);
    await p.source(`UPDATE lines SET qty = 3 WHERE id = 1`);
    await p.replicate();
    const rows = await auditRows(p, 'lines');
    expect(rows.map((r) => [r.operation, r.new_row])).toEqual([
      ['SNAPSHOT', { id: 1, qty: 2, price: 1.5 }],
      ['INSERT', { id: 2, qty: 1, price: 9.99 }],
      ['UPDATE', { id: 1, qty: 3, price: 1.5 }],
    ]);
    const report = await verify(p);
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('engine: never breaks the source', () => {
  it('refuses, before creating its publication, a table whose key became DEFERRABLE; source writes keep working', async () => {
    const p = await createPipeline(`CREATE TABLE acct (id int PRIMARY KEY, v text)`, {
      tables: [{ table: 'acct' }],
    });
    try {
      await p.source(`INSERT INTO acct VALUES (1, 'a');
        ALTER TABLE acct DROP CONSTRAINT acct_pkey;
        ALTER TABLE acct ADD PRIMARY KEY (id) DEFERRABLE INITIALLY IMMEDIATE`);
      const failure = p.replicate();
      await expect(failure).rejects.toBeInstanceOf(SourceSetupError);
      await expect(failure).rejects.toThrow(/public\.acct has a DEFERRABLE primary key/);
      const { rows } = await p.source(`SELECT count(*)::int AS n FROM pg_publication`);
      expect(rows[0].n).toBe(0);
      await p.source(`UPDATE acct SET v = 'b' WHERE id = 1; DELETE FROM acct WHERE id = 1`);
    } finally {
      await p.dispose();
    }
  });
});
