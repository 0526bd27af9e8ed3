import { pgauditClusterParameters } from './parameters';

/**
 * `pgaudit.log` on the target for every login without its own setting: DDL, privilege
 * changes and writes. The DMS login gets `ddl,role` (its staging writes, and the
 * capture functions' inserts that run inside its session, are the pipeline itself).
 */
export const TARGET_PGAUDIT_LOG = 'ddl,role,write';

/**
 * pgAudit's parameters for the target's parameter group (cluster or instance): the same
 * settings as the source's access audit, with `pgaudit.log = ddl,role,write`, so a DBA
 * (or the migrator) writing to the audit store, changing its objects or its grants is
 * in the exported PostgreSQL log like anyone else. Bind parameters are not logged (they
 * would copy audited values into the log).
 */
export function targetPgauditParameters(): Record<string, string> {
  return pgauditClusterParameters({ clusterPgauditLog: TARGET_PGAUDIT_LOG });
}
