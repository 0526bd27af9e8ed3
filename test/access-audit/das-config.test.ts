import { ConfigError, parseConfig } from '../../src/config';

/** `parseConfig`'s message for an input, or undefined when it is valid. */
function refusal(input: unknown): string | undefined {
  try {
    parseConfig(input);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
}

const TABLES = { tables: [{ schema: 'public', table: 'items', primaryKey: ['id'] }] };

describe('accessAudit.activityStream config', () => {
  it('takes the stream settings, with defaults for the rest', () => {
    const config = parseConfig({
      ...TABLES,
      accessAudit: { activityStream: { enabled: true, mode: 'sync' } },
    });
    expect(config.accessAudit?.activityStream).toEqual({
      enabled: true,
      mode: 'sync',
      batchSize: 100,
      retryAttempts: 3,
      parallelizationFactor: 1,
      quietMinutes: 15,
    });
  });

  it('takes the archive the issue shows, with defaults for the rest', () => {
    const config = parseConfig({
      ...TABLES,
      accessAudit: {
        activityStream: {
          enabled: true,
          archive: { retentionDays: 2555, glacierAfterDays: 90, format: 'parquet' },
        },
      },
    });
    expect(config.accessAudit?.activityStream?.archive).toEqual({
      enabled: true,
      retentionDays: 2555,
      glacierAfterDays: 90,
      format: 'parquet',
      objectLock: 'off',
    });
    // No section, no archive: it costs money and is asked for explicitly.
    expect(
      parseConfig({ ...TABLES, accessAudit: { activityStream: { enabled: true } } }).accessAudit
        ?.activityStream?.archive,
    ).toBeUndefined();
  });

  it('is off unless asked for: no section, and an empty section, start nothing', () => {
    expect(parseConfig({ ...TABLES, accessAudit: {} }).accessAudit?.activityStream).toBeUndefined();
    expect(
      parseConfig({ ...TABLES, accessAudit: { activityStream: {} } }).accessAudit?.activityStream
        ?.enabled,
    ).toBe(false);
  });

  it('names the field of every bad value', () => {
    const bad = (activityStream: unknown) =>
      refusal({ ...TABLES, accessAudit: { activityStream } });
    expect(bad({ mode: 'fast' })).toMatch(/accessAudit\.activityStream\.mode:/);
    expect(bad({ archive: { format: 'csv' } })).toMatch(
      /accessAudit\.activityStream\.archive\.format:/,
    );
    expect(bad({ archive: { objectLock: 'yes' } })).toMatch(
      /accessAudit\.activityStream\.archive\.objectLock:/,
    );
    expect(bad({ archive: { retentionDays: 0 } })).toMatch(
      /accessAudit\.activityStream\.archive\.retentionDays:/,
    );
    expect(bad({ archive: { retentionDays: 60, glacierAfterDays: 90 } })).toMatch(
      /accessAudit\.activityStream\.archive\.glacierAfterDays: must be less than retentionDays \(60\)/,
    );
    expect(bad({ batchSize: 20_000 })).toMatch(/accessAudit\.activityStream\.batchSize:/);
    // Lambda reads at most ten batches of one shard at once.
    expect(bad({ parallelizationFactor: 11 })).toMatch(
      /accessAudit\.activityStream\.parallelizationFactor:/,
    );
    expect(bad({ parallelizationFactor: 0 })).toMatch(
      /accessAudit\.activityStream\.parallelizationFactor:/,
    );
    // Shorter than a few heartbeats would alarm on a healthy idle cluster; CloudWatch
    // evaluates at most one day of one-minute periods.
    expect(bad({ quietMinutes: 4 })).toMatch(/accessAudit\.activityStream\.quietMinutes:/);
    expect(bad({ quietMinutes: 1441 })).toMatch(/accessAudit\.activityStream\.quietMinutes:/);
    expect(bad({ quietMinutes: 7.5 })).toMatch(/accessAudit\.activityStream\.quietMinutes:/);
    expect(bad({ enabled: true, kmsKey: 'x' })).toMatch(
      /accessAudit\.activityStream: Unrecognized key: "kmsKey"/,
    );
  });

  it('is refused, with the reason, on the Serverless v2 source cluster the kit creates', () => {
    const withSource = (enabled: boolean) =>
      refusal({
        ...TABLES,
        accessAudit: { activityStream: { enabled } },
        deployment: { source: { mode: 'new' } },
      });
    expect(withSource(true)).toMatch(
      /accessAudit\.activityStream\.enabled: Database Activity Streams are not supported on Aurora Serverless v2/,
    );
    // Switched off, the section may stay.
    expect(withSource(false)).toBeUndefined();
  });

  it('is refused, with the reason, for an RDS for PostgreSQL instance source', () => {
    expect(
      refusal({
        ...TABLES,
        accessAudit: { activityStream: { enabled: true } },
        deployment: { source: { mode: 'new', engine: 'postgres' } },
      }),
    ).toMatch(
      /accessAudit\.activityStream: Database Activity Streams are not available for RDS for PostgreSQL DB instances/,
    );
  });
});
