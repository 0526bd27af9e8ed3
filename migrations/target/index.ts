import type { Migration } from 'kysely';
import type { KitRoles } from '../../src/trust/roles';
import { auditLogMigration } from './0001-audit-log';
import { kitSqlFileMigration } from './0002-kit-sql-file';
import { cdcEnginePositionMigration } from './0003-cdc-engine-position';
import { auditedTableLifecycleMigration } from './0004-audited-table-lifecycle';
import { cdcEngineLoadedTableMigration } from './0007-cdc-engine-loaded-table';
import { LOADED_TABLE_MIGRATION } from '../../src/engine/position-store';
import { tamperEvidenceMigration } from './0005-tamper-evidence';
import { auditLogKeyHashMigration } from './0006-audit-log-key-hash';
import { schemaChangeLogMigration } from './0008-schema-change-log';
import { schemaChangeVersionBoundaryMigration } from './0009-schema-change-version-boundary';
import { sourceContextMigration } from './0010-source-context';
import { contextActorIndexMigration } from './0011-context-actor-index';
import { schemaChangePositionMigration } from './0012-schema-change-position';
import { cdcEngineLoadedPartitionMigration } from './0013-cdc-engine-loaded-partition';
import { contextRowIndexMigration } from './0014-context-row-index';
import { cdcEnginePartitionAttachmentMigration } from './0015-cdc-engine-partition-attachment';
import { reloadBaselineMigration } from './0016-reload-baseline';
import { reloadBaselineCopiedMigration } from './0017-reload-baseline-copied';
import { auditedColumnGeneratedMigration } from './0018-audited-column-generated';
import { auditLogKeyApplyOrderMigration } from './0019-audit-log-key-apply-order';
import { partitionChangeMigration } from './0020-partition-change';
import { auditedTableGeneratedColumnsMigration } from './0021-audited-table-generated-columns';
import { auditedPartitionTreeMigration } from './0022-audited-partition-tree';
import { auditLogOperationKnownMigration } from './0023-audit-log-operation-known';
import { auditLogJsonNullsMigration } from './0024-audit-log-json-nulls';
import { cdcEngineAckedPositionMigration } from './0025-cdc-engine-acked-position';
import { contextCommitIndexMigration } from './0026-context-commit-index';
import { engineRoleMigration } from './0027-engine-role';
import { auditChainInlineBlocksMigration } from './0028-audit-chain-inline-blocks';

/** One versioned migration of the kit's own tables. */
export interface KitMigration {
  /** Recorded in `<auditSchema>.kysely_migration`; never renamed once released. */
  readonly name: string;
  /** The audit schema, and the kit's role names (config `auditRoles`) for grants. */
  readonly migration: (auditSchema: string, roles: KitRoles) => Migration;
}

/**
 * The kit's versioned migrations, in order. `audit-trail migrate` runs the ones an
 * install has not run yet, then re-installs the repeatable SQL under `triggers/` whose
 * checksum changed, then brings staging tables and their triggers in line with the
 * config. So upgrading the package and running `migrate` brings any install to the
 * current version.
 *
 * Adding a migration (tables, columns, indexes, roles, grants of the kit):
 * - a file `migrations/target/NNNN-what-it-does.ts` (NNNN: the next free number) that
 *   exports `(auditSchema: string, roles: KitRoles) => Migration` (roles when it
 *   grants: never a role name pasted), appended to this list with its file
 *   name (without `.ts`) as `name`;
 * - never edit, rename or reorder a migration that has landed: installs have run it; fix
 *   forward with a new one. It must work on every install that ran the ones before it
 *   (test the upgrade from `test/migrate/fixtures/target-0.1.0.sql`);
 * - quote every identifier (`sql.id`, `quoteIdent`): the audit schema may be any name.
 *
 * Functions and triggers of the kit are not migrations: edit `triggers/*.sql` in place
 * (every statement re-runnable: `CREATE OR REPLACE`); a changed file is re-installed on
 * the next migrate. Every file is also re-installed after any versioned migration ran, so a
 * migration may drop what a file defines (to rename a function or change its arguments or
 * result type, which `CREATE OR REPLACE` cannot) and the file puts the new one in place.
 */
export const KIT_MIGRATIONS: readonly KitMigration[] = [
  { name: '0001-audit-log', migration: auditLogMigration },
  { name: '0002-kit-sql-file', migration: kitSqlFileMigration },
  { name: '0003-cdc-engine-position', migration: cdcEnginePositionMigration },
  { name: '0004-audited-table-lifecycle', migration: auditedTableLifecycleMigration },
  { name: '0005-tamper-evidence', migration: tamperEvidenceMigration },
  { name: '0006-audit-log-key-hash', migration: auditLogKeyHashMigration },
  { name: LOADED_TABLE_MIGRATION, migration: cdcEngineLoadedTableMigration },
  { name: '0008-schema-change-log', migration: schemaChangeLogMigration },
  {
    name: '0009-schema-change-version-boundary',
    migration: schemaChangeVersionBoundaryMigration,
  },
  { name: '0010-source-context', migration: sourceContextMigration },
  { name: '0011-context-actor-index', migration: contextActorIndexMigration },
  { name: '0012-schema-change-position', migration: schemaChangePositionMigration },
  { name: '0013-cdc-engine-loaded-partition', migration: cdcEngineLoadedPartitionMigration },
  { name: '0014-context-row-index', migration: contextRowIndexMigration },
  {
    name: '0015-cdc-engine-partition-attachment',
    migration: cdcEnginePartitionAttachmentMigration,
  },
  { name: '0016-reload-baseline', migration: reloadBaselineMigration },
  { name: '0017-reload-baseline-copied', migration: reloadBaselineCopiedMigration },
  { name: '0018-audited-column-generated', migration: auditedColumnGeneratedMigration },
  { name: '0019-audit-log-key-apply-order', migration: auditLogKeyApplyOrderMigration },
  { name: '0020-partition-change', migration: partitionChangeMigration },
  {
    name: '0021-audited-table-generated-columns',
    migration: auditedTableGeneratedColumnsMigration,
  },
  { name: '0022-audited-partition-tree', migration: auditedPartitionTreeMigration },
  { name: '0023-audit-log-operation-known', migration: auditLogOperationKnownMigration },
  { name: '0024-audit-log-json-nulls', migration: auditLogJsonNullsMigration },
  { name: '0025-cdc-engine-acked-position', migration: cdcEngineAckedPositionMigration },
  { name: '0026-context-commit-index', migration: contextCommitIndexMigration },
  { name: '0027-engine-role', migration: engineRoleMigration },
  { name: '0028-audit-chain-inline-blocks', migration: auditChainInlineBlocksMigration },
];
