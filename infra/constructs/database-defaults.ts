import { RemovalPolicy } from 'aws-cdk-lib';
import * as rds from 'aws-cdk-lib/aws-rds';
import { acknowledge } from '../nag';

/**
 * Characters left out of generated database passwords: DMS rejects `; . : +` in endpoint
 * passwords, RDS rejects `/ @ " ` and space, and `%` or `'` would need escaping in URLs
 * and shells.
 */
export const PASSWORD_EXCLUDED_CHARACTERS = ` ;.:+%'"@/\\\`$&`;

/** The Aurora PostgreSQL engine for a version such as `16.6`. */
export function auroraPostgres(version: string): rds.IClusterEngine {
  const major = version.split('.')[0] ?? version;
  return rds.DatabaseClusterEngine.auroraPostgres({
    version: rds.AuroraPostgresEngineVersion.of(version, major),
  });
}

/** Production keeps databases when the stack goes; otherwise a final snapshot is kept. */
export function databaseRemovalPolicy(production: boolean): RemovalPolicy {
  return production ? RemovalPolicy.RETAIN : RemovalPolicy.SNAPSHOT;
}

/**
 * The cdk-nag findings a kit-created cluster carries on purpose: rotation is the
 * operator's choice, and outside production deletion protection is off so a test stack
 * can be torn down (a final snapshot is still kept).
 */
export function acknowledgeClusterFindings(
  cluster: rds.DatabaseCluster,
  production: boolean,
): void {
  // The generated secret itself (cluster.secret is its attachment).
  const secret = cluster.node.tryFindChild('Secret');
  if (secret) {
    acknowledge(
      secret,
      'rotation is enabled per environment (README, deployment): DMS endpoints and the migrations Lambda read the secret on every connection, so single-user rotation with PASSWORD_EXCLUDED_CHARACTERS is compatible',
      'AwsSolutions-SMG4',
    );
  }
  if (!production) {
    acknowledge(
      cluster,
      'deployment.production is false: deletion protection is off so the stack can be destroyed; removal policy SNAPSHOT keeps a final snapshot',
      'AwsSolutions-RDS10',
    );
  }
}
