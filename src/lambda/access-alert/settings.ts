import { z } from 'zod';
import { describeIssues } from '../../config/errors';
import { accessAuditSchema, type AccessAuditConfig } from '../../config/access-audit';

/** Thrown at cold start for a missing or invalid environment variable; names the variable. */
export class LambdaSettingsError extends Error {
  override readonly name = 'LambdaSettingsError';
}

/** Environment variables the alert Lambda reads. */
export const ENV = {
  /** ARN of the SNS topic alerts go to. */
  topicArn: 'ALERT_TOPIC_ARN',
  /** URL of the optional SQS queue events are forwarded to (FIFO when it ends in `.fifo`). */
  queueUrl: 'FORWARD_QUEUE_URL',
  /** The `accessAudit` config section as JSON (rules, exclusions, alert settings). */
  config: 'ACCESS_AUDIT_CONFIG',
} as const;

const envSchema = z.object({
  [ENV.topicArn]: z
    .string({ error: 'is required' })
    .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+(\.fifo)?$/, 'must be an SNS topic ARN'),
  [ENV.queueUrl]: z
    .string()
    .url('must be an SQS queue URL')
    .optional()
    .or(z.literal('').transform(() => undefined)),
  [ENV.config]: z.string({ error: 'is required' }),
});

/** The Lambda's validated settings. */
export interface AlertLambdaSettings {
  readonly topicArn: string;
  readonly queueUrl?: string;
  /** True when the queue is FIFO: messages carry a group id and a deduplication id. */
  readonly fifo: boolean;
  readonly config: AccessAuditConfig;
}

/**
 * Reads and validates the environment.
 * @throws LambdaSettingsError naming each bad variable (and config field).
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): AlertLambdaSettings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success)
    throw new LambdaSettingsError(`invalid environment:\n${describeIssues(parsed.error)}`);
  const values = parsed.data;
  let json: unknown;
  try {
    json = JSON.parse(values[ENV.config]);
  } catch (error) {
    throw new LambdaSettingsError(`${ENV.config}: not valid JSON: ${(error as Error).message}`);
  }
  const config = accessAuditSchema.safeParse(json);
  if (!config.success) {
    const issues = describeIssues(config.error).replace(/^/gm, `${ENV.config}.`);
    throw new LambdaSettingsError(`invalid environment:\n${issues}`);
  }
  const queueUrl = values[ENV.queueUrl];
  return {
    topicArn: values[ENV.topicArn],
    ...(queueUrl ? { queueUrl } : {}),
    fifo: queueUrl?.endsWith('.fifo') ?? false,
    config: config.data,
  };
}

/** Lambda environment variables may total at most 4 KB; this leaves room for the others. */
const MAX_CONFIG_ENV_BYTES = 3500;

/**
 * The part of the `accessAudit` section the access-audit Lambdas read ({@link loadSettings}),
 * as the JSON of {@link ENV}.config: one serialisation for the alert and the DAS functions.
 * @param owner names the construct in the error when the JSON is too large.
 * @throws Error when the rules and lists do not fit a Lambda environment.
 */
export function settingsConfigJson(config: AccessAuditConfig, owner: string): string {
  const { alerts, sqs: queue } = config;
  const json = JSON.stringify({
    serviceAccounts: config.serviceAccounts,
    ignoreDatabases: config.ignoreDatabases,
    ignoreSchemas: config.ignoreSchemas,
    defaultRules: config.defaultRules,
    rules: config.rules,
    logLinePrefix: config.logLinePrefix,
    // How the source writes its log: without these a csvlog/jsonlog source is read as stderr.
    logFormat: config.logFormat,
    pgauditLogLevel: config.pgauditLogLevel,
    // Only the role: the Lambda recognises the canary's records by it.
    canary: { role: config.canary.role },
    alerts: {
      digestThreshold: alerts.digestThreshold,
      maxStatementLength: alerts.maxStatementLength,
      subjectPrefix: alerts.subjectPrefix,
    },
    sqs: {
      forward: queue.forward,
      format: queue.format,
      ignoreUsers: queue.ignoreUsers,
      ignoreDatabases: queue.ignoreDatabases,
    },
  });
  if (Buffer.byteLength(json) > MAX_CONFIG_ENV_BYTES) {
    throw new Error(
      `${owner}: the accessAudit rules and lists take ${Buffer.byteLength(json)} bytes; Lambda environment variables allow about ${MAX_CONFIG_ENV_BYTES}`,
    );
  }
  return json;
}
