import { ConfigError, parseConfig } from '../../src/config';
import { pgauditLogClasses } from '../../src/access-audit/pgaudit-log-classes';

/** `parseConfig`'s message for an access-audit section, or undefined when it is valid. */
function refusal(accessAudit: Record<string, unknown>): string | undefined {
  try {
    parseConfig({
      tables: [{ schema: 'public', table: 'items', primaryKey: ['id'] }],
      accessAudit,
    });
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
}

describe('pgaudit.log values the access audit relies on', () => {
  it("reads a value as pgAudit does: classes, 'all', '-' to take one away, 'none' adding nothing", () => {
    expect([...pgauditLogClasses('ddl,role')].sort()).toEqual(['ddl', 'role']);
    expect([...pgauditLogClasses(' ALL , -misc ')].sort()).toEqual([
      'ddl',
      'function',
      'read',
      'role',
      'write',
    ]);
    expect([...pgauditLogClasses('misc, -misc_set, "ROLE"')].sort()).toEqual(['misc', 'role']);
    expect([...pgauditLogClasses('none, role')]).toEqual(['role']);
    expect(() => pgauditLogClasses('read,rol')).toThrow(/"rol" is not a pgaudit.log class/);
  });

  it('refuses an audited roles value without ROLE or MISC_SET: their ALTER ROLE ... SET or SET pgaudit.log would leave no record', () => {
    expect(refusal({ pgauditLog: 'read, write' })).toMatch(/accessAudit\.pgauditLog.*ROLE class/s);
    expect(refusal({ pgauditLog: 'all, -role' })).toMatch(/accessAudit\.pgauditLog/);
    expect(refusal({ pgauditLog: 'read,wirte' })).toMatch(
      /accessAudit\.pgauditLog.*"wirte" is not a pgaudit.log class/s,
    );
    expect(refusal({ pgauditLog: 'read, write, role' })).toMatch(
      /accessAudit\.pgauditLog.*MISC_SET class/s,
    );
    expect(refusal({ pgauditLog: 'read, write, role, misc_set' })).toBeUndefined();
    expect(refusal({})).toBeUndefined();
  });

  it('refuses a cluster value without DDL and ROLE, which cover the roles nobody listed', () => {
    expect(refusal({ clusterPgauditLog: 'role' })).toMatch(/accessAudit\.clusterPgauditLog.*DDL/s);
    expect(refusal({ clusterPgauditLog: 'none' })).toMatch(/accessAudit\.clusterPgauditLog/);
    expect(refusal({ clusterPgauditLog: 'all' })).toBeUndefined();
  });

  it('refuses a stderr log_line_prefix that names no user, database or process', () => {
    expect(refusal({ logLinePrefix: '%t:%r:%d:[%p]:' })).toMatch(/accessAudit\.logLinePrefix.*%u/s);
    expect(refusal({ logLinePrefix: '%m %u@%d ' })).toMatch(/accessAudit\.logLinePrefix.*%p/s);
    expect(refusal({ logLinePrefix: '%m [%p] %q%u@%d ' })).toBeUndefined();
    // csvlog and jsonlog carry every field whatever the prefix says.
    expect(refusal({ logFormat: 'csvlog', logLinePrefix: '%m ' })).toBeUndefined();
  });
});
