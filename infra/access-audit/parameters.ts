import * as logs from 'aws-cdk-lib/aws-logs';
import {
  accessAuditSchema,
  type AccessAuditConfig,
  type AccessAuditConfigInput,
} from '../../src/config/access-audit';
import { RDS_AUDIT_ROLE } from '../../src/access-audit/setup';

/** Options of {@link pgauditClusterParameters} beyond the config. */
export interface PgauditParameterOptions {
  /**
   * Libraries already preloaded by the cluster parameter group; pgaudit is appended.
   * @default ["pg_stat_statements"] (Aurora PostgreSQL's default)
   */
  readonly preloadLibraries?: readonly string[];
}

/**
 * The DB *cluster* parameter group settings pgAudit needs on Aurora PostgreSQL.
 * `shared_preload_libraries` is static: the cluster must be rebooted once after it
 * changes. Per-role settings (`ALTER ROLE … SET pgaudit.log`) are applied by
 * `audit-trail pgaudit setup`, not here: they are not inherited and live in the database.
 *
 * - `pgaudit.log` cluster-wide is `accessAudit.clusterPgauditLog` (default `ddl,role`), so a
 *   role nobody listed still has its DDL and privilege changes logged;
 * - `pgaudit.log_catalog = 0` stops catalog-only statements of psql/pgAdmin/DBeaver from
 *   being logged at all (the Lambda also drops them by parsed fields);
 * - `pgaudit.log_relation = 1` gives one record per relation, so rules see object names;
 * - `log_connections`/`log_disconnections` record who connected from where.
 *
 * `log_line_prefix` is fixed by RDS to `%t:%r:%u@%d:[%p]:` and is not set here.
 */
export function pgauditClusterParameters(
  config: AccessAuditConfigInput | AccessAuditConfig = {},
  options: PgauditParameterOptions = {},
): Record<string, string> {
  const section = accessAuditSchema.parse(config);
  const libraries = [...(options.preloadLibraries ?? ['pg_stat_statements'])];
  if (!libraries.includes('pgaudit')) libraries.push('pgaudit');
  return {
    shared_preload_libraries: libraries.join(','),
    'pgaudit.role': RDS_AUDIT_ROLE,
    'pgaudit.log': section.clusterPgauditLog,
    'pgaudit.log_catalog': '0',
    'pgaudit.log_relation': section.logRelation ? '1' : '0',
    'pgaudit.log_parameter': '0',
    'pgaudit.log_statement_once': '0',
    log_connections: '1',
    log_disconnections: '1',
  };
}

/**
 * Merges pgAudit's parameters over another set, joining `shared_preload_libraries`
 * instead of overwriting it (logical replication and pgAudit both want the cluster
 * parameter group).
 */
export function mergeClusterParameters(
  base: Readonly<Record<string, string>>,
  pgaudit: Readonly<Record<string, string>>,
): Record<string, string> {
  const merged = { ...base, ...pgaudit };
  const libraries = [base.shared_preload_libraries, pgaudit.shared_preload_libraries]
    .flatMap((value) => (value ?? '').split(','))
    .map((library) => library.trim())
    .filter((library) => library !== '');
  if (libraries.length > 0) merged.shared_preload_libraries = [...new Set(libraries)].join(',');
  return merged;
}

/**
 * `accessAudit.logRetentionDays` as the CloudWatch retention to give the exported
 * PostgreSQL log (the audit record itself): the smallest allowed value that keeps the
 * log at least that long.
 */
export function accessAuditLogRetention(
  config: AccessAuditConfigInput | AccessAuditConfig = {},
): logs.RetentionDays {
  const days = accessAuditSchema.parse(config).logRetentionDays;
  const allowed = Object.values(logs.RetentionDays)
    .filter(
      (value): value is logs.RetentionDays =>
        typeof value === 'number' && value !== logs.RetentionDays.INFINITE,
    )
    .sort((a, b) => a - b);
  return allowed.find((value) => value >= days) ?? logs.RetentionDays.INFINITE;
}
