import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
import { CAPTURE_TRIGGER_NAMES } from '../migrate/sync-staging';
import { triggerStateProblem } from '../postgres/trigger-state';

/**
 * One line for each of a staging table's capture triggers (`STAGING_TRIGGERS`) that is
 * missing, disabled, or not ENABLE ALWAYS as installed, with what puts it back; empty
 * when all are as installed. A staging change the capture triggers do not see becomes no
 * version and nothing else says so: `ALTER TABLE ... ENABLE TRIGGER` after a DISABLE
 * leaves a trigger firing only while session_replication_role is origin, and DMS may
 * apply as replica. `migrate` puts every one back.
 *
 * @example
 * ```ts
 * await captureTriggerProblems(target, 'audit', 't_staging');
 * // ['"capture_insert" on "audit"."t_staging" is disabled: ALTER TABLE "audit"."t_staging" ENABLE ALWAYS TRIGGER "capture_insert"']
 * ```
 */
export async function captureTriggerProblems(
  target: pg.ClientBase,
  auditSchema: string,
  stagingTable: string,
): Promise<string[]> {
  const table = quoteQualified(auditSchema, stagingTable);
  const { rows } = await target.query<{ name: string; enabled: string }>(
    `SELECT t.tgname AS name, t.tgenabled::text AS enabled
       FROM pg_catalog.pg_trigger AS t
      WHERE t.tgrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
        AND t.tgname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]) AND NOT t.tgisinternal`,
    [table, CAPTURE_TRIGGER_NAMES],
  );
  const enabled = new Map(rows.map((row) => [row.name, row.enabled]));
  return CAPTURE_TRIGGER_NAMES.flatMap((name) => {
    const state = enabled.get(name);
    if (state === undefined)
      return [`${quoteIdent(name)} on ${table} is missing: run audit-trail migrate`];
    const problem = triggerStateProblem(table, name, state);
    return problem === undefined ? [] : [problem];
  });
}
