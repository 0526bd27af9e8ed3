import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseConfig } from '../../config';
import { migrateTarget, type MigrateReport } from '../../migrate/migrate-target';
import type { CustomResourceEvent, OnEventResponse } from '../shared/custom-resource';
import { databaseUrl, type DatabaseLocation } from '../shared/database-url';

export type { DatabaseLocation } from '../shared/database-url';

/**
 * Properties of the `Custom::AuditTrailMigrations` resource. `Config` is the config
 * JSON (change-history part), so the resource is updated, and the migrations re-run,
 * exactly when the audited tables change.
 */
export interface MigrationsProperties {
  readonly Config: string;
  /**
   * The kit version that synthesized the stack (`currentKitVersion()`): not read by the
   * handler; it changes with every kit upgrade so that `cdk deploy` re-runs the migrations.
   */
  readonly KitVersion?: string;
  readonly Source: DatabaseLocation;
  readonly Target: DatabaseLocation;
}

/** The event the CDK custom-resource provider framework passes to onEvent. */
export type MigrationsEvent = CustomResourceEvent<MigrationsProperties>;

/** Dependencies, replaced in tests. */
export interface MigrationsDependencies {
  readonly secrets: SecretsManagerClient;
  readonly migrate?: typeof migrateTarget;
  readonly log?: (message: string) => void;
}

/** Handles one custom-resource event; exported for tests, wrapped by {@link handler}. */
export async function runMigrations(
  event: MigrationsEvent,
  deps: MigrationsDependencies,
): Promise<OnEventResponse> {
  const physicalId = event.PhysicalResourceId ?? 'audit-trail-migrations';
  // Deleting the stack must never drop the audit log: migrations only ever add.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  const props = event.ResourceProperties;
  const config = parseConfig(JSON.parse(props.Config) as unknown, 'Config property');
  const [sourceUrl, targetUrl] = await Promise.all([
    databaseUrl(deps.secrets, props.Source),
    databaseUrl(deps.secrets, props.Target),
  ]);
  const report: MigrateReport = await (deps.migrate ?? migrateTarget)({
    config,
    sourceUrl,
    targetUrl,
    log: deps.log ?? console.log,
  });
  return {
    PhysicalResourceId: physicalId,
    Data: { Applied: report.applied.join(','), Tables: String(report.tables.length) },
  };
}

let secrets: SecretsManagerClient | undefined;

/** Lambda entry point (onEvent of a CDK custom-resource provider). */
export async function handler(event: MigrationsEvent) {
  secrets ??= new SecretsManagerClient({});
  return runMigrations(event, { secrets });
}
