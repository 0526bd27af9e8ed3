import { Logger } from '@aws-lambda-powertools/logger';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { runCanary } from '../../access-audit/canary';
import { identifierSchema } from '../../config/identifier';
import { describeIssues } from '../../config/errors';
import { connectClient } from '../../postgres/connect';
import { LambdaSettingsError } from '../access-alert/settings';
import { databaseUrl, type DatabaseLocation } from '../shared/database-url';

/** Environment variables the canary Lambda reads. */
export const CANARY_ENV = {
  /** Secret with the canary role's `username` and `password` (and `host`/`port` unless set below). */
  secretArn: 'CANARY_SECRET_ARN',
  /** Database the canary connects to: one where pgAudit is set up. */
  database: 'CANARY_DATABASE',
  /** Host; read from the secret when unset. */
  host: 'CANARY_HOST',
  /** Port; read from the secret when unset. */
  port: 'CANARY_PORT',
  /** The configured canary role: the secret must log in as exactly this role. */
  role: 'CANARY_ROLE',
  /** `verify-full` (default); `disable` exists only for tests against a local server. */
  sslMode: 'CANARY_SSL_MODE',
} as const;

const envSchema = z.object({
  [CANARY_ENV.secretArn]: z
    .string({ error: 'is required' })
    .regex(/^arn:aws[a-z-]*:secretsmanager:/, 'must be a Secrets Manager secret ARN'),
  [CANARY_ENV.database]: identifierSchema,
  [CANARY_ENV.host]: z.string().min(1).optional(),
  [CANARY_ENV.port]: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a port number')
    .optional(),
  [CANARY_ENV.role]: identifierSchema,
  [CANARY_ENV.sslMode]: z.enum(['verify-full', 'disable']).default('verify-full'),
});

/** The canary Lambda's validated settings. */
export interface CanarySettings {
  readonly location: DatabaseLocation;
  readonly role: string;
}

/**
 * Reads and validates the environment.
 * @throws LambdaSettingsError naming each bad variable.
 */
export function loadCanarySettings(env: NodeJS.ProcessEnv = process.env): CanarySettings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success)
    throw new LambdaSettingsError(`invalid environment:\n${describeIssues(parsed.error)}`);
  const values = parsed.data;
  const host = values[CANARY_ENV.host];
  const port = values[CANARY_ENV.port];
  return {
    role: values[CANARY_ENV.role],
    location: {
      SecretArn: values[CANARY_ENV.secretArn],
      DatabaseName: values[CANARY_ENV.database],
      SslMode: values[CANARY_ENV.sslMode],
      ...(host === undefined ? {} : { Host: host }),
      ...(port === undefined ? {} : { Port: port }),
    },
  };
}

/** What one run did. */
export interface CanaryRun {
  /** The nonce the alert Lambda must see in the log. */
  readonly nonce: string;
  readonly database: string;
}

/** Options for {@link createCanaryHandler}; clients are injectable for tests. */
export interface CanaryHandlerOptions {
  settings: CanarySettings;
  secrets?: SecretsManagerClient;
  logger?: Logger;
}

/**
 * Builds the scheduled handler: read the canary's secret, log in as the canary role
 * (verified TLS), run the canary statement and log its nonce. Any failure throws, so it
 * shows as a Lambda error; the missing `CanarySeen` then fires the canary alarm too.
 * A secret for any other login is refused: run as the master user, the canary would
 * hold far more than it needs and prove nothing about the canary role's settings.
 */
export function createCanaryHandler(options: CanaryHandlerOptions): () => Promise<CanaryRun> {
  const { settings } = options;
  const secrets = options.secrets ?? new SecretsManagerClient({});
  const logger = options.logger ?? new Logger({ serviceName: 'access-audit-canary' });
  return async () => {
    const url = await databaseUrl(secrets, settings.location);
    const login = decodeURIComponent(new URL(url).username);
    if (login !== settings.role)
      throw new Error(
        `the canary secret logs in as "${login}", not the canary role "${settings.role}"`,
      );
    const client = await connectClient(url, 'audit-trail-canary', 'source');
    try {
      const nonce = await runCanary(client);
      logger.info('canary ran', { nonce, role: login, database: settings.location.DatabaseName });
      return { nonce, database: settings.location.DatabaseName };
    } finally {
      await client.end();
    }
  };
}
