import { RemovalPolicy } from 'aws-cdk-lib';
import * as rds from 'aws-cdk-lib/aws-rds';
import { acknowledge } from '../nag';

/**
 * Characters left out of generated database passwords: DMS rejects `; . : +` in endpoint
 * passwords, RDS rejects `/ @ " ` and space, and `%` or `'` would need escaping in URLs
 * and shells.
 */
export const PASSWORD_EXCLUDED_CHARACTERS = ` ;.:+%'"@/\\\`$&`;

/**
 * Parameters every kit-created database gets: `rds.force_ssl = 1` refuses any client that
 * does not use TLS (dynamic: no reboot).
 */
export const TLS_PARAMETERS: Readonly<Record<string, string>> = { 'rds.force_ssl': '1' };

/** The Aurora PostgreSQL engine for a version such as `16.6`. */
export function auroraPostgres(version: string): rds.IClusterEngine {
  const major = version.split('.')[0] ?? version;
  return rds.DatabaseClusterEngine.auroraPostgres({
    version: rds.AuroraPostgresEngineVersion.of(version, major),
  });
}

/** The RDS for PostgreSQL (DB instance) engine for a version such as `16.6`. */
export function rdsPostgres(version: string): rds.IInstanceEngine {
  const major = version.split('.')[0] ?? version;
  return rds.DatabaseInstanceEngine.postgres({
    version: rds.PostgresEngineVersion.of(version, major),
  });
}

/** Production keeps databases when the stack goes; otherwise a final snapshot is kept. */
export function databaseRemovalPolicy(production: boolean): RemovalPolicy {
  return production ? RemovalPolicy.RETAIN : RemovalPolicy.SNAPSHOT;
}

/**
 * The cdk-nag findings a kit-created cluster or instance carries on purpose: outside
 * production deletion protection is off so a test stack can be torn down (a final snapshot is still kept), and an instance without a standby is
 * what the config asked for.
 */
export function acknowledgeDatabaseFindings(
  database: rds.DatabaseCluster | rds.DatabaseInstance,
  options: { readonly production: boolean; readonly multiAz?: boolean },
): void {
  if (!options.production) {
    acknowledge(
      database,
      'deployment.production is false: deletion protection is off so the stack can be destroyed; removal policy SNAPSHOT keeps a final snapshot',
      'AwsSolutions-RDS10',
    );
  }
  if (database instanceof rds.DatabaseInstance) {
    acknowledge(
      database,
      'the instance is reachable only from the kit’s own security groups inside private subnets; a non-default port would hide nothing from a client that may connect and breaks tools that assume 5432',
      'AwsSolutions-RDS11',
    );
  }
  if (options.multiAz === false) {
    acknowledge(
      database,
      'multiAz is false (the default outside production, or set so in the config): a single-AZ instance is cheaper; backups and the final snapshot still protect the data',
      'AwsSolutions-RDS3',
    );
  }
}
