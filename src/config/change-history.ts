import { z } from 'zod';
import { ConfigError } from './errors';
import { stagingTableName } from '../staging/header-columns';
import { identifierSchema } from './identifier';
import { sourceContextSchema } from './source-context';

/** One audited source table. */
export const auditedTableSchema = z
  .object({
    /** Source schema. @default "public" */
    schema: identifierSchema.default('public'),
    /** Source table name. */
    table: identifierSchema,
    /**
     * Primary key columns, in key order. When omitted they are read from the
     * source catalog; a table without a primary key is refused.
     */
    primaryKey: z.array(identifierSchema).min(1).optional(),
    /** Columns whose changes are not history (for example `updated_at`). @default [] */
    ignoreColumns: z.array(identifierSchema).default([]),
    /**
     * For a partitioned table: every leaf partition, by name, in `schema`. AWS DMS
     * captures a partition's changes under the partition's own name (test_decoding does
     * not report the partitioned table), so the DMS mapping selects each partition
     * listed here and renames it to this table's staging table. `migrate` and `doctor`
     * check the list against the source catalog and refuse a partitioned table whose
     * list misses a leaf partition or names anything else.
     * @default none (a table that is not partitioned)
     */
    partitions: z.array(identifierSchema).min(1, 'must list at least one partition').optional(),
  })
  .strict()
  .superRefine((table, ctx) => {
    const seenPartitions = new Set<string>();
    (table.partitions ?? []).forEach((partition, index) => {
      const problem =
        partition === table.table
          ? 'is the table itself; list its leaf partitions'
          : seenPartitions.has(partition)
            ? 'is listed twice'
            : undefined;
      if (problem !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['partitions', index],
          message: `"${partition}" ${problem}`,
        });
      }
      seenPartitions.add(partition);
    });
    const ignoredKey = table.primaryKey?.find((column) => table.ignoreColumns.includes(column));
    if (ignoredKey !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ignoreColumns'],
        message: `must not contain primary key column "${ignoredKey}"`,
      });
    }
  });

export type AuditedTableConfig = z.infer<typeof auditedTableSchema>;

/**
 * The kit's roles on the target (see "Trust model" in the README). Each name defaults to
 * `<auditSchema>_owner`, `_capture`, `_writer`, `_engine` and `_reader`; `migrate` creates them.
 */
export const auditRolesSchema = z
  .object({
    /** NOLOGIN role owning the audit schema and every kit object. @default "<auditSchema>_owner" */
    owner: identifierSchema.optional(),
    /** NOLOGIN role owning the SECURITY DEFINER capture functions. @default "<auditSchema>_capture" */
    capture: identifierSchema.optional(),
    /** Granted to DMS's target login and the local engine's: staging DML only. @default "<auditSchema>_writer" */
    writer: identifierSchema.optional(),
    /**
     * Granted (beside writer) to the local engine's target login only, never DMS's: the
     * engine's position and its record of what it loaded. @default "<auditSchema>_engine"
     */
    engine: identifierSchema.optional(),
    /** Granted to people and services that read history. @default "<auditSchema>_reader" */
    reader: identifierSchema.optional(),
  })
  .strict()
  .superRefine((roles, ctx) => {
    const seen = new Map<string, string>();
    for (const [kind, name] of Object.entries(roles)) {
      if (name === undefined) continue;
      const clash = seen.get(name);
      if (clash !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [kind],
          message: `"${name}" is also the ${clash} role`,
        });
      }
      seen.set(name, kind);
    }
  });

export type AuditRolesConfig = z.infer<typeof auditRolesSchema>;

/** The change-history part of the config: where the audit log lives and what is audited. */
export const changeHistoryShape = {
  /** Target schema that holds staging tables and the audit log. @default "audit" */
  auditSchema: identifierSchema.default('audit'),
  /** Role names on the target. @default derived from auditSchema */
  auditRoles: auditRolesSchema.default({}),
  /**
   * The source context table (who and why, per source transaction); audited
   * automatically when set. @default not installed
   */
  sourceContext: sourceContextSchema.optional(),
  /**
   * The audited tables; each appears once. Empty for an access-audit-only config (one
   * with an `accessAudit` section); a config with neither is refused. @default []
   */
  tables: z
    .array(auditedTableSchema)
    .default([])
    .superRefine((tables, ctx) => {
      const seen = new Set<string>();
      const stagingNames = new Map<string, string>();
      // A partition is captured under one partitioned table only.
      const partitionOwners = new Map<string, string>();
      tables.forEach((table) =>
        (table.partitions ?? []).forEach((partition) => {
          const name = JSON.stringify([table.schema, partition]);
          if (!partitionOwners.has(name))
            partitionOwners.set(name, `${table.schema}.${table.table}`);
        }),
      );
      tables.forEach((table, index) => {
        (table.partitions ?? []).forEach((partition, position) => {
          const owner = partitionOwners.get(JSON.stringify([table.schema, partition]));
          if (owner !== `${table.schema}.${table.table}`) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'partitions', position],
              message: `"${partition}" is already a partition of "${owner}"`,
            });
          }
        });
        const name = JSON.stringify([table.schema, table.table]);
        const label = `${table.schema}.${table.table}`;
        const issue = (message: string) =>
          ctx.addIssue({ code: 'custom', path: [index, 'table'], message });
        if (seen.has(name)) issue(`"${label}" is listed twice`);
        const partitionOf = partitionOwners.get(name);
        if (partitionOf !== undefined && partitionOf !== label) {
          issue(
            `"${label}" is listed as a partition of "${partitionOf}": its changes are captured under that table; remove it from tables`,
          );
        }
        seen.add(name);
        // Every staging table lands in the one audit schema as <table>_staging.
        const staging = stagingTableName(table.table);
        const clash = stagingNames.get(staging);
        if (clash !== undefined && clash !== label) {
          issue(
            `"${label}" and "${clash}" would share the staging table ${staging} in the audit schema`,
          );
        }
        stagingNames.set(staging, label);
        if (Buffer.byteLength(staging, 'utf8') > 63) {
          issue(
            `"${label}": staging table name ${staging} would exceed PostgreSQL's 63-byte limit`,
          );
        }
      });
    }),
};

/** The message of a config with neither change history nor access audit (path `tables`). */
export const NOTHING_TO_AUDIT =
  'must list at least one table (or configure accessAudit for an access-audit-only config)';

/**
 * Refuses change-history work (migrate, replicate, verify, history, DMS mappings) for an
 * access-audit-only config, before anything connects: with no tables there is no staging,
 * no slot and no audit log to work on, and an empty run would look like success.
 * @throws ConfigError naming `tables`.
 * @example requireChangeHistory(config, 'migrate');
 */
export function requireChangeHistory(
  config: { readonly tables: readonly unknown[] },
  what: string,
): void {
  if (config.tables.length > 0) return;
  throw new ConfigError(
    `${what}: the config has no tables (an access-audit-only config), so there is no change history to work on; list the tables to audit in "tables"`,
  );
}
