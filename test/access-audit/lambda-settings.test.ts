import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { ENV, loadSettings, settingsConfigJson } from '../../src/lambda/access-alert/settings';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:alerts';

/** The settings a deployed access-audit Lambda reads back from what its construct wrote. */
function roundTrip(section: unknown) {
  const config = parseAccessAuditConfig(section);
  return loadSettings({
    [ENV.topicArn]: TOPIC_ARN,
    [ENV.config]: settingsConfigJson(config, 'Test'),
  }).config;
}

describe('the access-audit Lambdas read the config the construct serialised', () => {
  it('keeps how the source writes its log, so a csvlog or jsonlog source is not parsed as stderr', () => {
    const config = roundTrip({ logFormat: 'csvlog', pgauditLogLevel: 'notice' });
    expect(config.logFormat).toBe('csvlog');
    expect(config.pgauditLogLevel).toBe('notice');
  });

  it('keeps the rules, exclusions and alert settings', () => {
    const section = {
      serviceAccounts: ['app_svc'],
      ignoreSchemas: ['scratch'],
      defaultRules: { humanReads: true },
      rules: [{ name: 'billing', objects: ['billing.*'] }],
      alerts: { digestThreshold: 3, subjectPrefix: '[prod]' },
      sqs: { forward: 'events' as const, ignoreUsers: ['etl'] },
    };
    const expected = parseAccessAuditConfig(section);
    const config = roundTrip(section);
    expect(config.serviceAccounts).toEqual(expected.serviceAccounts);
    expect(config.ignoreSchemas).toEqual(expected.ignoreSchemas);
    expect(config.defaultRules).toEqual(expected.defaultRules);
    expect(config.rules).toEqual(expected.rules);
    expect(config.alerts.digestThreshold).toBe(3);
    expect(config.alerts.subjectPrefix).toBe('[prod]');
    expect(config.sqs.forward).toBe('events');
    expect(config.sqs.ignoreUsers).toEqual(['etl']);
  });

  it('refuses rules too large for a Lambda environment, naming the construct', () => {
    const rules = Array.from({ length: 80 }, (_, index) => ({
      name: `rule-${index}`,
      objects: [`schema_${index}.table_with_a_long_name_${index}`],
    }));
    expect(() => settingsConfigJson(parseAccessAuditConfig({ rules }), 'Owner')).toThrow(
      /^Owner: the accessAudit rules and lists take \d+ bytes/,
    );
  });
});
