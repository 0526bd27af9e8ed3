import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildTableMappings, type TransformationRule } from '../../mappings';
import { ConfigError, parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { SourceTableError } from '../../src/migrate/introspect';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteQualified } from '../../src/postgres/identifiers';
import { runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import {
  applyLikeDms,
  decode,
  headerValues,
  mappedStaging,
  sameLocator,
  type AddColumnRule,
} from '../support/test-decoding';

/**
 * #17 item 11 under AWS DMS: DMS captures a partition's changes under the leaf
 * partition's name (test_decoding, DMS's default plugin, never reports the partitioned
 * table), so a mapping that selects only the partitioned table loses every change after
 * the full load. The mapping selects each listed leaf partition and renames it to the
 * partitioned table's staging table; migrate and doctor refuse a list that misses one.
 */

const MEASURES = {
  table: 'measures',
  partitions: ['measures_eu', 'measures_us', 'measures_other'],
};

describe('config: partitions', () => {
  it('refuses the table itself, a partition listed twice or under two tables, and a partition also listed as a table', () => {
    const refusal = (input: AuditTrailConfigInput) => {
      try {
        parseConfig(input);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal({ tables: [{ table: 'm', partitions: ['m'] }] })).toMatch(
      /tables\[0\]\.partitions\[0\].*"m" is the table itself/,
    );
    expect(refusal({ tables: [{ table: 'm', partitions: ['m1', 'm1'] }] })).toMatch(
      /tables\[0\]\.partitions\[1\].*"m1" is listed twice/,
    );
    expect(
      refusal({
        tables: [
          { table: 'm', partitions: ['m1'] },
          { table: 'n', partitions: ['m1'] },
        ],
      }),
    ).toMatch(/tables\[1\]\.partitions\[0\].*"m1" is already a partition of "public\.m"/);
    expect(refusal({ tables: [{ table: 'm', partitions: ['m1'] }, { table: 'm1' }] })).toMatch(
      /tables\[1\]\.table.*"public\.m1" is listed as a partition of "public\.m"/,
    );
  });
});

describe('DMS mapping of a partitioned table', () => {
  const config = parseConfig({ tables: [{ table: 'orders' }, MEASURES] });
  const { rules } = buildTableMappings(config);

  it('selects every listed leaf partition and never the partitioned table itself', () => {
    const selected = rules
      .filter((rule) => rule['rule-type'] === 'selection')
      .map((rule) => rule['object-locator']['table-name']);
    expect(selected).toEqual(['orders', 'measures[_]eu', 'measures[_]us', 'measures[_]other']);
  });

  it('renames each partition to the partitioned table’s staging table and adds the header columns to each', () => {
    for (const partition of MEASURES.partitions) {
      const own = rules.filter(
        (rule): rule is TransformationRule =>
          rule['rule-type'] === 'transformation' && sameLocator(rule, 'public', partition),
      );
      expect(own.find((rule) => rule['rule-target'] === 'table')?.value).toBe('measures_staging');
      expect(
        own.filter((rule) => rule['rule-action'] === 'add-column').map((r) => r.value),
      ).toEqual(
        rules
          .filter(
            (rule): rule is AddColumnRule =>
              rule['rule-type'] === 'transformation' &&
              rule['rule-action'] === 'add-column' &&
              sameLocator(rule, 'public', 'orders'),
          )
          .map((rule) => rule.value),
      );
    }
    expect(rules.some((rule) => sameLocator(rule, 'public', 'measures'))).toBe(false);
  });
});

describe('DMS mapping rule ids', () => {
  // #17: a monthly partition (or a table) added to the config must not give the rules
  // already deployed other ids: each rule's id follows from its name alone.
  const idsByName = (input: AuditTrailConfigInput) =>
    new Map(
      buildTableMappings(parseConfig(input)).rules.map((r) => [r['rule-name'], r['rule-id']]),
    );

  it('keeps every existing rule id when a partition or a table is added, in any position', () => {
    const before = idsByName({ tables: [{ table: 'orders' }, MEASURES] });
    const after = idsByName({
      tables: [
        { table: 'aaa_first' },
        { table: 'orders' },
        { table: 'measures', partitions: ['measures_2026_01', ...MEASURES.partitions] },
      ],
    });
    for (const [name, id] of before) expect(after.get(name), name).toBe(id);
    expect(after.size).toBeGreaterThan(before.size);
    const ids = [...after.values()];
    expect(new Set(ids).size).toBe(ids.length);
    // Numeric, at most nine digits (the size the DMS console itself generates).
    expect(ids.every((id) => /^[1-9]\d{0,8}$/.test(id))).toBe(true);
  });
});

describe('a partitioned source through DMS-shaped staging writes (real test_decoding stream)', () => {
  const slot = `h17_dms_${randomBytes(4).toString('hex')}`;
  let sourceUrl: string;
  let targetUrl: string;
  let source: pg.Client;
  const input = { tables: [MEASURES] };

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('partsrc');
    targetUrl = await createTestDatabase('parttgt');
    await withClient(sourceUrl, (client) =>
      client.query(`
        CREATE TABLE measures (region text, id int, v numeric, note text, PRIMARY KEY (region, id))
          PARTITION BY LIST (region);
        CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('EU');
        CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('US');
        CREATE TABLE measures_other PARTITION OF measures DEFAULT;
        -- The oracle: a plain row trigger on the source, outside the kit.
        CREATE TABLE oracle (seq serial PRIMARY KEY, op text, row_key jsonb, old_row jsonb, new_row jsonb,
                             xid xid8 DEFAULT pg_current_xact_id());
        CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO oracle (op, row_key, old_row, new_row) VALUES (TG_OP,
            jsonb_build_object('region', coalesce(NEW.region, OLD.region), 'id', coalesce(NEW.id, OLD.id)),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
          RETURN NULL;
        END $$;
        CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON measures
          FOR EACH ROW EXECUTE FUNCTION record_change();
        INSERT INTO measures VALUES ('EU', 1, 1.0, 'a'), ('US', 1, 2.0, 'b'), ('JP', 1, 3.0, 'c');`),
    );
    source = await connect(sourceUrl);
    // The test server runs with synchronous_commit off; SQL decoding reads flushed WAL only.
    await source.query('SET synchronous_commit = on');
    await source.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    await migrateTarget({ config: parseConfig(input), sourceUrl, targetUrl });
  });
  afterAll(async () => {
    await source?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    await source?.end();
  });

  it('records every change of every partition exactly once, a row moved between partitions as DELETE + INSERT, as the source oracle saw it', async () => {
    const mappings = buildTableMappings(parseConfig(input));
    const keys = ['region', 'id'];
    // Full load: DMS reads each selected partition; the partitioned table is not selected.
    await withClient(targetUrl, async (target) => {
      for (const partition of MEASURES.partitions) {
        const mapped = mappedStaging(mappings, 'public', partition)!;
        const { rows } = await source.query<Record<string, string | null>>(
          `SELECT region, id::text, v::text, note FROM ${quoteQualified('public', partition)}`,
        );
        for (const row of rows) {
          const headers = headerValues(mapped.headers, {
            operation: 'INSERT',
            commitTimestamp: '2026-12-02 00:00:00.000000',
            changeSeq: '',
            xid: '',
            lsn: '',
          });
          await applyLikeDms(target, mapped.staging, keys, 'INSERT', row, headers);
        }
      }
    });
    const mark = (
      await source.query<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM oracle')
    ).rows[0]!.seq;

    await source.query(`INSERT INTO measures VALUES ('EU', 2, 4.0, 'd'), ('US', 3, 5.0, 'e')`);
    await source.query(`UPDATE measures SET v = 1.5 WHERE region = 'EU' AND id = 1`);
    await source.query(
      `UPDATE measures SET note = 'moved' WHERE region IN ('US', 'JP') AND id = 1`,
    );
    // Moves between partitions: published by test_decoding as a DELETE on the old leaf
    // and an INSERT on the new one.
    await source.query(
      `UPDATE measures SET region = 'US', note = 'to us' WHERE region = 'EU' AND id = 2`,
    );
    await source.query(`BEGIN; UPDATE measures SET region = 'EU' WHERE region = 'US' AND id = 2;
                        DELETE FROM measures WHERE region = 'JP'; COMMIT`);
    await source.query(`UPDATE measures SET region = 'XX' WHERE region = 'EU' AND id = 1`);

    const { changes, commitTimes } = await decode(source, slot);
    // test_decoding names the leaf partition, never the partitioned table.
    const measured = changes.filter((c) => c.table !== 'oracle');
    expect(new Set(measured.map((c) => c.table))).toEqual(
      new Set(['measures_eu', 'measures_us', 'measures_other']),
    );
    let counter = 0;
    await withClient(targetUrl, async (target) => {
      for (const change of measured) {
        const mapped = mappedStaging(mappings, change.schema, change.table);
        expect(mapped, `${change.schema}.${change.table} is captured by the mapping`).toBeDefined();
        const commitTimestamp = commitTimes.get(change.xid)!;
        counter += 1;
        const headers = headerValues(mapped!.headers, {
          operation: change.operation,
          commitTimestamp,
          changeSeq: `${commitTimestamp.replace(/\D/g, '').slice(0, 16).padEnd(16, '0')}${String(counter).padStart(19, '0')}`,
          xid: change.xid,
          lsn: change.lsn,
        });
        await applyLikeDms(target, mapped!.staging, keys, change.operation, change.values, headers);
      }
    });

    const { rows: expected } = await source.query<Record<string, unknown>>(
      `SELECT op AS operation, row_key, old_row, new_row, xid::text AS transaction_id,
              to_char(pg_xact_commit_timestamp(xid::text::xid) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS committed
         FROM oracle WHERE seq > $1 ORDER BY seq`,
      [mark],
    );
    const { rows: recorded } = await withClient(targetUrl, (target) =>
      target.query<Record<string, unknown>>(
        `SELECT operation, row_key, old_row, new_row, transaction_id,
                to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS committed
           FROM audit.audit_log WHERE change_seq IS NOT NULL ORDER BY id`,
      ),
    );
    const shape = (row: Record<string, unknown>) => ({
      ...row,
      old_row: row.operation === 'INSERT' ? null : row.old_row,
      new_row: row.operation === 'DELETE' ? null : row.new_row,
    });
    expect(expected.length).toBe(12);
    expect(recorded.map(shape)).toEqual(expected.map(shape));
  });
});

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

describe('migrate and doctor refuse a partition list that misses a leaf', () => {
  let sourceUrl: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('partchk');
    await withClient(sourceUrl, (client) =>
      client.query(`
        CREATE TABLE measures (region text, id int, v numeric, PRIMARY KEY (region, id))
          PARTITION BY LIST (region);
        CREATE TABLE measures_eu PARTITION OF measures FOR VALUES IN ('EU');
        CREATE TABLE measures_us PARTITION OF measures FOR VALUES IN ('US');
        CREATE TABLE measures_other PARTITION OF measures DEFAULT;
        CREATE TABLE plain (id int PRIMARY KEY);`),
    );
  });

  const migrate = async (input: AuditTrailConfigInput) =>
    migrateTarget({
      config: parseConfig(input),
      sourceUrl,
      targetUrl: await createTestDatabase('partchktgt'),
    });

  it('a partitioned table without partitions, or with one missing, names the leaves and the remedy', async () => {
    const none = migrate({ tables: [{ table: 'measures' }] });
    await expect(none).rejects.toBeInstanceOf(SourceTableError);
    await expect(none).rejects.toThrow(
      /public\.measures is partitioned and tables\[\]\.partitions is not set: leaf partition\(s\) measures_eu, measures_other, measures_us not listed.*add .* to partitions, then redeploy the DMS task mapping/,
    );
    await expect(
      migrate({ tables: [{ table: 'measures', partitions: ['measures_eu', 'measures_us'] }] }),
    ).rejects.toThrow(/misses: leaf partition\(s\) measures_other not listed/);
    await expect(migrate({ tables: [MEASURES, { table: 'plain' }] })).resolves.toBeDefined();
  });

  it('a name that is not a leaf partition of the table, and partitions on a plain table', async () => {
    await expect(
      migrate({ tables: [{ table: 'measures', partitions: [...MEASURES.partitions, 'plain'] }] }),
    ).rejects.toThrow(
      /public\.measures: tables\[\]\.partitions names plain, which is not a leaf partition/,
    );
    await expect(
      migrate({ tables: [{ table: 'plain', partitions: ['measures_eu'] }] }),
    ).rejects.toThrow(
      /public\.plain is not a partitioned table but tables\[\]\.partitions lists measures_eu/,
    );
  });

  it('a partition attached later (or detached) makes migrate and doctor fail until the list is updated', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE measures_ap PARTITION OF measures FOR VALUES IN ('AP')`),
    );
    await expect(migrate({ tables: [MEASURES] })).rejects.toThrow(
      /leaf partition\(s\) measures_ap not listed/,
    );
    const doctor = await runCli([
      'doctor',
      '--config',
      await writeConfig({ tables: [MEASURES] }),
      '--source-url',
      sourceUrl,
      '--json',
    ]);
    expect(doctor.code).toBe(1);
    const checks = JSON.parse(doctor.stdout) as { check: string; status: string; detail: string }[];
    expect(checks.find((c) => c.check === 'partitions (DMS mapping)')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/measures_ap not listed/),
    });
    const updated = { table: 'measures', partitions: [...MEASURES.partitions, 'measures_ap'] };
    await expect(migrate({ tables: [updated] })).resolves.toBeDefined();
    // Detached, it is an ordinary table: DMS would capture its changes as this history.
    await withClient(sourceUrl, (client) =>
      client.query(`ALTER TABLE measures DETACH PARTITION measures_ap`),
    );
    await expect(migrate({ tables: [updated] })).rejects.toThrow(
      /names measures_ap, which is not a leaf partition of public\.measures/,
    );
  });
});
