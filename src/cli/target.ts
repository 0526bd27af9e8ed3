import type { Kysely } from 'kysely';
import type { AuditTrailConfig } from '../config';
import { resolveDeployment } from '../config/deployment';
import { createDataApiKysely } from '../data-api';
import { createKysely } from '../postgres/connect';
import { requireTarget, type TargetConnection, type TargetOptions } from './options';

/** The target named by the command line; the Data API's database defaults to the config's. */
export function targetConnection(
  options: TargetOptions,
  config: AuditTrailConfig,
): TargetConnection {
  return requireTarget(options, resolveDeployment(config.deployment).target.databaseName);
}

/** A kysely instance on the target, over a PostgreSQL connection or the Data API. */
export function openTarget<DB = unknown>(target: TargetConnection): Kysely<DB> {
  return target.kind === 'url'
    ? createKysely<DB>(target.url, { max: 1, label: 'target' })
    : createDataApiKysely<DB>(target);
}
