import { taskFingerprint } from '../../infra/audit-trail-stack';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';

const base: AuditTrailConfigInput = {
  tables: [{ table: 'orders', ignoreColumns: ['updated_at'] }],
  deployment: { source: { mode: 'new' } },
};
const fingerprint = (input: AuditTrailConfigInput) => taskFingerprint(parseConfig(input));

describe('task fingerprint (when an update stops and resumes the task)', () => {
  it('changes with the tables, the task settings and the DMS mode', () => {
    const original = fingerprint(base);
    expect(
      fingerprint({ ...base, tables: [{ table: 'orders' }, { table: 'customers' }] }),
    ).not.toBe(original);
    expect(fingerprint({ ...base, deployment: { dms: { lobMode: 'limited' } } })).not.toBe(
      original,
    );
    expect(fingerprint({ ...base, deployment: { dms: { mode: 'serverless' } } })).not.toBe(
      original,
    );
  });

  it('stays the same for changes that do not modify the task, so it keeps running', () => {
    const original = fingerprint(base);
    expect(fingerprint({ ...base, tables: [{ table: 'orders', ignoreColumns: [] }] })).toBe(
      original,
    );
    expect(
      fingerprint({
        ...base,
        deployment: {
          alarmEmail: 'ops@example.com',
          source: { mode: 'new', clusterParameters: { shared_preload_libraries: 'pgaudit' } },
          dms: { cdcLatencyAlarmSeconds: 60 },
        },
      }),
    ).toBe(original);
  });
});
