import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { Logger } from '@aws-lambda-powertools/logger';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AccessAuditPipeline,
  AccessRuleEngine,
  canaryNonceOf,
  canaryStatement,
  createAuditParser,
  newCanaryNonce,
} from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { createCanaryHandler, loadCanarySettings } from '../../src/lambda/access-canary/handler';
import { LambdaSettingsError } from '../../src/lambda/access-alert/settings';
import { subscriptionEvent, testHandler } from './support/lambda';

const CONFIG = parseAccessAuditConfig({ auditedRoles: ['alice'], serviceAccounts: ['app_svc'] });
const PREFIX = (user: string) =>
  `2026-12-02 02:40:00 UTC:10.1.2.3(42618):${user}@appdb:[10157]:LOG:  AUDIT: `;
const NONCE = '1764643200000-0123456789abcdef';
const CANARY_RECORD = `${PREFIX('audit_trail_canary')}SESSION,1,1,READ,SELECT,,,SELECT 'audit-trail-canary:${NONCE}' AS audit_trail_canary,<none>`;

function event(record: string) {
  const parsed = createAuditParser()(record);
  if (parsed === undefined) throw new Error('not a record');
  return parsed;
}

describe('canary recognition', () => {
  const engine = new AccessRuleEngine(CONFIG);

  it('the canary role running the canary statement is the canary, not a health check', () => {
    expect(canaryStatement(NONCE)).toBe(
      `SELECT 'audit-trail-canary:${NONCE}' AS audit_trail_canary`,
    );
    expect(canaryNonceOf(event(CANARY_RECORD), 'audit_trail_canary')).toBe(NONCE);
    expect(canaryNonceOf(event(CANARY_RECORD), 'other_canary')).toBeUndefined();
    expect(engine.evaluate(event(CANARY_RECORD))).toEqual({ kind: 'canary', nonce: NONCE });
    expect(newCanaryNonce(new Date(1764643200000))).toMatch(/^1764643200000-[0-9a-f]{16}$/);
  });

  it('the same text from anyone else is not the canary', () => {
    const human = CANARY_RECORD.replace('audit_trail_canary@', 'alice@');
    expect(engine.evaluate(event(human))).toEqual({ kind: 'noise', reason: 'health-check' });
  });

  it('an ambiguous prefix, an OBJECT record or any other text by the canary role is not the canary', () => {
    // `%u@%d` with a role named "audit_trail_canary@appdb": the split is ambiguous.
    const ambiguous = CANARY_RECORD.replace(
      'audit_trail_canary@appdb',
      'audit_trail_canary@appdb@appdb',
    );
    expect(engine.evaluate(event(ambiguous)).kind).toBe('alert');
    const object = CANARY_RECORD.replace('SESSION,1,1', 'OBJECT,1,1');
    expect(engine.evaluate(event(object)).kind).not.toBe('canary');
    const smuggled = CANARY_RECORD.replace(
      ' AS audit_trail_canary',
      ' AS audit_trail_canary; SELECT * FROM billing.cards',
    );
    expect(engine.evaluate(event(smuggled)).kind).not.toBe('canary');
    // Anything else the canary login runs is judged like a human's.
    const write = `${PREFIX('audit_trail_canary')}SESSION,2,1,WRITE,UPDATE,TABLE,public.items,UPDATE items SET name = 'x',<none>`;
    expect(engine.evaluate(event(write))).toMatchObject({
      kind: 'alert',
      alert: { rule: 'human-dml' },
    });
  });

  it('a canary record forged with RAISE LOG is a forgery alert, never the canary', () => {
    const pipeline = new AccessAuditPipeline(CONFIG);
    const outcomes = [
      ...pipeline.push(CANARY_RECORD, undefined),
      ...pipeline.push(
        `2026-12-02 02:40:00 UTC:10.1.2.3(42618):audit_trail_canary@appdb:[10157]:CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE`,
        undefined,
      ),
      ...pipeline.flush(),
    ];
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      kind: 'verdict',
      verdict: { kind: 'alert', alert: { rule: 'forged-audit-record' } },
    });
  });

  it('refuses a nonce that is not plain text', () => {
    expect(() => canaryStatement("x' OR '1")).toThrow(/invalid canary nonce/);
  });

  it('the config refuses a canary role that is also audited or a service account', () => {
    expect(() => parseAccessAuditConfig({ auditedRoles: ['audit_trail_canary'] })).toThrow(
      /is the canary role/,
    );
    expect(() =>
      parseAccessAuditConfig({ serviceAccounts: ['probe'], canary: { role: 'probe' } }),
    ).toThrow(/also a service account/);
    expect(() => parseAccessAuditConfig({ canary: { intervalMinutes: 0 } })).toThrow();
  });
});

describe('alert Lambda: CanarySeen', () => {
  const sns = mockClient(SNSClient);
  beforeEach(() => {
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'id' });
  });

  it('publishes CanarySeen for the canary record and alerts nobody', async () => {
    const { handler, metrics } = testHandler(
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', fifo: false, config: CONFIG },
      { sns: new SNSClient({}) },
    );
    const stats = await handler(subscriptionEvent([CANARY_RECORD]));
    expect(stats).toMatchObject({ auditEvents: 1, canaries: 1, alerts: 0 });
    expect(metrics.totals()).toMatchObject({ CanarySeen: 1, Alerts: 0 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('publishes CanarySeen = 0 when a delivery has no canary', async () => {
    const { handler, metrics } = testHandler(
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', fifo: false, config: CONFIG },
      { sns: new SNSClient({}) },
    );
    await handler(subscriptionEvent([CANARY_RECORD.replace('audit_trail_canary@', 'alice@')]));
    expect(metrics.totals().CanarySeen).toBe(0);
  });
});

describe('canary Lambda', () => {
  const secrets = mockClient(SecretsManagerClient);
  const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:canary-AbCdEf';
  const env = {
    CANARY_SECRET_ARN: SECRET_ARN,
    CANARY_DATABASE: 'appdb',
    CANARY_ROLE: 'audit_trail_canary',
  };
  const logger = new Logger({ serviceName: 'access-audit-canary', logLevel: 'SILENT' });
  beforeEach(() => secrets.reset());

  it('reads its environment and names each bad variable', () => {
    expect(loadCanarySettings({ ...env, CANARY_HOST: 'db.internal', CANARY_PORT: '5433' })).toEqual(
      {
        role: 'audit_trail_canary',
        location: {
          SecretArn: SECRET_ARN,
          DatabaseName: 'appdb',
          SslMode: 'verify-full',
          Host: 'db.internal',
          Port: '5433',
        },
      },
    );
    expect(() => loadCanarySettings({ ...env, CANARY_SECRET_ARN: 'secret' })).toThrow(
      LambdaSettingsError,
    );
    expect(() => loadCanarySettings({ ...env, CANARY_SECRET_ARN: 'secret' })).toThrow(
      /CANARY_SECRET_ARN: must be a Secrets Manager secret ARN/,
    );
    expect(() => loadCanarySettings({ ...env, CANARY_ROLE: undefined })).toThrow(/CANARY_ROLE/);
    expect(() => loadCanarySettings({ ...env, CANARY_PORT: 'x' })).toThrow(
      /CANARY_PORT: must be a port number/,
    );
  });

  it('refuses a secret for any login but the canary role, before connecting', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({
      SecretString: JSON.stringify({ username: 'postgres', password: 'p', host: '127.0.0.1' }),
    });
    const handler = createCanaryHandler({
      settings: loadCanarySettings(env),
      secrets: new SecretsManagerClient({}),
      logger,
    });
    await expect(handler()).rejects.toThrow(
      'the canary secret logs in as "postgres", not the canary role "audit_trail_canary"',
    );
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('fails loudly when the secret has no password', async () => {
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ username: 'audit_trail_canary', host: '127.0.0.1' }),
    });
    const handler = createCanaryHandler({
      settings: loadCanarySettings(env),
      secrets: new SecretsManagerClient({}),
      logger,
    });
    await expect(handler()).rejects.toThrow(/needs username and password/);
  });
});
